#!/usr/bin/env python3
"""Payments load (issue 13, item 8): simulated payments through Kafka at a paced rate into
the payment processor, exactly-once into DuckDB or PostgreSQL; throughput, lag, end-to-end
latency, then a reconciliation of every published transaction.

One trial:

1. the payments simulator (``apps/payments/simulator.py``) makes ``--rate`` x ``--seconds``
   transactions (event time: ``--rate`` a second, 2 % network retries) -- rendered before
   the clock starts, in a publisher process of its own (spawned), which then sends them to
   a fresh topic of the broker paced at ``--rate`` events/s (``kafka_publish.py``, keyed by
   transaction_id; each message's Kafka timestamp is its produce time);
2. the processor is the template (``payments(source="kafka", kafka_live=True)``) run as a
   user runs it: ``surestream run SPEC`` in a process of its own, its settings given only
   through ``KAFKA_BOOTSTRAP_SERVERS``, ``KAFKA_TOPIC_PAYMENTS`` and ``CHECKPOINT_LOCATION``,
   ``fetch.wait.max.ms=10`` (the source's default), checkpoints every ``--interval-ms``;
3. once every published record is read and checkpointed, the live run is stopped
   (SIGTERM: a last checkpoint) and a bounded run of the same spec (``stop_at: end``) from
   the same checkpoints drains what the 1 h watermark still holds (windows, the earliest
   occurrence of each transaction, fraud indicators), as a later hour of traffic would;
4. reconciliation (``payments reconcile``'s code) against the simulator's truth: every day
   PASS and every figure equal (each published transaction exactly once in
   ``payment_transactions``, duplicates, late, audit, fraud flags).

The figures, from the run's own record (``run-history.jsonl``: each checkpoint's commit
time and records read so far) and the topic's message timestamps, one partition so a
record's offset orders it: a record is *committed* at the first checkpoint whose records
read exceed its offset (its effects -- rows written, or state held -- are durable and its
outputs visible); its end-to-end latency is that commit time minus its publish time.
With ``--dedup-strategy first`` the deduplicated row is written at once, so this is the
time until the row is visible in ``payment_transactions``; with the template's
``earliest`` the row is emitted only when the watermark passes its window (an event-time
hold: 2 h of event time with the plan's 1 h watermark and window), and the figure is the
time until the record is durably processed. Throughput: records committed per second
between the first publish and the last commit; lag: records published but not yet read,
from the run's 0.2 s samples (at the end of publishing, and the largest).

    python benchmarks/payments_load.py --rate 10000 --seconds 60 --interval-ms 1000
    python benchmarks/payments_load.py --rate 10000 --seconds 60 --interval-ms 250 --sink postgres
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from surestream.apps.payments.kafka_publish import PaymentPublisher, ensure_topic
from surestream.apps.payments.reconcile import reconcile
from surestream.apps.payments.simulator import PaymentSimulation
from surestream.apps.payments.template import payments
from surestream.connectors.kafka.broker import EmbeddedBroker

WARMUP_S = 5.0


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a live process has used so far (Linux /proc)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:13]) / os.sysconf("SC_CLK_TCK")


def wait_with_cpu(proc: subprocess.Popen, timeout_s: float = 300) -> tuple[int, float]:
    """Wait for ``proc``: its exit code and the CPU seconds it used."""
    deadline = time.monotonic() + timeout_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            proc.kill()
        time.sleep(0.05)


def publisher(bootstrap: str, topic: str, settings: dict[str, Any], rate: float,
              ready: Any, go: Any, out: Any) -> None:
    """The publisher process: render the stream, say ready, publish paced at ``rate``
    when told; put (sent, acked, seconds, cpu seconds) on ``out``."""
    sim = PaymentSimulation(**settings)
    cols, _ = sim.generate()
    lines = list(sim.iter_lines(cols))
    pub = PaymentPublisher(bootstrap, topic)
    ready.set()
    go.wait()
    cpu = time.process_time()
    result = pub.publish(lines, rate)
    out.put((result.sent, result.acked, result.seconds, time.process_time() - cpu))


def history(folder: Path) -> list[dict[str, Any]]:
    path = folder / "run-history.jsonl"
    if not path.exists():
        return []
    lines = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):  # a line being written
            lines.append(json.loads(line))
    return lines


def read_timestamps(bootstrap: str, topic: str, n: int) -> np.ndarray:
    """The Kafka timestamps (ms) of offsets 0..n-1 of partition 0."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ts-{uuid.uuid4()}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 10})
    consumer.assign([TopicPartition(topic, 0, 0)])
    stamps = np.full(n, -1, dtype=np.int64)
    got, deadline = 0, time.monotonic() + 120
    while got < n and time.monotonic() < deadline:
        for m in consumer.consume(10_000, 0.1):
            if m.error() is None and m.offset() < n:
                stamps[m.offset()] = m.timestamp()[1]
                got += 1
    consumer.close()
    if (stamps < 0).any():
        raise SystemExit(f"{topic}: only {got:,} of {n:,} timestamps read back")
    return stamps


