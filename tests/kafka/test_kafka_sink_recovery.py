"""The Kafka sink's recovery protocol at every crash point, zombie fencing, at-least-once.

A crash is simulated in-process: the sink instance is abandoned mid-protocol (its producer
stays alive, as a zombie would) and a new instance -- a restarted run -- opens the output
and recovers to the latest durable checkpoint, then the run goes on with the same input.
The topic is read back with ``read_committed``; on tansu, which returns records of aborted
transactions too, each checkpoint's last attempt is kept (``reader.py``); against a real
Kafka cluster (``SURESTREAM_TEST_KAFKA``) the plain read_committed content is checked.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from surestream.connectors.kafka.broker import TEST_CLUSTER_ENV
from surestream.connectors.kafka.reader import committed_messages, read_all
from surestream.connectors.kafka.sink import (
    KafkaTopicSink,
    ProducerFencedError,
    TopicHoldsEarlierRunError,
)
from surestream.model.spec import KafkaSink

REAL_KAFKA = bool(os.environ.get(TEST_CLUSTER_ENV))


class Crash(Exception):
    """The simulated process death."""


def create_topic(bootstrap: str, topic: str, partitions: int = 3) -> str:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        f.result(30)
    return topic


def topic_records(bootstrap: str, topic: str) -> list[dict]:
    """What a read_committed consumer sees (tansu: each checkpoint's last attempt)."""
    return [m.record() for m in committed_messages(read_all(bootstrap, topic),
                                                   last_attempt_only=not REAL_KAFKA)]


#: the input of each checkpoint: checkpoint n holds records n*100 .. n*100+9 in two batches
CHECKPOINTS = 4


def batches(n: int) -> list[pl.DataFrame]:
    ids = list(range(n * 100, n * 100 + 10))
    return [pl.DataFrame({"id": ids[:6], "sym": [f"S{i % 3}" for i in ids[:6]]}),
            pl.DataFrame({"id": ids[6:], "sym": [f"S{i % 3}" for i in ids[6:]]})]


def expected() -> list[dict]:
    return [r for n in range(1, CHECKPOINTS + 1) for b in batches(n) for r in b.to_dicts()]


class Harness:
    """A runner's side of the protocol with a durable checkpoint store in a dict."""

    def __init__(self, bootstrap: str, topic: str, staging: Path, **spec: object) -> None:
        self.spec = KafkaSink(topic=topic, key_fields=["sym"], **spec)
        self.bootstrap, self.staging = bootstrap, staging
        self.durable: dict[int, dict] = {}  # checkpoint id -> committable
        self.abandoned: list[KafkaTopicSink] = []

    def new_sink(self) -> KafkaTopicSink:
        return KafkaTopicSink(self.spec, bootstrap=self.bootstrap, pipeline="p", tag="main",
                              staging=self.staging)

    def start(self) -> tuple[KafkaTopicSink, int]:
        """A (re)started run: open, recover to the latest durable checkpoint; returns the
        sink and the first checkpoint still to produce."""
        sink = self.new_sink()
        if not self.durable:
            sink.open(fresh=True)
            return sink, 1
        n = max(self.durable)
        sink.open(fresh=False)
        sink.recover(self.durable[n], n)
        return sink, n + 1

    def run(self, crash_at: str | None = None, crash_checkpoint: int = 2) -> None:
        """Run to the end; crash once at ``crash_at`` in checkpoint ``crash_checkpoint``."""
        sink, n = self.start()
        while n <= CHECKPOINTS:
            try:
                self.checkpoint(sink, n, crash_at if n == crash_checkpoint else None)
            except Crash:
                crash_at = None
                self.abandoned.append(sink)  # never closed: a zombie producer
                sink, n = self.start()
                continue
            n += 1
        sink.close()

    def checkpoint(self, sink: KafkaTopicSink, n: int, crash_at: str | None) -> None:
        def point(name: str) -> None:
            if name == crash_at:
                raise Crash(name)

        sink.on_point = point
        for b in batches(n):
            sink.write(b)
        committable = sink.pre_commit(n)
        point("pre_committed")  # the checkpoint is not durable yet
        self.durable[n] = committable
        point("durable")
        sink.commit(committable)  # kafka.mid_produce, kafka.produced, kafka.marker_sent,
        point("committed")  # kafka.committed: then the checkpoint is "done"


CRASH_POINTS = ["pre_committed", "durable", "kafka.mid_produce", "kafka.produced",
                "kafka.marker_sent", "kafka.committed"]


@pytest.mark.parametrize("crash_at", CRASH_POINTS)
def test_a_crash_at_any_point_of_a_checkpoint_neither_loses_nor_duplicates(
        crash_at, kafka_bootstrap, kafka_topic, tmp_path) -> None:
    topic = create_topic(kafka_bootstrap, kafka_topic("out"))
    harness = Harness(kafka_bootstrap, topic, tmp_path / "staging")
    harness.run(crash_at)
    assert topic_records(kafka_bootstrap, topic) == expected()
    # staged files of landed checkpoints are gone
    assert not list((tmp_path / "staging").glob("part-*"))
    # which attempts reached the topic: a checkpoint whose transaction committed before
    # the crash is never produced again (the marker says it landed) -- the check that the
    # last-attempt rule of the reader cannot hide a second commit
    attempts: dict[int, set[int]] = {}
    for m in read_all(kafka_bootstrap, topic):
        attempts.setdefault(int(m.header("surestream.checkpoint")), set()).add(
            int(m.header("surestream.attempt")))
    assert {n: a for n, a in attempts.items() if n != 2} == {1: {1}, 3: {1}, 4: {1}}
    if crash_at in ("kafka.produced", "kafka.marker_sent"):  # aborted after a flush
        assert attempts[2] == ({2} if REAL_KAFKA else {1, 2})
    elif crash_at == "kafka.mid_produce":  # some of attempt 1 may have been sent
        assert attempts[2] in ({2}, {1, 2})
    else:
        assert attempts[2] == {1}


def test_the_crash_left_an_aborted_attempt_that_only_the_last_attempt_rule_removes(
        kafka_bootstrap, kafka_topic, tmp_path) -> None:
    """The crash in the middle of producing really leaves records behind on a broker that
    does not filter aborted transactions -- the case the reader's rule is for -- and on a
    real Kafka cluster read_committed never shows them."""
    topic = create_topic(kafka_bootstrap, kafka_topic("out"))
    Harness(kafka_bootstrap, topic, tmp_path / "staging").run("kafka.produced")
    raw = read_all(kafka_bootstrap, topic)
    attempts = {(m.header("surestream.checkpoint"), m.header("surestream.attempt"))
                for m in raw}
    if REAL_KAFKA:
        assert [m.record() for m in committed_messages(raw, last_attempt_only=False)] \
            == expected()
    else:
        assert ("2", "1") in attempts and ("2", "2") in attempts  # the aborted one is read
        assert len(raw) == len(expected()) + 10


def test_a_zombie_producer_is_fenced_and_stops_naming_the_output(
        kafka_bootstrap, kafka_topic, tmp_path) -> None:
    """A run stalls in the middle of producing checkpoint 1; meanwhile its replacement
    starts with the same transactional id and recovers. The stalled producer, waking up,
    is fenced: its commit fails naming the output, once, and the topic holds every record
    once."""
    topic = create_topic(kafka_bootstrap, kafka_topic("out"))
    harness = Harness(kafka_bootstrap, topic, tmp_path / "staging")
    zombie, _ = harness.start()
    for b in batches(1):
        zombie.write(b)
    harness.durable[1] = zombie.pre_commit(1)
    successors: list[KafkaTopicSink] = []

    def stall(point: str) -> None:
        if point == "kafka.mid_produce" and not successors:
            successors.append(harness.start()[0])  # fences the zombie, commits checkpoint 1

    zombie.on_point = stall
    with pytest.raises(ProducerFencedError, match=r"output 'main' \(Kafka topic .*took over"):
        zombie.commit(harness.durable[1])
    successor = successors[0]
    for n in range(2, CHECKPOINTS + 1):
        harness.checkpoint(successor, n, None)
    successor.close()
    assert topic_records(kafka_bootstrap, topic) == expected()


def test_a_fresh_run_refuses_a_topic_holding_an_earlier_runs_output(
        kafka_bootstrap, kafka_topic, tmp_path) -> None:
    topic = create_topic(kafka_bootstrap, kafka_topic("out"))
    Harness(kafka_bootstrap, topic, tmp_path / "s1").run()
    again = Harness(kafka_bootstrap, topic, tmp_path / "s2")
    with pytest.raises(TopicHoldsEarlierRunError, match="fresh_start: append"):
        again.run()
    Harness(kafka_bootstrap, topic, tmp_path / "s3", fresh_start="append").run()
    assert topic_records(kafka_bootstrap, topic) == expected() + expected()


def test_at_least_once_never_loses_a_record_across_a_crash(
        kafka_bootstrap, kafka_topic, tmp_path) -> None:
    topic = create_topic(kafka_bootstrap, kafka_topic("out"))
    harness = Harness(kafka_bootstrap, topic, tmp_path / "staging", delivery="at_least_once")
    for crash_at in ["pre_committed", "durable"]:
        harness.durable.clear()
        harness.run(crash_at)
    got = [m for m in read_all(kafka_bootstrap, topic)]
    records = [m.record() for m in got]
    for r in expected():
        assert r in records
    # each run's records carry (checkpoint, index): duplicates are recognisable
    per_run = {}
    for m in got:
        per_run.setdefault(m.header("surestream.run"), set()).add(
            (m.header("surestream.checkpoint"), m.header("surestream.index")))
    assert sorted(len(keys) for keys in per_run.values()) == [len(expected())] * 2


def test_restoring_a_checkpoint_older_than_the_topic_is_refused(
        kafka_bootstrap, kafka_topic, tmp_path) -> None:
    """Checkpoint 4 landed; restoring checkpoint 2 (a savepoint, a damaged newer one)
    would write 3 and 4 again, and nothing can be deleted from a topic: refused, nothing
    written."""
    from surestream.connectors.sink_protocol import SinkRecoveryError

    topic = create_topic(kafka_bootstrap, kafka_topic("out"))
    harness = Harness(kafka_bootstrap, topic, tmp_path / "staging")
    harness.run()
    sink = harness.new_sink()
    sink.open(fresh=False)
    with pytest.raises(SinkRecoveryError, match="output of checkpoint 4, newer than "
                                                "checkpoint 2"):
        sink.recover(harness.durable[2], 2)
    sink.close()
    assert topic_records(kafka_bootstrap, topic) == expected()


def test_a_missing_topic_is_named_and_never_created(kafka_bootstrap, kafka_topic,
                                                    tmp_path) -> None:
    from surestream.connectors.kafka.sink import TopicMissingError

    topic = kafka_topic("absent")
    sink = Harness(kafka_bootstrap, topic, tmp_path / "staging").new_sink()
    with pytest.raises(TopicMissingError, match=f"output 'main' \\(Kafka topic {topic}\\): "
                                                "the topic does not exist"):
        sink.open(fresh=True)
