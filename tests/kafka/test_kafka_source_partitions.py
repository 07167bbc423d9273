"""A live run picks up partitions created while it runs (from their earliest offset; the
watermark step learns them), and waits through a broker restart without losing a record."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from live_source_helpers import add_partitions, create_topic, produce, trades
from test_kafka_live_replay import lines, live_spec, wait_for

from surestream.cli.replay import redirected
from surestream.model.loader import load_spec
from surestream.runners.local import runner as runner_module
from surestream.runners.local.journal import read_journal
from surestream.runners.local.runner import LocalRunner
from surestream.semantics.watermark_step import WatermarkOperator


class Background:
    """A LocalRunner running in a thread until ``stop``."""

    def __init__(self, spec) -> None:
        self.runner = LocalRunner(spec)
        self.error: BaseException | None = None
        self.result = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self.runner.run()
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self.error = e

    def stop(self):
        self.runner.request_stop()
        self.thread.join(60)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error
        return self.result


def grow(bootstrap: str, topic: str, total: int) -> bool:
    """Add partitions to ``topic``; False where the broker cannot (tansu has no
    CreatePartitions: there the test's second topic, created mid-run, brings the new
    partitions instead; a real cluster named by SURESTREAM_TEST_KAFKA does both)."""
    from confluent_kafka import KafkaError, KafkaException

    try:
        add_partitions(bootstrap, topic, total)
    except KafkaException as e:
        if e.args[0].code() == KafkaError._UNSUPPORTED_FEATURE:
            return False
        raise
    return True


def test_new_partitions_are_read_from_their_start(kafka_bootstrap, kafka_topic, tmp_path,
                                                   monkeypatch) -> None:
    """Partitions that appear while the run is live -- a second topic of the source created
    mid-run, and partitions added to the first where the broker can -- are read from
    their first record, and the watermark step waits for them too."""
    monkeypatch.setattr(runner_module, "PARTITION_REFRESH_S", 0.2)
    first, second = kafka_topic("grow"), kafka_topic("later")
    create_topic(kafka_bootstrap, first, 1)
    produce(kafka_bootstrap, first, trades(10, 1))
    path = live_spec(tmp_path, kafka_bootstrap, first)
    spec = load_spec(str(path), (f"source.topics=[{first}, {second}]",))
    bg = Background(spec)
    stamped = tmp_path / "live" / "stamped.jsonl"
    try:
        wait_for(lambda: len(lines(stamped)) == 10)
        create_topic(kafka_bootstrap, second, 2)
        produce(kafka_bootstrap, second, [(i % 2, v) for i, (_, v)
                                          in enumerate(trades(12, 1, start=10))])
        expected = 22
        grown = grow(kafka_bootstrap, first, 2)
        if grown:
            produce(kafka_bootstrap, first, [(1, v) for _, v in trades(5, 1, start=22)])
            expected = 27
        wait_for(lambda: len(lines(stamped)) == expected)
    finally:
        result = bg.stop()
    assert result.interrupted and result.resume_from is not None
    assert sorted(r["trade_id"] for r in lines(stamped)) == list(range(expected))
    names = [p.name for p in bg.runner.interleaver.partitions]
    assert names[:3] == [f"{first}[0]", f"{second}[0]", f"{second}[1]"]
    assert names[3:] == ([f"{first}[1]"] if grown else [])
    wm = next(op for s in bg.runner.streams for op in s.operators
              if isinstance(op, WatermarkOperator))
    assert sorted(wm.tracker.partitions) == list(range(len(names)))
    # the journal names the partitions added, so the replay reads the same
    plan = read_journal(tmp_path / "cp")
    assert any(e.get("add") for kind, e in plan.events if kind == "step")
    out = tmp_path / "replay"
    LocalRunner(redirected(spec, out), replay=plan).run()
    assert (out / "stamped.jsonl").read_bytes() == stamped.read_bytes()


@pytest.fixture
def s3_broker(tmp_path):
    """A tansu broker keeping its records in S3 (a local moto server): they survive a
    broker restart."""
    import boto3
    from moto.server import ThreadedMotoServer

    from surestream.connectors.kafka.broker import EmbeddedBroker, free_port

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="x",
                 aws_secret_access_key="x", region_name="us-east-1").create_bucket(
        Bucket="tansu")
    broker = EmbeddedBroker(storage="s3://tansu/", env=env, log=tmp_path / "broker.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        moto.stop()


def test_a_broker_restart_mid_run_loses_nothing(s3_broker, tmp_path: Path) -> None:
    bootstrap = s3_broker.bootstrap
    topic = "restart"
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, trades(20, 2))
    spec = load_spec(str(live_spec(tmp_path, bootstrap, topic)), ())
    bg = Background(spec)
    stamped = tmp_path / "live" / "stamped.jsonl"
    try:
        wait_for(lambda: len(lines(stamped)) == 20)
        s3_broker.stop()  # the run waits (librdkafka reconnects)
        threading.Event().wait(1.0)
        assert bg.thread.is_alive() and bg.error is None
        s3_broker.start()
        produce(bootstrap, topic, trades(20, 2, start=20))
        wait_for(lambda: len(lines(stamped)) == 40, timeout_s=120)
    finally:
        bg.stop()
    assert sorted(r["trade_id"] for r in lines(stamped)) == list(range(40))


@pytest.mark.parametrize("advance_ms", [0, 10_000])
def test_live_idleness_runs_on_the_injected_clock(kafka_bootstrap, kafka_topic, tmp_path,
                                                  advance_ms) -> None:
    """Partition 1 never gets a record. With a clock that stands still it is never idle,
    so the watermark stays at -infinity and no window fires; with a clock that moves 10 s a
    step it is idle after 1 s, and the windows of partition 0 fire."""
    topic = kafka_topic("idle")
    create_topic(kafka_bootstrap, topic, 2)
    produce(kafka_bootstrap, topic, [(0, v) for _, v in trades(30, 1)])
    spec = load_spec(str(live_spec(tmp_path, kafka_bootstrap, topic)), ())
    ticks = iter(range(0, 10**12, advance_ms or 1))
    fixed = 1_700_000_000_000

    def clock() -> int:
        return fixed + (next(ticks) if advance_ms else 0)

    runner = LocalRunner(spec, clock=clock)
    bg = Background.__new__(Background)
    bg.runner, bg.error, bg.result = runner, None, None
    bg.thread = threading.Thread(target=bg._run, daemon=True)
    bg.thread.start()
    stamped = tmp_path / "live" / "stamped.jsonl"
    try:
        wait_for(lambda: len(lines(stamped)) == 30)
        threading.Event().wait(0.5)  # more steps, each reading the clock once
    finally:
        bg.stop()
    windows = lines(tmp_path / "live" / "windows.jsonl")
    if advance_ms:
        assert sum(w["n"] for w in windows) >= 25  # all but the last window's records
        assert {r["seen_at"] for r in lines(stamped)} <= {fixed + k * advance_ms
                                                         for k in range(10**4)}
    else:
        assert windows == []
        assert {r["seen_at"] for r in lines(stamped)} == {fixed}
