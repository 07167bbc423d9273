#!/usr/bin/env python3
"""Events/s and end-to-end latency per trigger mode (issue 14's benchmark), through Kafka.

Beside the plan's figures: continuous 10K-50K events/s at 1-10 ms; processing-time 5 s at
50K-200K events/s; windowed 20K-100K events/s. Each pipeline runs through the command line
(``surestream run``, a process of its own, as a user runs it) against the embedded broker
(or ``--bootstrap``):

- ``continuous``: Kafka (JSON trades) -> parse -> watermark -> Kafka (``at_least_once``:
  records visible as they are written; an ``exactly_once`` output is visible at
  checkpoints, docs/kafka.md has its latency);
- ``processing_time 5 s``: the same pipeline, a trigger every 5 s;
- ``windowed``: parse -> watermark -> dedup by trade id -> 1-minute tumbling windows per
  symbol (count, volume, VWAP) -> Kafka ``exactly_once``, under ``available_now``.

Throughput: ``--events`` trades are produced to the input topic first; the figure is
events / wall time from the process's start (start-up included) until the output holds
every record (continuous, processing_time: then stopped with SIGTERM), or the run ends
(windowed: ``available_now`` stops by itself). Latency: the pipeline runs while a producer
sends trades at a steady ``--rate`` for ``--seconds``, each stamped with its produce time;
a read_committed consumer of the output takes, per record, the time it became visible
minus its produce time: p50 / p99 / max after the first ``--warmup`` seconds (the
measuring of ``kafka_pipeline.py``). The windowed pipeline's latency is its windows':
a window is final once the watermark passes its end (1 minute + the out-of-orderness).

    python benchmarks/triggers.py [--events 200000] [--rate 10000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka_pipeline import (
    SYMBOLS,
    cpu_seconds,
    measure_visibility,
    producer,
    run_spec,
    summary,
    wait_with_cpu,
)

from surestream.connectors.kafka.broker import EmbeddedBroker

#: (mode label, trigger) of the record-by-record pipeline
MODES: list[tuple[str, Any]] = [("continuous", "continuous"),
                                ("processing_time 5 s", {"processing_time": "5s"})]


def topics(bootstrap: str, partitions: int) -> dict[str, str]:
    run = uuid.uuid4().hex[:6]
    names = {"in": f"trig.in.{run}", "out": f"trig.out.{run}"}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(names["in"], partitions, 1),
                                  NewTopic(names["out"], 1, 1)]).values():
        f.result(30)
    return names


def passthrough_spec(bootstrap: str, names: dict[str, str], trigger: Any,
                     workdir: Path) -> dict[str, Any]:
    """Kafka -> parse -> watermark -> Kafka (at_least_once), under ``trigger``."""
    return {
        "pipeline": "trigger-bench",
        "source": {"type": "kafka", "bootstrap": bootstrap, "topics": [names["in"]],
                   "group_id": f"bench-{uuid.uuid4().hex[:6]}", "start": "earliest",
                   "options": {"fetch.wait.max.ms": 10}},
        "steps": [{"type": "watermark", "name": "event_time",
                   "timestamp_column": "timestamp_ms", "max_out_of_orderness_ms": 1000}],
        "outputs": {"main": {"type": "kafka", "bootstrap": bootstrap, "topic": names["out"],
                             "key_fields": ["trade_id"], "delivery": "at_least_once"},
                    "errors": {"type": "file", "path": str(workdir / "errors.jsonl")}},
        "checkpoint": {"dir": str(workdir / "checkpoints"), "interval_ms": 1000},
        "trigger": trigger,
    }


def windowed_spec(bootstrap: str, names: dict[str, str], trigger: Any,
                  workdir: Path) -> dict[str, Any]:
    """Kafka -> watermark -> dedup -> 1-minute VWAP windows -> Kafka (exactly_once)."""
    spec = passthrough_spec(bootstrap, names, trigger, workdir)
    spec["pipeline"] = "trigger-bench-windowed"
    spec["steps"] += [
        {"type": "keyed_dedup", "name": "dedup_trade_id", "key_fields": ["trade_id"],
         "time_window_ms": 600_000, "state_ttl_ms": 3_600_000},
        {"type": "window", "name": "vwap_1m", "key_fields": ["symbol"], "kind": "tumbling",
         "size_ms": 60_000, "late_output_tag": "late_window",
         "aggregations": {"trade_count": "count()", "total_volume": "sum(quantity)",
                          "vwap": "vwap(price, quantity)"}}]
    spec["outputs"]["main"] = {"type": "kafka", "bootstrap": bootstrap,
                               "topic": names["out"], "key_fields": ["symbol"],
                               "delivery": "exactly_once"}
    spec["outputs"]["late_window"] = {"type": "file", "path": str(workdir / "late.jsonl")}
    return spec


def produce_backlog(bootstrap: str, topic: str, n: int) -> None:
    """``n`` trades, event times spread over the last minutes (so windows close)."""
    p = producer(bootstrap)
    now = int(time.time() * 1000) - 10 * 60_000
    for i in range(n):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        ts = now + i * 600_000 // max(n, 1)
        value = orjson.dumps({"trade_id": f"T{i:010d}", "symbol": symbol, "side": "BUY",
                              "price": 100.0 + (i % 50) / 10, "quantity": 10.0,
                              "status": "FILLED", "timestamp_ms": ts, "produced_at_ms": ts})
        while True:
            try:
                p.produce(topic, key=symbol.encode(), value=value)
                break
            except BufferError:
                p.poll(0.05)
        if i % 10_000 == 0:
            p.poll(0)
    assert p.flush(60) == 0, "not every input record was acknowledged"


def count_until(bootstrap: str, topic: str, n: int, proc: subprocess.Popen,
                timeout_s: float = 600) -> float:
    """Read ``topic`` until ``n`` distinct trades are there: the monotonic time then."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"c-{uuid.uuid4()}",
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "fetch.wait.max.ms": 10})
    consumer.assign([TopicPartition(topic, 0, 0)])
    seen: set[bytes] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while len(seen) < n:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the run ended or stalled with {len(seen):,} of {n:,} "
                                 "records out")
            for m in consumer.consume(10_000, 0.05):
                if m.error() is None:
                    seen.add(m.key())
        return time.monotonic()
    finally:
        consumer.close()