def percentiles(lat_ms: np.ndarray) -> str:
    p50, p95, p99 = np.percentile(lat_ms, [50, 95, 99])
    return f"p50 {p50:,.0f} / p95 {p95:,.0f} / p99 {p99:,.0f} / max {lat_ms.max():,.0f} ms"


def trial(bootstrap: str, broker_pid: int | None, args: argparse.Namespace, tmp: Path,
          interval_ms: int, sink: str, dsn: str | None) -> dict[str, Any]:
    topic = f"payments.load.{uuid.uuid4().hex[:8]}"
    ensure_topic(bootstrap, topic, 1)
    work = tmp / f"{sink}-{interval_ms}ms-{topic}"
    work.mkdir()
    settings = {"seed": args.seed, "tps": args.rate, "hours": args.seconds / 3600}
    truth = PaymentSimulation(**settings).generate()[1]
    spec = payments(source="kafka", kafka_live=True, out_dir=str(work), postgres=dsn,
                    pipeline=f"load-{topic.rsplit('.', 1)[1]}",
                    dedup_strategy=args.dedup_strategy, checkpoint_interval_ms=interval_ms,
                    batch_size=args.batch_size)
    spec["runtime"]["max_batch_delay_ms"] = args.max_batch_delay_ms
    if args.without_audit:  # to measure the rest: the audit left out
        for doc in (spec,):
            _drop_audit(doc)
    live_path, drain_path = work / "payments-live.yaml", work / "payments-drain.yaml"
    live_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    drain = payments(source="kafka", kafka_live=False, out_dir=str(work), postgres=dsn,
                     pipeline=spec["pipeline"], dedup_strategy=args.dedup_strategy,
                     checkpoint_interval_ms=interval_ms, batch_size=args.batch_size)
    if args.without_audit:
        _drop_audit(drain)
    drain_path.write_text(yaml.safe_dump(drain, sort_keys=False))
    checkpoints = work / "checkpoints"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_TOPIC_PAYMENTS": topic,
           "CHECKPOINT_LOCATION": str(checkpoints)}

    spawn = multiprocessing.get_context("spawn")
    ready, go, out = spawn.Event(), spawn.Event(), spawn.Queue()
    feeder = spawn.Process(target=publisher, args=(bootstrap, topic, settings, args.rate,
                                                   ready, go, out))
    feeder.start()
    ready.wait(300)
    with open(work / "run.log", "wb") as log:
        profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
        run = subprocess.Popen([sys.executable, *profile, "-m", "surestream", "run",
                                str(live_path)],
                               stdout=subprocess.DEVNULL, stderr=log, env=env,
                               start_new_session=True)
    while not history(checkpoints) and run.poll() is None:  # started and polling
        time.sleep(0.1)
    time.sleep(1.0)
    load_before = os.getloadavg()[0]
    broker_cpu = cpu_seconds(broker_pid)
    go.set()
    sent, acked, pub_seconds, pub_cpu = out.get(timeout=args.seconds * 10 + 300)
    feeder.join()
    if acked != sent:
        raise SystemExit(f"only {acked:,} of {sent:,} published records acknowledged")
    # wait until a checkpoint covers every published record (or the run falls too far behind)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and run.poll() is None:
        done = [h for h in history(checkpoints)
                if h["kind"] == "checkpoint" and (h.get("records_in") or 0) >= sent]
        if done:
            break
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGTERM)
    rc, run_cpu = wait_with_cpu(run)
    broker_cpu = cpu_seconds(broker_pid) - broker_cpu
    load_after = os.getloadavg()[0]
    if rc != 0:
        raise SystemExit(f"live run failed (exit {rc}); see {work / 'run.log'}")

    lines = history(checkpoints)
    marks = sorted((h["records_in"], h["at_ms"]) for h in lines
                   if h["kind"] == "checkpoint" and h.get("records_in") is not None)
    read_in = np.array([m[0] for m in marks], dtype=np.int64)
    at_ms = np.array([m[1] for m in marks], dtype=np.int64)
    stamps = read_timestamps(bootstrap, topic, sent)
    which = np.searchsorted(read_in, np.arange(sent), side="right")
    if which.max() >= len(marks):
        raise SystemExit(f"{int((which >= len(marks)).sum()):,} records never checkpointed")
    latency = at_ms[which] - stamps
    steady = latency[stamps >= stamps[0] + WARMUP_S * 1000]
    samples = sorted((h["at_ms"], h["records_in"]) for h in lines
                     if h["kind"] in ("sample", "checkpoint") and h.get("records_in") is not None)
    sample_t = np.array([s[0] for s in samples])
    sample_n = np.array([s[1] for s in samples])
    published_by = np.searchsorted(stamps, sample_t, side="right")
    lag = published_by - sample_n
    end_publish = stamps[-1]
    lag_end = int(lag[sample_t <= end_publish][-1]) if (sample_t <= end_publish).any() else 0
    throughput = sent / max((at_ms[which[-1]] - stamps[0]) / 1000, 1e-9)

    # drain what the watermark holds: the same spec, bounded, from the same checkpoints
    started = time.perf_counter()
    drained = subprocess.run([sys.executable, "-m", "surestream", "run", str(drain_path)],
                             capture_output=True, text=True, env=env, timeout=600)
    drain_s = time.perf_counter() - started
    if drained.returncode != 0:
        raise SystemExit(f"drain run failed: {drained.stderr[-2000:]}")
    result = reconcile(dsn or str(work / "payments.duckdb"), truth, checkpoints)
    figures = {
        "sink": sink, "interval_ms": interval_ms, "rate": args.rate, "seconds": args.seconds,
        "dedup_strategy": args.dedup_strategy, "sent": sent,
        "publish_rate": sent / max((stamps[-1] - stamps[0]) / 1000, 1e-9),
        "publisher_seconds": pub_seconds, "throughput": throughput,
        "lag_end_of_publish": lag_end, "lag_max": int(lag.max(initial=0)),
        "tail_ms": int(latency[-1]), "latency_all": percentiles(latency),
        "latency_steady": percentiles(steady),
        "checkpoints": len(marks), "cpu_run": run_cpu, "cpu_broker": broker_cpu,
        "cpu_publisher": pub_cpu, "load_before": load_before, "load_after": load_after,
        "drain_s": drain_s, "reconciled": result.ok, "without_audit": args.without_audit,
        "truth": {"unique": truth.unique, "duplicates": truth.duplicates,
                  "late": truth.late},
    }
    print(f"\n{sink}, checkpoints every {interval_ms} ms, dedup {args.dedup_strategy}: "
          f"{sent:,} published in {pub_seconds:.1f} s "
          f"({figures['publish_rate']:,.0f}/s by Kafka timestamps)")
    print(f"  throughput {throughput:,.0f} records committed/s (first publish -> last "
          f"commit); lag at the end of publishing {lag_end:,} records, largest {lag.max():,}; "
          f"last record committed {latency[-1]:,} ms after its publish")
    print(f"  end-to-end latency (publish -> committed), all: {figures['latency_all']}")
    print(f"  after a {WARMUP_S:g} s warm-up: {figures['latency_steady']}")
    print(f"  {len(marks)} checkpoints; CPU s: run {run_cpu:.1f}, broker {broker_cpu:.1f}, "
          f"publisher {pub_cpu:.1f}; load average {load_before:.2f} -> {load_after:.2f}")
    print(f"  drain (bounded run from the checkpoints) {drain_s:.1f} s; reconciliation: "
          f"{'every day PASS, every figure equal to the truth' if result.ok else 'FAILED'}")
    if not result.ok:
        print("\n".join("    " + line for line in result.lines()))
    return figures


