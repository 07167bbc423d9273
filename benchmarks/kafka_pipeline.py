#!/usr/bin/env python3
"""Kafka in, Kafka out: throughput and end-to-end latency (issue 10's benchmark).

The pipeline: Kafka (JSON trades) -> parse -> watermark -> dedup -> 1-minute tumbling
windows per symbol -> Kafka, the deduplicated trades also written to a topic of their own
(a record's latency is measured there; windows close only when the watermark passes their
end). Each delivery (`exactly_once` with 1 s checkpoints, and `at_least_once`) is measured
twice, through the command line (`surestream run`, a process of its own, as a user runs it):

1. throughput: ``--events`` trades (the trades-1m workload's generator) are produced to
   the input topic first; the pipeline reads them to their end (`stop_at: end`) and the
   figure is events / wall time of the run (process start included). Only the windows
   go to Kafka here, as the issue's pipeline says;
2. latency: the pipeline runs live (no `stop_at`) while a producer sends trades at a steady
   ``--rate`` for ``--seconds``, each carrying its produce time; a `read_committed` consumer
   of the deduplicated topic takes, per record, the time it became visible minus its
   produce time. p50 / p99 / max over the records after the first ``--warmup`` seconds.

Without ``--bootstrap`` an embedded broker is started on 127.0.0.1 (and stopped after).

    python benchmarks/kafka_pipeline.py [--events 1000000] [--rate 20000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import yaml
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from surestream.connectors.kafka.broker import EmbeddedBroker
from surestream.connectors.kafka.feed import consumer_config
from surestream.connectors.kafka.messages import CHECKPOINT_HEADER
from surestream.connectors.kafka.sink import MARKER_PARTITION

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO.parent / "shared" / "bench" / "gen_trades.py"
SYMBOLS = [f"S{i:03d}" for i in range(100)]


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time a live process (and its reaped children) has used so far
    (Linux /proc), 0 when unknown: the broker's share of the machine."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def wait_with_cpu(proc: subprocess.Popen, timeout_s: float | None = None) -> tuple[int, float]:
    """Wait for ``proc``: (its exit code, the CPU seconds it used)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG if deadline else 0)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_utime + usage.ru_stime
        if deadline and time.monotonic() > deadline:
            proc.kill()
            deadline = None
        time.sleep(0.05)


def pipeline_spec(bootstrap: str, topics: dict[str, str], delivery: str, live: bool,
                  workdir: Path, produce_at: str = "write") -> dict:
    """The benchmark pipeline as a spec dict (written to a YAML file and run)."""
    source = {"type": "kafka", "bootstrap": bootstrap, "topics": [topics["in"]],
              "group_id": f"bench-{uuid.uuid4().hex[:6]}", "start": "earliest",
              "options": {"fetch.wait.max.ms": 10}}

    def kafka_out(topic: str, key: list[str]) -> dict:
        out = {"type": "kafka", "bootstrap": bootstrap, "topic": topic, "key_fields": key,
               "delivery": delivery}
        if delivery == "exactly_once":  # write: into the open transaction as written
            out["produce_at"] = produce_at
        return out

    if not live:
        source["stop_at"] = "end"
    outputs = {}
    if live:  # each deduplicated trade to a topic of its own: per-record latency
        outputs["deduped"] = kafka_out(topics["deduped"], ["trade_id"])
    return {
        "pipeline": f"kafka-bench-{delivery.replace('_', '-')}",
        "source": source,
        "streams": {
            "deduped": {"from": "source", "steps": [
                {"type": "watermark", "name": "event_time", "timestamp_column": "timestamp_ms",
                 "max_out_of_orderness_ms": 1000},
                {"type": "keyed_dedup", "name": "dedup_trade_id", "key_fields": ["trade_id"],
                 "time_window_ms": 600000, "state_ttl_ms": 3600000}]},
            "windows": {"from": "deduped", "steps": [
                {"type": "window", "name": "vwap_1m", "key_fields": ["symbol"],
                 "kind": "tumbling", "size_ms": 60000, "late_output_tag": "late_window",
                 "aggregations": {"trade_count": "count()", "total_volume": "sum(quantity)",
                                  "vwap": "vwap(price, quantity)"}}]},
        },
        "outputs": {
            **outputs,
            "windows": kafka_out(topics["windows"], ["symbol"]),
            "late_window": {"type": "file", "path": str(workdir / "late.jsonl")},
            "errors": {"type": "file", "path": str(workdir / "errors.jsonl")},
        },
        "checkpoint": {"dir": str(workdir / "checkpoints"), "interval_ms": 1000},
        "runtime": {"batch_size": 65536, "max_batch_delay_ms": 20},
    }