def stop(proc: subprocess.Popen) -> tuple[int, float]:
    proc.send_signal(signal.SIGTERM)
    return wait_with_cpu(proc, 120)


def throughput(bootstrap: str, args: argparse.Namespace, label: str, trigger: Any,
               tmp: Path, broker_pid: int | None) -> str:
    names = topics(bootstrap, args.partitions)
    produce_backlog(bootstrap, names["in"], args.events)
    workdir = tmp / f"throughput-{label.split()[0]}"
    workdir.mkdir()
    broker_cpu = cpu_seconds(broker_pid)
    started = time.monotonic()
    proc = run_spec(passthrough_spec(bootstrap, names, trigger, workdir), workdir, True)
    done = count_until(bootstrap, names["out"], args.events, proc)
    rc, run_cpu = stop(proc)
    wall = done - started
    broker_cpu = cpu_seconds(broker_pid) - broker_cpu
    line = (f"throughput {label:20s}: {args.events:,} events in {wall:.1f} s = "
            f"{args.events / wall:,.0f} events/s (exit {rc}); CPU: pipeline {run_cpu:.1f} s, "
            f"broker {broker_cpu:.1f} s")
    print(line, flush=True)
    return line


def latency(bootstrap: str, args: argparse.Namespace, label: str, trigger: Any, tmp: Path,
            broker_pid: int | None) -> str:
    names = topics(bootstrap, args.partitions)
    workdir = tmp / f"latency-{label.split()[0]}"
    workdir.mkdir()
    proc = run_spec(passthrough_spec(bootstrap, names, trigger, workdir), workdir, True)
    time.sleep(3)  # start-up: the run is reading before the first record is sent
    broker_cpu = cpu_seconds(broker_pid)
    lat, sent, seen, wall = measure_visibility(bootstrap, names["in"], names["out"], 1, args)
    broker_cpu = cpu_seconds(broker_pid) - broker_cpu
    rc, run_cpu = stop(proc)
    if not len(lat):
        raise SystemExit(f"latency {label}: no record became visible; see {workdir}/run.log")
    line = (f"latency    {label:20s}: {sent:,} sent at {args.rate:,}/s, {seen:,} visible; "
            f"{summary(lat)}; CPU over {wall:.0f} s: pipeline {run_cpu:.1f} s, broker "
            f"{broker_cpu:.1f} s (exit {rc})")
    print(line, flush=True)
    return line


def windowed(bootstrap: str, args: argparse.Namespace, tmp: Path,
             broker_pid: int | None) -> str:
    names = topics(bootstrap, args.partitions)
    produce_backlog(bootstrap, names["in"], args.events)
    workdir = tmp / "windowed"
    workdir.mkdir()
    broker_cpu = cpu_seconds(broker_pid)
    started = time.monotonic()
    proc = run_spec(windowed_spec(bootstrap, names, "available_now", workdir), workdir,
                    False)
    rc, run_cpu = wait_with_cpu(proc, 600)
    wall = time.monotonic() - started
    broker_cpu = cpu_seconds(broker_pid) - broker_cpu
    if rc != 0:
        raise SystemExit(f"windowed run failed (exit {rc}); see {workdir / 'run.log'}")
    line = (f"throughput {'windowed available_now':20s}: {args.events:,} events in "
            f"{wall:.1f} s = {args.events / wall:,.0f} events/s (dedup, 1-min VWAP windows, "
            f"exactly_once); CPU: pipeline {run_cpu:.1f} s, broker {broker_cpu:.1f} s")
    print(line, flush=True)
    return line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", help="a Kafka cluster (default: an embedded broker)")
    ap.add_argument("--events", type=int, default=200_000, help="throughput runs' events")
    ap.add_argument("--partitions", type=int, default=4, help="input topic partitions")
    ap.add_argument("--rate", type=int, default=10_000, help="latency runs: events/s")
    ap.add_argument("--seconds", type=float, default=20, help="latency runs: how long")
    ap.add_argument("--warmup", type=int, default=5, help="latency runs: seconds left out")
    args = ap.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="trigger-bench-") as tmp_s:
        tmp = Path(tmp_s)
        broker_pid = None
        if args.bootstrap:
            bootstrap = args.bootstrap
        else:
            broker = stack.enter_context(EmbeddedBroker(log=tmp / "broker.log"))
            bootstrap, broker_pid = broker.bootstrap, broker.pid
        print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
              f"({os.cpu_count()} cores)", flush=True)
        for label, trigger in MODES:
            throughput(bootstrap, args, label, trigger, tmp, broker_pid)
            latency(bootstrap, args, label, trigger, tmp, broker_pid)
        windowed(bootstrap, args, tmp, broker_pid)
        print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
              flush=True)


if __name__ == "__main__":
    main()
