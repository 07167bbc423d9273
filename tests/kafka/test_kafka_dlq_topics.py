"""Every output tag can be a Kafka topic (issue 10, item 5): results, input that does not
parse, failures in user code, unroutable records and late records each land in a topic of
their own, exactly once, with their metadata in the headers; ``RunResult.rows(tag)`` reads
them back."""

from __future__ import annotations

import json
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from surestream.connectors.kafka.reader import committed_messages, read_all
from surestream.model.loader import build_spec
from surestream.runners.local.runner import LocalRunner


def ratio(record: dict) -> dict:
    return {**record, "ratio": 10 / record["qty"]}


LINES = [
    {"id": 1, "ts": 1000, "qty": 2, "side": "BUY"},
    '{"id": 2, "ts": 2000, "qty": ',  # cut short: does not parse
    {"id": 3, "ts": 3000, "qty": 0, "side": "BUY"},  # the user function divides by it
    {"id": 5, "ts": 5000, "qty": 5, "side": "HOLD"},  # no route for HOLD
    {"id": 4, "ts": 500, "qty": 1, "side": "SELL"},  # behind the watermark: late
    {"id": 6, "ts": 6000, "qty": 4, "side": "SELL"},
]
TAGS = ["main", "errors", "dlq.deserialization", "dlq.processing-errors",
        "dlq.trades.unroutable", "quarantine"]


def spec_doc(tmp_path: Path, bootstrap: str, topics: dict[str, str]) -> dict:
    src = tmp_path / "in.jsonl"
    src.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in LINES))

    def topic(tag: str, **extra) -> dict:
        return {"type": "kafka", "bootstrap": bootstrap, "topic": topics[tag], **extra}

    return {
        "pipeline": "dlq-topics",
        "source": {"type": "file", "path": str(src), "format": "jsonl"},
        "steps": [
            {"type": "watermark", "name": "wm", "timestamp_column": "ts",
             "max_out_of_orderness_ms": 0},
            {"type": "late_data_side_output", "name": "late", "output_tag": "quarantine"},
            {"type": "map", "name": "compute_ratio", "function": ratio},
            {"type": "route", "name": "by_side", "field": "side",
             "routes": {"BUY": "main", "SELL": "main"}, "default": "dlq.trades.unroutable"},
        ],
        "outputs": {
            "main": topic("main", key_fields=["id"]),
            "errors": topic("errors"),
            "dlq.deserialization": topic("dlq.deserialization", error_kinds=["input"]),
            "dlq.processing-errors": topic("dlq.processing-errors",
                                           error_kinds=["processing"]),
            "dlq.trades.unroutable": topic("dlq.trades.unroutable", key_fields=["id", "side"]),
            "quarantine": topic("quarantine"),
        },
        "runtime": {"batch_size": 1, "interleave_records": 1},
        "checkpoint": {"dir": str(tmp_path / "checkpoints"), "interval_records": 2},
    }


def test_results_dead_letters_and_late_records_each_land_in_their_topic(
        tmp_path, kafka_bootstrap, kafka_topic) -> None:
    topics = {tag: kafka_topic(tag) for tag in TAGS}
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for f in admin.create_topics([NewTopic(t, 2, 1) for t in topics.values()]).values():
        f.result(30)
    result = LocalRunner(build_spec(spec_doc(tmp_path, kafka_bootstrap, topics))).run()

    assert [r["id"] for r in result.rows("main")] == [1, 6]
    assert result.rows("main")[1] == {"id": 6, "ts": 6000, "qty": 4, "side": "SELL",
                                      "ratio": 2.5}
    assert [r["id"] for r in result.rows("quarantine")] == [4]
    assert [r["id"] for r in result.rows("dlq.trades.unroutable")] == [5]
    deser = result.rows("dlq.deserialization")
    assert [r["raw"] for r in deser] == ['{"id": 2, "ts": 2000, "qty": ']
    processing = result.rows("dlq.processing-errors")
    assert len(processing) == 1 and "division by zero" in processing[0]["error_message"]
    assert result.rows("errors") == []
    assert result.written["main"] == 2 and result.written["dlq.deserialization"] == 1

    def messages(tag: str):
        return committed_messages(read_all(kafka_bootstrap, topics[tag]))

    main = messages("main")
    assert [m.key for m in main] == [b"1", b"6"]
    assert [m.key for m in messages("dlq.trades.unroutable")] == [b'[5,"HOLD"]']
    (bad,) = messages("dlq.deserialization")
    assert bad.header("error_type") == "deserialization_error"
    assert "in.jsonl" in bad.header("error_message")
    (failed,) = messages("dlq.processing-errors")
    assert failed.header("error_type") == "ZeroDivisionError"
    assert "division by zero" in failed.header("error_message")
    (late,) = messages("quarantine")
    record = late.record()
    assert record["watermark_ms"] == 4999  # W: the newest event time 5000, minus 1
    assert late.header("watermark_ms") == "4999" and late.header("lateness_ms") == "4499"
    assert late.header("original_timestamp") == "500" and late.header("operator") == "late"
    # plain result records carry no metadata headers, only where they came from
    assert {name for name in main[0].headers} == {
        "surestream.run", "surestream.checkpoint", "surestream.attempt", "surestream.index"}
