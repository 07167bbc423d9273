"""``surestream demo --kafka``: the trading platform end to end through Kafka topics.

1. as the file demo: simulate the market into ``DIR/data/`` (and ``truth.json``), write the
   enrichment's reference file and update stream;
2. start an embedded broker on 127.0.0.1 (unless ``--bootstrap`` names a cluster), create
   the shipped topic map's topics (``kafka_topics``, from ``data/topics/trading.yaml``:
   ``raw.trades`` with 8 partitions, ...), publish the three streams to ``raw.trades`` /
   ``raw.market-data`` / ``raw.orderbook`` keyed by symbol (``publish``);
3. run the five jobs' Kafka variants (``kafka_jobs``: bounded Kafka sources, the plan's
   topics out with the plan's keys, the Parquet warehouse as before), one after the other;
   the generated specs are saved as ``DIR/<job>.kafka.yaml`` to re-run or read;
4. reconcile exactly as the file demo does, with one honest difference: which trades are
   late depends on how the 8 partitions of ``raw.trades`` are read
   (``partitioned_truth``), so the ``is_late`` flags are checked, trade by trade, against
   that -- and the report says how many of the injected late trades it is;
5. read the output topics back: records per ``processed.*`` topic, ``enriched.trades``
   and the dead-letter topics equal to the truth, every message keyed as planned;
6. report, and stop the embedded broker.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import KafkaException

from surestream.apps.trading.analytics import TradingAnalytics
from surestream.apps.trading.demo import (
    ROUTED_DATASETS,
    JobRun,
    _indent,
    alerts_table,
    job_counts,
    jobs_table,
    reconcile,
    reconciliation_table,
    simulate_workspace,
    top_table,
)
from surestream.apps.trading.kafka_jobs import JOBS, build_kafka_spec, kafka_variant
from surestream.apps.trading.kafka_topics import (
    PLANNED_TOPICS,
    STREAM_TOPICS,
    TopicsExist,
    create_topics,
)
from surestream.apps.trading.partitioned_truth import late_trade_ids, trade_record
from surestream.apps.trading.publish import MarketPublisher, Sent, place
from surestream.apps.trading.topic_readback import TopicContent, read_topic
from surestream.apps.trading.truth import MarketTruth
from surestream.connectors.file_sinks import read_parquet_dataset
from surestream.connectors.kafka.broker import BrokerError, EmbeddedBroker
from surestream.model.loader import build_spec
from surestream.ops.progress import ProgressDisplay
from surestream.ops.tables import render_plain
from surestream.runners.local.runner import LocalRunner

Check = tuple[str, int, int]
EXIT_OK, EXIT_MISMATCH, EXIT_USAGE = 0, 1, 2


@dataclass
class LateTruth:
    """The injected late trades, and those of them the 8-partition watermark is past."""

    partitions: int           # of raw.trades
    injected: int             # truth.json: late in the one-stream order
    one_partition: int        # the same rule replayed over the file (must equal injected)
    partitioned: list[str]    # trade ids late when raw.trades is read as partitioned


def run_kafka_demo(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    workspace, truth, ref = simulate_workspace(args)
    broker = None
    bootstrap = args.bootstrap
    try:
        if not bootstrap:
            broker = EmbeddedBroker(log=workspace / "broker.log").start()
            bootstrap = broker.bootstrap
            print(f"embedded Kafka-protocol broker on {bootstrap} (stopped at the end)")
        return _through_kafka(args, bootstrap, workspace, truth, ref, started)
    except TopicsExist as e:
        print(f"demo: {e}")
        return EXIT_USAGE
    except BrokerError as e:
        print(f"demo: {e} (or give --bootstrap to use a running cluster)")
        return EXIT_MISMATCH
    except KafkaException as e:
        print(f"demo: the cluster at {bootstrap} did not answer: {e}; check --bootstrap")
        return EXIT_USAGE
    finally:
        if broker is not None:
            broker.stop()


def _through_kafka(args: argparse.Namespace, bootstrap: str, workspace: Path,
                   truth: MarketTruth, ref: dict[str, Any], started: float) -> int:
    prefix = getattr(args, "topic_prefix", "") or ""
    partitions = create_topics(bootstrap, list(PLANNED_TOPICS), prefix)
    print(f"created {len(partitions)} topics ({prefix + 'raw.trades'}: "
          f"{partitions[prefix + 'raw.trades']} partitions)", flush=True)
    sent = publish(bootstrap, partitions, prefix, workspace / "data")
    run_id = uuid.uuid4().hex[:8]
    specs = write_specs(workspace, bootstrap, prefix, run_id)
    print(f"job specs: {specs}/<job>.kafka.yaml\n", flush=True)
    runs = {job: run_job(job, bootstrap, workspace, prefix, run_id) for job in JOBS}
    warehouse = workspace / "warehouse"
    late = late_truth(workspace / "data" / "raw.trades.jsonl",
                      partitions[prefix + "raw.trades"], truth)
    checks = kafka_checks(runs, truth, warehouse, late)
    checks += published_checks(sent, truth, prefix)
    contents = read_outputs(bootstrap, prefix)
    checks += topic_checks(contents, truth, prefix)
    elapsed = time.perf_counter() - started
    report = build_kafka_report(runs, checks, truth, ref, late, warehouse, workspace,
                                bootstrap, specs, elapsed)
    print(report)
    (workspace / "report.txt").write_text(report + "\n")
    (workspace / "report.json").write_text(json.dumps({
        "elapsed_s": round(elapsed, 1), "events": args.events, "bootstrap": bootstrap,
        "late": {"injected": late.injected, "behind_partitioned_watermark":
                 len(late.partitioned)},
        "reconciliation": [{"check": c, "found": f, "injected": i} for c, f, i in checks],
        "jobs": {j: r.result.summary() for j, r in runs.items()}}, indent=1, default=str))
    return EXIT_OK if all(found == want for _, found, want in checks) else EXIT_MISMATCH


def publish(bootstrap: str, partitions: dict[str, int], prefix: str, data: Path) -> Sent:
    t0 = time.perf_counter()
    publisher = MarketPublisher(bootstrap, partitions, prefix)
    publisher.send_files(data)
    sent = publisher.flush()
    print(f"published {sent.total:,} records in {time.perf_counter() - t0:.1f} s:")
    print("\n".join(sent.lines()), flush=True)
    return sent


def write_specs(workspace: Path, bootstrap: str, prefix: str, run_id: str) -> Path:
    """The five generated Kafka variants as ``DIR/<job>.kafka.yaml``, beside ``data/`` and
    ``warehouse/`` that their relative paths name (to read, or re-run with ``surestream
    run``)."""
    for job in JOBS:
        doc = kafka_variant(job, bootstrap, prefix=prefix, run_id=run_id)
        (workspace / f"{job}.kafka.yaml").write_text(
            f"# generated by `surestream demo --kafka` from examples/trading/{job}.yaml "
            "(apps/trading/kafka_jobs.py)\n" + yaml.safe_dump(doc, sort_keys=False))
    return workspace


def run_job(job: str, bootstrap: str, workspace: Path, prefix: str, run_id: str) -> JobRun:
    spec = build_kafka_spec(job, bootstrap, workspace, prefix=prefix, run_id=run_id)
    with ProgressDisplay(job, extra=job_counts(job)) as display:
        result = LocalRunner(spec, progress=display).run()
        display.done(result.progress())
    return JobRun(job, result)


def late_truth(trades_file: Path, partitions: int, truth: MarketTruth) -> LateTruth:
    """The late trades for ``raw.trades`` read as ``partitions`` partitions in turns of the
    router's ``runtime.interleave_records`` (docs/kafka.md, "The demo through Kafka")."""
    router = build_spec(kafka_variant("router", "unused"), trades_file.parent, "router")
    turn = router.runtime.interleave_records
    delay = next(s.max_out_of_orderness_ms for s in router.all_streams["main"].steps
                 if s.type == "watermark")
    parts: list[list[tuple[str, int] | None]] = [[] for _ in range(partitions)]
    stream: list[tuple[str, int] | None] = []
    cache: dict[bytes, int] = {}
    with open(trades_file, "rb") as f:
        for line in f:
            line = line.rstrip(b"\n")
            record = trade_record(line)
            parts[place(line, partitions, cache)[1]].append(record)
            stream.append(record)
    return LateTruth(partitions, truth.trades.late, len(late_trade_ids([stream], turn, delay)),
                     late_trade_ids(parts, turn, delay))


