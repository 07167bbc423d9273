"""The five trading jobs' Kafka variants (apps/trading/kafka_jobs.py): each validates,
reads the plan's topics, writes the plan's topics with the plan's keys, and keeps the
Parquet warehouse of the file job."""

from __future__ import annotations

from pathlib import Path

import pytest

from surestream.apps.trading.kafka_jobs import JOBS, build_kafka_spec
from surestream.model.loader import build_spec, load_spec_dict
from surestream.model.spec import FileSink, KafkaSink, KafkaSource

B = "127.0.0.1:9092"
#: the plan: topic -> message key (None: an error record, which has no trade_id)
PLANNED_KEYS = {
    "processed.trades.new": ["order_id"], "processed.trades.filled": ["order_id"],
    "processed.trades.cancelled": ["order_id"], "processed.trades.rejected": ["order_id"],
    "enriched.trades": ["order_id"], "dlq.trades.unroutable": ["trade_id"],
    "analytics.trade-aggregates": ["symbol"], "analytics.orderbook-metrics": ["symbol"],
    "alerts.price-movement": ["symbol"],
    "dlq.deserialization": None, "dlq.processing-errors": None,
}
INPUTS = {"router": ["raw.trades"], "aggregation": ["raw.trades"],
          "alerts": ["raw.trades", "raw.market-data"], "orderbook": ["raw.orderbook"],
          "enrichment": ["processed.trades.filled"]}


def file_spec(job: str, tmp: Path):
    from surestream.apps.trading.demo import job_spec_file

    path = job_spec_file(job)
    return build_spec(load_spec_dict(str(path)), tmp, str(path))


@pytest.mark.parametrize("job", JOBS)
def test_kafka_variant_validates_with_the_planned_topics_and_keys(job, tmp_path) -> None:
    spec = build_kafka_spec(job, B, tmp_path, prefix="demo.", run_id="r1")
    kafka_in = [s for s in spec.all_sources.values() if isinstance(s, KafkaSource)]
    assert len(kafka_in) == 1 and kafka_in[0].stop_at == "end"  # bounded: it ends
    assert kafka_in[0].topics == ["demo." + t for t in INPUTS[job]]
    assert kafka_in[0].bootstrap == B and kafka_in[0].start == "earliest"
    sinks = {s.topic: s for s in spec.outputs.values() if isinstance(s, KafkaSink)}
    assert all(t.startswith("demo.") for t in sinks)
    for topic, sink in sinks.items():
        assert sink.key_fields == PLANNED_KEYS[topic.removeprefix("demo.")], topic
        assert sink.delivery == "exactly_once" and "-r1-" in sink.transactional_id
    assert {"demo.dlq.deserialization", "demo.dlq.processing-errors"} <= set(sinks)


@pytest.mark.parametrize("job", JOBS)
def test_kafka_variant_writes_every_warehouse_dataset_of_the_file_job(job, tmp_path) -> None:
    """Same datasets and files (path, partitioning, key) as the file job, except the
    error outputs, which go to the dead-letter topics."""
    def files(spec):
        return {(s.path, s.format, tuple(s.partition_by or ()), tuple(s.key or ()))
                for s in spec.outputs.values()
                if isinstance(s, FileSink) and not s.error_kinds}

    assert files(build_kafka_spec(job, B, tmp_path)) == files(file_spec(job, tmp_path))


def test_router_topic_outputs_and_their_warehouse_copies_read_the_same_tag(tmp_path) -> None:
    spec = build_kafka_spec("router", B, tmp_path)
    for tag in ("processed.trades.new", "processed.trades.filled",
                "processed.trades.cancelled", "processed.trades.rejected",
                "dlq.trades.unroutable"):
        assert isinstance(spec.outputs[tag], KafkaSink) and spec.outputs[tag].topic == tag
        copy = f"warehouse.{tag.replace('.', '_')}"
        assert spec.all_streams[copy].inputs == [tag]
        assert isinstance(spec.outputs[copy], FileSink)


def test_enrichment_reads_the_routers_filled_topic_without_rebuilding_it(tmp_path) -> None:
    spec = build_kafka_spec("enrichment", B, tmp_path)
    names = [s.name for s in spec.all_streams["enriched"].steps]
    assert names == ["trade_time", "filled_only", "reference_data", "stamp_enriched_at"]
    assert spec.all_sources["trades"].topics == ["processed.trades.filled"]
    assert spec.all_sources["reference_updates"].type == "file"