def create_topics(bootstrap: str, partitions: int) -> dict[str, str]:
    run = uuid.uuid4().hex[:6]
    topics = {"in": f"bench.trades.{run}", "deduped": f"bench.deduped.{run}",
              "windows": f"bench.windows.{run}"}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topics["in"], partitions, 1),
                                   NewTopic(topics["deduped"], 1, 1),
                                   NewTopic(topics["windows"], 1, 1)])
    for f in futures.values():
        f.result(30)
    return topics


def producer(bootstrap: str) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                     "batch.num.messages": 10000, "compression.type": "none"})


def produce_file(bootstrap: str, topic: str, path: Path) -> int:
    p, n = producer(bootstrap), 0
    with open(path, "rb") as f:
        for line in f:
            record = orjson.loads(line)
            while True:
                try:
                    p.produce(topic, key=record["symbol"].encode(), value=line.rstrip(b"\n"))
                    break
                except BufferError:
                    p.poll(0.05)
            n += 1
            if n % 10000 == 0:
                p.poll(0)
    assert p.flush(60) == 0, "not every input record was acknowledged"
    return n


def run_spec(spec: dict, workdir: Path, live: bool) -> subprocess.Popen:
    path = workdir / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return subprocess.Popen([sys.executable, "-m", "surestream", "run", str(path)],
                            stdout=subprocess.DEVNULL, stderr=open(workdir / "run.log", "wb"),
                            start_new_session=live)


def throughput(bootstrap: str, args: argparse.Namespace, delivery: str, tmp: Path,
               trades: Path, broker_pid: int | None) -> None:
    topics = create_topics(bootstrap, args.partitions)
    n = produce_file(bootstrap, topics["in"], trades)
    if delivery == "exactly_once":
        bare_read(bootstrap, args, topics["in"], n, broker_pid)
    workdir = tmp / f"throughput-{delivery}"
    workdir.mkdir()
    broker_cpu = cpu_seconds(broker_pid)
    started = time.perf_counter()
    proc = run_spec(pipeline_spec(bootstrap, topics, delivery, False, workdir,
                                  args.produce_at), workdir, False)
    rc, run_cpu = wait_with_cpu(proc)
    wall = time.perf_counter() - started
    broker_cpu = cpu_seconds(broker_pid) - broker_cpu
    if rc != 0:
        sys.exit(f"run failed (exit {rc}); see {workdir / 'run.log'}")
    print(f"throughput {delivery:13s}: {n:,} events in {wall:.1f} s = {n / wall:,.0f} events/s "
          f"(Kafka -> parse, watermark, dedup, 1-min windows -> Kafka; checkpoints 1 s); "
          f"CPU: pipeline {run_cpu:.1f} s, broker {broker_cpu:.1f} s", flush=True)


def steady_producer(bootstrap: str, topic: str, rate: int, seconds: float,
                    sent_out: Any) -> None:
    """Trades at ``rate`` per second, in 10 ms ticks, each stamped with its produce time
    (``produced_at_ms``, also its event time). Runs in a process of its own, so that the
    measuring consumer never waits for the producer's share of the interpreter."""
    p, sent, started = producer(bootstrap), 0, time.time()
    symbols = np.random.default_rng(1).integers(0, len(SYMBOLS), int(rate * seconds) + 1)
    while True:
        elapsed = time.time() - started
        if elapsed >= seconds:
            break
        due = int(rate * elapsed)
        while sent < due:
            now = int(time.time() * 1000)
            symbol = SYMBOLS[int(symbols[sent])]
            value = orjson.dumps({"trade_id": f"T{sent:010d}", "symbol": symbol,
                                  "side": "BUY", "price": 100.0 + (sent % 50) / 10,
                                  "quantity": 10.0, "status": "FILLED",
                                  "timestamp_ms": now, "produced_at_ms": now})
            try:
                p.produce(topic, key=symbol.encode(), value=value)
            except BufferError:
                p.poll(0.01)
                continue
            sent += 1
        p.poll(0)
        time.sleep(0.01)
    p.flush(30)
    sent_out.value = sent