def flagged_ids(warehouse: Path) -> set[str]:
    """The trade ids the router routed with ``is_late`` true."""
    found: set[str] = set()
    for name in ROUTED_DATASETS:
        if (warehouse / name).exists():
            df = read_parquet_dataset(warehouse / name)
            found.update(df.filter(df["is_late"])["trade_id"].to_list())
    return found


def kafka_checks(runs: dict[str, JobRun], truth: MarketTruth, warehouse: Path,
                 late: LateTruth) -> list[Check]:
    """The file demo's checks (``demo.reconcile``), with the late row judged against the
    partitioned order, and the trade-by-trade late checks."""
    checks = []
    for check, found, want in reconcile(runs["router"].result, runs["enrichment"].result,
                                        truth, warehouse):
        if check.startswith("late trades"):
            check, want = ("late trades routed, flagged is_late (behind the "
                           "partitioned watermark)", len(late.partitioned))
        checks.append((check, found, want))
    flagged, expected = flagged_ids(warehouse), set(late.partitioned)
    checks += [
        ("flagged is_late but not behind the partitioned watermark",
         len(flagged - expected), 0),
        ("behind the partitioned watermark but not flagged", len(expected - flagged), 0),
        ("late rule over the single stream = truth.json late", late.one_partition,
         late.injected),
    ]
    return checks