def _drop_audit(spec: dict[str, Any]) -> None:
    """The spec without the ``deduplication_audit`` stream (``--without-audit``)."""
    spec["streams"].pop("audit")
    for step in spec["streams"]["transactions"]["steps"]:
        step.pop("occurrences_output_tag", None)
    for tag in ("audit", "late_audit"):
        spec["outputs"].pop(tag, None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", help="a Kafka cluster (default: an embedded broker)")
    ap.add_argument("--rate", type=float, default=10_000, help="events/s published")
    ap.add_argument("--seconds", type=float, default=60, help="how long to publish")
    ap.add_argument("--interval-ms", type=int, nargs="+", default=[1000, 250],
                    help="checkpoint intervals, one trial each")
    ap.add_argument("--sink", choices=["duckdb", "postgres"], nargs="+", default=["duckdb"],
                    help="tables: embedded DuckDB, or an embedded PostgreSQL server")
    ap.add_argument("--dedup-strategy", choices=["earliest", "first"], default="earliest",
                    help="keyed_dedup strategy (template default: earliest)")
    ap.add_argument("--batch-size", type=int, default=65_536)
    ap.add_argument("--max-batch-delay-ms", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--without-audit", action="store_true",
                    help="leave the audit out (its table stays empty, so "
                         "the reconciliation fails on the audit rows): what the rest costs")
    ap.add_argument("--profile", help="cProfile the live run into this file")
    ap.add_argument("--keep", help="work in this folder and keep it (default: a temporary one)")
    args = ap.parse_args()
    figures = []
    with ExitStack() as stack:
        if args.keep:
            tmp = Path(args.keep)
            tmp.mkdir(parents=True, exist_ok=True)
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="payments-load-")))
        broker_pid = None
        if args.bootstrap:
            bootstrap = args.bootstrap
        else:
            broker = stack.enter_context(EmbeddedBroker(log=tmp / "broker.log"))
            bootstrap, broker_pid = broker.bootstrap, broker.pid
        server = None
        if "postgres" in args.sink:
            from surestream.connectors.tables.postgres_server import EmbeddedPostgres

            server = stack.enter_context(EmbeddedPostgres())
        print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; broker "
              f"{bootstrap}", flush=True)
        for sink in args.sink:
            for interval in args.interval_ms:
                dsn_trial = (server.dsn(server.create_database())  # one database a trial
                             if sink == "postgres" and server else None)
                figures.append(trial(bootstrap, broker_pid, args, tmp, interval, sink,
                                     dsn_trial))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")



if __name__ == "__main__":
    main()