class MarkerWatch:
    """When each checkpoint of an exactly-once output committed, as a reader can tell:
    the first time its marker (the marker group's committed offset, set in the same
    transaction) is seen at or past it, polled every 5 ms in a thread of its own.

    Needed because tansu's read_committed consumers also see records of transactions that
    are still open: on it, a record's visibility is the later of its arrival and its
    transaction's commit. (On Apache Kafka the arrival is never earlier; the later of the
    two is the arrival itself.)"""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self.seen: list[tuple[int, float]] = []  # (marker, first time seen, ms)
        self._stop = threading.Event()
        self._reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                 "enable.auto.commit": False})
        self._tp = TopicPartition(topic, MARKER_PARTITION)
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        last = -1
        while not self._stop.is_set():
            offset = self._reader.committed([self._tp], timeout=10)[0].offset
            if offset > last:
                self.seen.append((offset, time.time() * 1000))
                last = offset
            time.sleep(0.005)

    def committed_at(self, checkpoint: int) -> float | None:
        """When checkpoint ``checkpoint``'s transaction was seen committed (ms), if it was."""
        return next((t for marker, t in self.seen if marker >= checkpoint), None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._reader.close()


def measure_visibility(bootstrap: str, produce_to: str, topic: str, partitions: int,
                       args: argparse.Namespace, marker: MarkerWatch | None = None,
                       ) -> tuple[np.ndarray, int, int, float]:
    """Send trades to ``produce_to`` at ``args.rate`` for ``args.seconds`` (a producer
    process of its own, spawned: librdkafka's threads do not survive a fork) and read
    ``topic`` (``partitions``) with a read_committed consumer until every one is visible
    (or 15 s after the end): (latencies after the warm-up in ms, sent, seen, wall s).
    With ``marker`` (an exactly-once output), a record is visible no earlier than its
    checkpoint's commit."""
    spawn = multiprocessing.get_context("spawn")
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lat-{uuid.uuid4()}",
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "fetch.wait.max.ms": 10, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    sent_out = spawn.Value("q", -1)
    feeder = spawn.Process(target=steady_producer, args=(
        bootstrap, produce_to, args.rate, args.seconds, sent_out))
    started = time.time()
    feeder.start()
    first_ms, seen = int(started * 1000) + args.warmup * 1000, set()
    arrivals: list[tuple[float, int, int]] = []  # (arrival ms, produced ms, checkpoint)
    deadline = started + args.seconds + 15
    while time.time() < deadline:
        # a short wait: consume() returns when its batch is full or its timeout ends, so
        # a 50 ms timeout would add up to 50 ms to every visibility time (one hop at
        # 20,000/s measured p50 39 / p99 69 ms that way, 12 / 18 ms with 2 ms)
        for m in consumer.consume(10000, 0.002):
            if m.error():
                continue
            now = time.time() * 1000
            record = orjson.loads(m.value())
            if record["trade_id"] in seen:  # (an aborted attempt's copy: see docs/kafka.md)
                continue
            seen.add(record["trade_id"])
            if record["produced_at_ms"] >= first_ms:
                checkpoint = dict(m.headers() or []).get(CHECKPOINT_HEADER, b"0")
                arrivals.append((now, record["produced_at_ms"], int(checkpoint)))
        if not feeder.is_alive() and 0 <= sent_out.value <= len(seen):
            break
    feeder.join()
    consumer.close()
    if marker is not None and arrivals:  # the last records' checkpoint commits within ~1 s
        newest = max(checkpoint for _, _, checkpoint in arrivals)
        wait_until = time.time() + 10
        while marker.committed_at(newest) is None and time.time() < wait_until:
            time.sleep(0.05)
    latencies = []
    for arrived, produced, checkpoint in arrivals:
        if marker is not None:
            committed = marker.committed_at(checkpoint)
            if committed is None:
                raise SystemExit(f"checkpoint {checkpoint} never committed, yet its records "
                                 "were read: see docs/kafka.md (tansu shows open "
                                 "transactions)")
            arrived = max(arrived, committed)
        latencies.append(arrived - produced)
    return np.array(latencies), max(sent_out.value, 0), len(seen), time.time() - started


def summary(lat: np.ndarray) -> str:
    return (f"p50 {np.percentile(lat, 50):.0f} ms, p99 {np.percentile(lat, 99):.0f} ms, "
            f"max {lat.max():.0f} ms")


def latency(bootstrap: str, args: argparse.Namespace, delivery: str, tmp: Path,
            broker_pid: int | None) -> None:
    topics = create_topics(bootstrap, args.partitions)
    workdir = tmp / f"latency-{delivery}"
    workdir.mkdir()
    spec = pipeline_spec(bootstrap, topics, delivery, True, workdir, args.produce_at)
    proc = run_spec(spec, workdir, True)
    time.sleep(3)  # the run has started and polls the (still empty) input
    broker_cpu = cpu_seconds(broker_pid)
    marker = MarkerWatch(bootstrap, f"surestream-marker-surestream-{spec['pipeline']}-deduped",
                         topics["deduped"]) if delivery == "exactly_once" else None
    try:
        lat, sent, seen, wall = measure_visibility(bootstrap, topics["in"], topics["deduped"],
                                                   1, args, marker)
    finally:
        if marker is not None:
            marker.close()
    os.killpg(proc.pid, signal.SIGTERM)
    _, run_cpu = wait_with_cpu(proc, 60)
    broker_cpu = cpu_seconds(broker_pid) - broker_cpu
    if not len(lat):
        sys.exit(f"latency {delivery}: no record became visible; see {workdir / 'run.log'}")
    print(f"latency    {delivery:13s}: {sent:,} sent at {args.rate:,}/s, {seen:,} visible; "
          f"after {args.warmup} s warm-up {summary(lat)}; CPU over {wall:.0f} s: pipeline "
          f"{run_cpu:.1f} s, broker {broker_cpu:.1f} s", flush=True)


def broker_floor(bootstrap: str, args: argparse.Namespace, broker_pid: int | None) -> None:
    """The broker alone at the same rate: producer -> input topic -> read_committed
    consumer, no pipeline between (the pipeline's latency has two such hops)."""
    topics = create_topics(bootstrap, args.partitions)
    broker_cpu = cpu_seconds(broker_pid)
    lat, sent, seen, wall = measure_visibility(bootstrap, topics["in"], topics["in"],
                                               args.partitions, args)
    broker_cpu = cpu_seconds(broker_pid) - broker_cpu
    print(f"broker     one hop      : {sent:,} sent at {args.rate:,}/s, {seen:,} visible; "
          f"{summary(lat)}; CPU over {wall:.0f} s: broker {broker_cpu:.1f} s", flush=True)


def bare_read(bootstrap: str, args: argparse.Namespace, topic: str, n: int,
              broker_pid: int | None) -> None:
    """How fast a bare read_committed consumer (the source's fetch settings, no parsing)
    reads the throughput input: the broker's ceiling for the pipeline."""
    consumer = Consumer(consumer_config(bootstrap, f"bare-{uuid.uuid4()}", {}))
    consumer.assign([TopicPartition(topic, p, 0) for p in range(args.partitions)])
    broker_cpu = cpu_seconds(broker_pid)
    started, got, ended = time.perf_counter(), 0, 0
    while got < n or ended < args.partitions:
        for m in consumer.consume(10000, 0.05):
            if m.error() is None:
                got += 1
            elif m.error().code() == KafkaError._PARTITION_EOF:
                ended += 1
        if time.perf_counter() - started > 120:
            break
    wall = time.perf_counter() - started
    broker_cpu = cpu_seconds(broker_pid) - broker_cpu
    consumer.close()
    print(f"broker     bare read    : {got:,} events in {wall:.1f} s = {got / wall:,.0f} "
          f"events/s (read_committed consumer, no parsing); CPU: broker {broker_cpu:.1f} s",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", help="a Kafka cluster (default: an embedded broker)")
    ap.add_argument("--events", type=int, default=1_000_000, help="throughput run's events")
    ap.add_argument("--partitions", type=int, default=4, help="input topic partitions")
    ap.add_argument("--rate", type=int, default=20_000, help="latency run: events/s")
    ap.add_argument("--seconds", type=float, default=30, help="latency run: how long")
    ap.add_argument("--warmup", type=int, default=5, help="latency run: seconds left out")
    ap.add_argument("--produce-at", choices=["write", "commit"], default="write",
                    help="exactly_once outputs' produce_at (default: write)")
    ap.add_argument("--delivery", choices=["exactly_once", "at_least_once"],
                    help="one delivery only (default: both)")
    ap.add_argument("--only", choices=["throughput", "latency"],
                    help="one phase only (each also measures the broker alone: a bare read "
                         "of the input, a one-hop latency at the same rate)")
    args = ap.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="kafka-bench-") as tmp_s:
        tmp = Path(tmp_s)
        broker_pid = None
        if args.bootstrap:
            bootstrap = args.bootstrap
        else:
            broker = stack.enter_context(EmbeddedBroker(log=tmp / "broker.log"))
            bootstrap, broker_pid = broker.bootstrap, broker.pid
        deliveries = [args.delivery] if args.delivery else ["exactly_once", "at_least_once"]
        print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)",
              flush=True)
        if args.only != "latency":
            subprocess.run([sys.executable, str(GENERATOR), "--n", str(args.events), "--seed",
                            "7", "--out", str(tmp), "--parts", "0"], check=True,
                           stdout=subprocess.DEVNULL)
            trades = tmp / f"trades-{args.events}.jsonl"
            for delivery in deliveries:
                throughput(bootstrap, args, delivery, tmp, trades, broker_pid)
        if args.only != "throughput":
            broker_floor(bootstrap, args, broker_pid)
            for delivery in deliveries:
                latency(bootstrap, args, delivery, tmp, broker_pid)


if __name__ == "__main__":
    main()