def published_checks(sent: Sent, truth: MarketTruth, prefix: str) -> list[Check]:
    return [(f"published to {prefix}{topic}", sum(n for (t, _), n in sent.acked.items()
                                                  if t == prefix + topic),
             truth.streams[stream].events) for stream, topic in STREAM_TOPICS.items()]


#: output topic -> the field its messages are keyed by ("": unkeyed)
READ_BACK = {t: PLANNED_TOPICS[t].key for t in (
    "processed.trades.new", "processed.trades.filled", "processed.trades.cancelled",
    "processed.trades.rejected", "enriched.trades", "dlq.trades.unroutable",
    "dlq.deserialization")}


def read_outputs(bootstrap: str, prefix: str) -> dict[str, TopicContent]:
    print("reading the output topics back ...", flush=True)
    return {t: read_topic(bootstrap, prefix + t, key) for t, key in READ_BACK.items()}


def topic_checks(contents: dict[str, TopicContent], truth: MarketTruth,
                 prefix: str) -> list[Check]:
    """Records per output topic as the truth says, every message keyed as planned (the
    key is the text of its field; a key in one partition only)."""
    t = truth.trades
    statuses = t.statuses
    filled = statuses.get("FILLED", 0) + statuses.get("PARTIALLY_FILLED", 0)
    #: every job that reads raw.trades (router, aggregation, alerts) sends its malformed
    #: lines to the one dlq.deserialization topic, as do alerts (ticks) and order books
    undecodable = 3 * t.malformed + truth.marketdata.malformed + truth.orderbook.malformed
    expected = {"processed.trades.new": statuses.get("NEW", 0),
                "processed.trades.filled": filled,
                "processed.trades.cancelled": statuses.get("CANCELLED", 0),
                "processed.trades.rejected": statuses.get("REJECTED", 0),
                "enriched.trades": filled, "dlq.trades.unroutable": t.unknown_status,
                "dlq.deserialization": undecodable}
    checks: list[Check] = []
    for topic, content in contents.items():
        checks.append((f"topic {prefix}{topic}: records", content.records, expected[topic]))
        if READ_BACK[topic]:
            checks.append((f"topic {prefix}{topic}: keys not its {READ_BACK[topic]}",
                           content.wrong_keys, 0))
            checks.append((f"topic {prefix}{topic}: keys in several partitions",
                           content.keys_in_several_partitions, 0))
    return checks


def build_kafka_report(runs: dict[str, JobRun], checks: list[Check], truth: MarketTruth,
                       ref: dict[str, Any], late: LateTruth, warehouse: Path,
                       workspace: Path, bootstrap: str, specs: Path, elapsed: float) -> str:
    enrich = runs["enrichment"].result.operator_counters.get("reference_data", {})
    with TradingAnalytics(warehouse) as a:
        top = a.top_symbols(limit=5)
        alerts = a.alerts_by_severity()
    behind = len(late.partitioned)
    parts = [f"\n== report, through Kafka on {bootstrap} ({elapsed:.1f} s for "
             f"{truth.events:,} events) ==", "",
             "jobs and outputs:", _indent(render_plain(jobs_table(runs))), "",
             "reconciliation with the simulator's ground truth (router and enrichment jobs, "
             "and the topics read back):",
             _indent(render_plain(reconciliation_table(checks))),
             f"  late: {late.injected:,} trades were injected late (more than 30 s behind "
             f"raw.trades as one stream); read as {late.partitions} partitions in turns, "
             f"{behind:,} of them arrive behind the watermark (the minimum over the "
             f"partitions) and are flagged is_late; the other {late.injected - behind:,} are "
             "routed as on time (docs/kafka.md, \"The demo through Kafka\")",
             f"  enrichment: {enrich.get('unknown_keys', 0):,} trades with symbols "
             f"missing from the reference ({', '.join(ref['missing'])})", "",
             "top 5 symbols by traded value:", _indent(render_plain(top_table(top))), "",
             "price alerts by severity:", _indent(render_plain(alerts_table(alerts))), "",
             f"outputs: the topics on {bootstrap}; {warehouse} (Parquet datasets); the "
             f"generated job specs in {specs} (<job>.kafka.yaml); raw inputs and truth.json in "
             f"{workspace / 'data'}", "", "next:",
             f"  surestream query top-traded-symbols --warehouse {warehouse}",
             f"  surestream validate {specs / 'router.kafka.yaml'}",
             "  surestream simulate --kafka --rate 2000 --bootstrap B   # a live market"]
    return "\n".join(parts)

