"""The five trading jobs through Kafka: generated from the file specs beside them.

Each Kafka variant is its job's YAML (``examples/trading/<job>.yaml``) with three changes,
so the two can never drift apart:

* **inputs**: the file source becomes a bounded Kafka source over the plan's topics
  (``stop_at: end``: the end offsets seen at start, so the run ends, and replays are
  identical) -- ``raw.trades``; the alerts job ``raw.trades`` and ``raw.market-data``; the
  order book job ``raw.orderbook``; enrichment reads the router's ``processed.trades.filled``
  topic (the plan) instead of rebuilding it, so its steps that rebuilt the router's view
  (``REBUILT_BY_ROUTER``) are dropped;
* **topics out**: every output named in ``TOPIC_OUTPUTS`` becomes a Kafka sink on the
  plan's topic with the plan's message key (``key_fields``: ``order_id`` for
  ``processed.*`` and ``enriched.trades``, ``trade_id`` for ``dlq.trades.unroutable``,
  ``symbol`` for analytics and alerts); the error outputs ``dlq.deserialization`` and
  ``dlq.processing-errors`` too, unkeyed (an error record carries the original value, not
  a ``trade_id``: an undecodable line has none);
* **the warehouse as before**: a record output that became a topic keeps its Parquet
  dataset through a stream of its own (``warehouse.<dataset>``) that reads the same tag --
  a tag can feed an output and streams alike -- so the demo's queries and report read the
  warehouse exactly as in the file demo.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from surestream.apps.trading.kafka_topics import PLANNED_TOPICS, STREAM_TOPICS
from surestream.model.loader import build_spec, load_spec_dict
from surestream.model.spec import PipelineSpec

JOBS = ("router", "aggregation", "alerts", "orderbook", "enrichment")

#: job -> source name -> the planned topics it reads (instead of its files)
JOB_INPUTS: dict[str, dict[str, list[str]]] = {
    "router": {"source": ["raw.trades"]},
    "aggregation": {"source": ["raw.trades"]},
    "alerts": {"source": ["raw.trades", STREAM_TOPICS["raw.marketdata"]]},
    "orderbook": {"source": ["raw.orderbook"]},
    "enrichment": {"trades": ["processed.trades.filled"]},
}
#: job -> output tag -> the planned topic it is written to
TOPIC_OUTPUTS: dict[str, dict[str, str]] = {
    "router": {t: t for t in ("processed.trades.new", "processed.trades.filled",
                              "processed.trades.cancelled", "processed.trades.rejected",
                              "dlq.trades.unroutable")},
    "aggregation": {"analytics.trade-aggregates": "analytics.trade-aggregates"},
    "alerts": {"main": "alerts.price-movement"},
    "orderbook": {"main": "analytics.orderbook-metrics"},
    "enrichment": {"enriched.trades": "enriched.trades"},
}
#: the error outputs every job sends to the plan's dead-letter topics
ERROR_TOPICS = ("dlq.deserialization", "dlq.processing-errors")
#: enrichment's steps that rebuilt the router's filled stream from raw.trades; reading the
#: router's topic, the records come upper-cased, flagged and deduplicated already
REBUILT_BY_ROUTER = ("trade_date", "flag_late_trades", "dedup_trades")


def file_spec_path(job: str) -> Path:
    from importlib import resources

    return Path(str(resources.files("surestream") / "examples" / "trading" / f"{job}.yaml"))


def kafka_variant(job: str, bootstrap: str, *, prefix: str = "",
                  run_id: str | None = None) -> dict[str, Any]:
    """The spec (as a dict, ready for ``build_spec``) of ``job`` from and to Kafka.

    ``prefix`` is put before every topic name; ``run_id``, when given, makes the consumer
    group and the sinks' transactional ids unique to one run (the demo's), so a second
    demo on the same cluster never meets the first one's transactions or markers."""
    spec = load_spec_dict(str(file_spec_path(job)))
    pipeline = spec["pipeline"]
    tag = f"-{run_id}" if run_id else ""
    for source, topics in JOB_INPUTS[job].items():
        old = spec["source"] if source == "source" else spec["sources"][source]
        new = {"type": "kafka", "bootstrap": bootstrap,
               "topics": [prefix + t for t in topics],
               "group_id": f"surestream-{pipeline}{tag}", "start": "earliest",
               "stop_at": "end", "format": "json"}
        if "schema" in old:
            new["schema"] = old["schema"]
        if source == "source":
            spec["source"] = new
        else:
            spec["sources"][source] = new
    if job == "enrichment":
        steps = spec["streams"]["enriched"]["steps"]
        spec["streams"]["enriched"]["steps"] = [s for s in steps
                                                if s["name"] not in REBUILT_BY_ROUTER]
    _streams_form(spec)
    outputs = spec["outputs"]
    for out_tag, topic in TOPIC_OUTPUTS[job].items():
        dataset = outputs[out_tag]
        copy_stream = f"warehouse.{Path(dataset['path']).name}"
        spec["streams"][copy_stream] = {"from": out_tag, "steps": []}
        outputs[copy_stream] = dataset
        outputs[out_tag] = _sink(bootstrap, prefix + topic, PLANNED_TOPICS[topic].key,
                                 f"surestream-{pipeline}{tag}-{topic}")
    for error_tag in ERROR_TOPICS:
        old = outputs[error_tag]
        outputs[error_tag] = {**_sink(bootstrap, prefix + error_tag, "",
                                      f"surestream-{pipeline}{tag}-{error_tag}"),
                              "error_kinds": old["error_kinds"],
                              "error_fields": old["error_fields"]}
    return spec


def _sink(bootstrap: str, topic: str, key: str, transactional_id: str) -> dict[str, Any]:
    sink: dict[str, Any] = {"type": "kafka", "bootstrap": bootstrap, "topic": topic,
                            "delivery": "exactly_once", "transactional_id": transactional_id}
    if key:
        sink["key_fields"] = [key]
    return sink


def _streams_form(spec: dict[str, Any]) -> None:
    """Top-level ``steps`` become the stream ``main`` (so more streams can be added)."""
    if "streams" not in spec:
        source = "source" if "source" in spec else next(iter(spec["sources"]))
        spec["streams"] = {"main": {"from": source, "steps": spec.pop("steps", [])}}


def build_kafka_spec(job: str, bootstrap: str, workspace: Path, *, prefix: str = "",
                     run_id: str | None = None) -> PipelineSpec:
    """The validated Kafka variant of ``job``, relative to ``workspace`` (``data/`` in,
    ``warehouse/`` out, as the file demo)."""
    doc = copy.deepcopy(kafka_variant(job, bootstrap, prefix=prefix, run_id=run_id))
    return build_spec(doc, workspace, f"{job}.kafka.yaml")
