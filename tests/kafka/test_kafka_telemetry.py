"""The Kafka probes of a run's telemetry snapshot, against a real broker: each partition's
position, end offset, lag and records consumed; each Kafka output's records produced (equal
to what the topic holds) and its producer latency."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from live_source_helpers import create_topic

from surestream.model.loader import load_spec
from surestream.runners.local.runner import LocalRunner
from surestream.runners.local.telemetry import build_snapshot


def produce_one_per_batch(bootstrap: str, topic: str, partition: int, first: int,
                          n: int) -> None:
    """``n`` records into ``partition``, each in a batch of its own (acknowledged before
    the next is sent): tansu's high watermark is then the exact end."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i in range(first, first + n):
        p.produce(topic, json.dumps({"id": i, "ts": 1_000 * i}).encode(), partition=partition)
        assert p.flush(30) == 0


def records_in(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` holds (read_committed, every partition to its end)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "telemetry-readback",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "isolation.level": "read_committed", "fetch.wait.max.ms": 10})
    try:
        parts = c.list_topics(topic, 10).topics[topic].partitions
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        left, n = set(parts), 0
        deadline = time.monotonic() + 30
        while left and time.monotonic() < deadline:
            for m in c.consume(1000, 0.1):
                if m.error() is None:
                    n += 1
                elif m.error().code() == KafkaError._PARTITION_EOF:
                    left.discard(m.partition())
        assert not left, "the topic was not read to its end"
        return n
    finally:
        c.close()


def spec_for(tmp_path, bootstrap: str, topic: str, out: str,
             source: dict[str, Any] | None = None, sink: dict[str, Any] | None = None):
    doc = {
        "pipeline": "ktel",
        "source": {"type": "kafka", "bootstrap": bootstrap, "topics": [topic],
                   "schema": {"id": "int", "ts": "int"}, **(source or {})},
        "steps": [{"type": "watermark", "timestamp_column": "ts"}],
        "outputs": {"main": {"type": "kafka", "bootstrap": bootstrap, "topic": out,
                             **(sink or {})}},
        "checkpoint": {"dir": str(tmp_path / "cp"), "interval_ms": 100},
        "runtime": {"batch_size": 5, "max_batch_delay_ms": 20},
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(doc))
    return load_spec(str(path), ())


def kafka_of(snap: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {p["kafka"]["partition"]: p["kafka"] for p in snap["partitions"]}


def sink_of(snap: dict[str, Any]) -> dict[str, Any]:
    return next(o["sink"] for o in snap["outputs"] if o["tag"] == "main")


def wait_for(cond, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class ParkedRun:
    """A live LocalRunner in a thread that can be parked inside a snapshot listener (its
    loop stands still there), and a snapshot built in its thread while it is parked."""

    def __init__(self, spec) -> None:
        self.runner = LocalRunner(spec)
        self.error: BaseException | None = None
        self._park = threading.Event()
        self.parked = threading.Event()
        self._gate = threading.Event()
        self.parked_snapshot: dict[str, Any] | None = None
        self.runner.telemetry.listeners.append(self._listen)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.runner.run()
        except BaseException as e:  # noqa: BLE001 - re-raised by stop()
            self.error = e

    def _listen(self, snap: dict[str, Any]) -> None:
        if not self._park.is_set():
            return
        self._park.clear()
        self.parked.set()
        self._gate.wait(60)
        # the runner's own snapshot code, in its thread, before it reads anything more
        self.parked_snapshot = build_snapshot(self.runner.telemetry, self.runner)

    def park(self) -> None:
        self._park.set()
        assert self.parked.wait(30), "the run did not publish a snapshot"

    def release(self) -> dict[str, Any]:
        self._gate.set()
        wait_for(lambda: self.parked_snapshot is not None)
        return self.parked_snapshot

    @property
    def snapshot(self) -> dict[str, Any]:
        return self.runner.telemetry.snapshot

    def stop(self) -> None:
        self._gate.set()
        self.runner.request_stop()
        self.thread.join(60)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def test_live_snapshot_shows_consumed_lag_and_produced(kafka_bootstrap, kafka_topic,
                                                       tmp_path) -> None:
    source, out = kafka_topic("in"), kafka_topic("out")
    create_topic(kafka_bootstrap, source, 2)
    create_topic(kafka_bootstrap, out, 1)
    first = {0: 7, 1: 4}  # records per partition before the run starts
    for part, n in first.items():
        produce_one_per_batch(kafka_bootstrap, source, part, 100 * part, n)
    run = ParkedRun(spec_for(tmp_path, kafka_bootstrap, source, out))
    try:
        def caught_up(expected: dict[int, int]) -> bool:
            snap = run.snapshot
            if not snap:
                return False
            k = kafka_of(snap)
            return all(k.get(p, {}).get("consumed") == n and k[p]["lag"] == 0
                       for p, n in expected.items()) and \
                sink_of(snap)["produced"] == sum(expected.values())

        wait_for(lambda: caught_up(first))
        k = kafka_of(run.snapshot)
        group = "surestream-ktel"
        assert {p: (e["topic"], e["group"], e["position"], e["end_offset"])
                for p, e in k.items()} == {p: (source, group, n, n) for p, n in first.items()}

        # the run stands still while more records arrive: they are its lag
        run.park()
        more = {0: 3, 1: 5}
        for part, n in more.items():
            produce_one_per_batch(kafka_bootstrap, source, part, 100 * part + first[part], n)
        readers = {p.reader.tp[1]: p.reader for p in run.runner.interleaver.partitions}
        wait_for(lambda: all(readers[p].feed.known_end(readers[p].tp) == first[p] + more[p]
                             for p in more))
        parked = kafka_of(run.release())
        assert {p: (e["position"], e["end_offset"], e["lag"], e["consumed"])
                for p, e in parked.items()} == \
            {p: (first[p], first[p] + more[p], more[p], first[p]) for p in first}

        total = {p: first[p] + more[p] for p in first}
        wait_for(lambda: caught_up(total))
    finally:
        run.stop()
    final = run.snapshot
    assert {p: (e["consumed"], e["lag"], e["end_offset"]) for p, e in kafka_of(final).items()} \
        == {p: (n, 0, n) for p, n in total.items()}
    sink = sink_of(final)
    assert sink["topic"] == out and sink["failed"] == 0
    assert sink["produced"] == records_in(kafka_bootstrap, out) == sum(total.values())
    latency = sink["latency"]  # a sample of the records is timed in a transaction
    assert 1 <= latency["count"] <= sink["produced"] and latency["sum"] > 0
    assert sum(latency["counts"]) == latency["count"]


def test_bounded_run_at_least_once_counts_every_delivery(kafka_bootstrap, kafka_topic,
                                                         tmp_path) -> None:
    source, out = kafka_topic("in"), kafka_topic("out")
    create_topic(kafka_bootstrap, source, 2)
    create_topic(kafka_bootstrap, out, 2)
    sizes = {0: 6, 1: 9}
    for part, n in sizes.items():
        produce_one_per_batch(kafka_bootstrap, source, part, 100 * part, n)
    spec = spec_for(tmp_path, kafka_bootstrap, source, out,
                    source={"stop_at": "end", "group_id": "bounded-group"},
                    sink={"delivery": "at_least_once"})
    runner = LocalRunner(spec)
    runner.run()
    snap = runner.telemetry.snapshot
    assert snap["state"] == "finished"
    assert {p: (e["group"], e["position"], e["end_offset"], e["lag"], e["consumed"])
            for p, e in kafka_of(snap).items()} == \
        {p: ("bounded-group", n, n, 0, n) for p, n in sizes.items()}
    sink = sink_of(snap)
    total = sum(sizes.values())
    assert (sink["produced"], sink["failed"]) == (total, 0)
    assert records_in(kafka_bootstrap, out) == total
    assert sink["latency"]["count"] == total  # every delivery report timed
