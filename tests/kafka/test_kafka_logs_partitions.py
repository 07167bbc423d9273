"""A live run's log (JSON): a partition that appears while it runs is one INFO line naming
it, and the Kafka source's own warnings carry the run's context like every other line."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from live_source_helpers import create_topic, produce, trades
from test_kafka_telemetry import wait_for

from surestream.model.loader import load_spec
from surestream.ops.logs import LOGGER, configure_logging, log_run
from surestream.runners.local import runner as runner_module
from surestream.runners.local.runner import LocalRunner


@pytest.fixture
def surestream_logger():
    """The package logger as `surestream run` sets it up, restored afterwards."""
    logger = logging.getLogger(LOGGER)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield logger
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_new_partition_is_logged_with_its_name(kafka_bootstrap, kafka_topic, tmp_path,
                                               monkeypatch, capsys, surestream_logger):
    monkeypatch.setattr(runner_module, "PARTITION_REFRESH_S", 0.2)
    first, later = kafka_topic("first"), kafka_topic("later")
    create_topic(kafka_bootstrap, first, 1)
    produce(kafka_bootstrap, first, trades(3, 1))
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps({
        "pipeline": "klogs",
        "source": {"type": "kafka", "bootstrap": kafka_bootstrap, "topics": [first, later],
                   "schema": {"trade_id": "int", "ts": "int", "symbol": "string",
                              "qty": "int"}},
        "outputs": {"main": {"type": "file", "path": str(tmp_path / "out.jsonl")}},
        "checkpoint": {"dir": str(tmp_path / "cp"), "interval_ms": 200},
        "runtime": {"max_batch_delay_ms": 20}}))
    configure_logging("json", "INFO", "klogs")  # as `surestream run` does, before the runner
    runner = LocalRunner(load_spec(str(spec_path), ()))
    thread = threading.Thread(target=runner.run, daemon=True)

    def lines() -> list[dict]:
        return [json.loads(x) for x in capsys.readouterr().err.splitlines()]

    seen: list[dict] = []

    def added() -> bool:
        seen.extend(lines())
        return any(x["event"] == "partition_added" for x in seen)

    with log_run(runner.telemetry):
        thread.start()
        try:
            wait_for(lambda: runner.records_in == 3)
            create_topic(kafka_bootstrap, later, 1)
            produce(kafka_bootstrap, later, trades(2, 1, start=3))
            wait_for(lambda: runner.records_in == 5)
            wait_for(added)
        finally:
            runner.request_stop()
            thread.join(60)
    assert not thread.is_alive()
    seen.extend(lines())
    assert all({"pipeline", "operator", "checkpoint_id", "partition"} <= set(x)
               and x["pipeline"] == "klogs" for x in seen), seen
    new = [x for x in seen if x["event"] == "partition_added"]
    assert [(x["level"], x["partition"], x["source"]) for x in new] == \
        [("INFO", f"{later}[0]", "source")]
    # the source's own warning (a lower layer's logger) with the run's context filled in
    missing = [x for x in seen if x["logger"] == "surestream.connectors.kafka.feed"]
    assert missing and missing[0]["level"] == "WARNING" and later in missing[0]["message"]
    assert seen[-1]["event"] == "run_end" and seen[-1]["state"] == "stopped"


def test_librdkafka_lines_go_through_the_log(capsys, surestream_logger) -> None:
    """librdkafka's own lines (here: a broker that refuses connections) are JSON log lines
    with the run's context, not text its threads print into standard error."""
    from surestream.connectors.kafka.client_config import LIBRDKAFKA_LOGGER
    from surestream.connectors.kafka.feed import KafkaFeed, consumer_config

    configure_logging("json", "WARNING", "klogs")
    feed = KafkaFeed("source", ["t"], consumer_config("127.0.0.1:1", "g", {}))
    try:
        feed.place(("t", 0), 0)
        seen: list[dict] = []

        def refused() -> bool:
            feed.poll(0.1)  # serves the client's log lines in this thread
            seen.extend(json.loads(x) for x in capsys.readouterr().err.splitlines())
            return any("Connection refused" in x["message"] for x in seen)

        wait_for(refused)
    finally:
        feed.close()
    line = next(x for x in seen if "Connection refused" in x["message"])
    assert (line["logger"], line["level"], line["pipeline"]) == \
        (LIBRDKAFKA_LOGGER, "ERROR", "klogs")
