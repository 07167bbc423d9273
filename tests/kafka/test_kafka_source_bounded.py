"""A bounded Kafka source (``stop_at``) reads like files: the end offsets seen at start,
a fixed interleaving whatever the batch size, poison messages to errors with their place,
metadata columns, the start positions, offsets committed to the group."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pytest
from confluent_kafka import Consumer, TopicPartition
from live_source_helpers import create_topic, kafka_spec, produce, trades

from surestream.model.spec import PipelineSpec
from surestream.runners.local.runner import LocalRunner, run


def spec_of(d: dict[str, Any], tmp_path, **runtime: Any) -> PipelineSpec:
    outputs = {"main": {"type": "memory"}, "errors": {"type": "memory"}}
    if len(d["steps"]) > 1:
        outputs["late_window"] = {"type": "memory"}
    d = {**d, "outputs": outputs,
         "checkpoint": {"dir": str(tmp_path / f"cp-{len(list(tmp_path.iterdir()))}")},
         "runtime": runtime}
    return PipelineSpec.model_validate(d)


def rows(result, tag: str) -> list[dict[str, Any]]:
    return result.collected[tag].rows()


@pytest.mark.parametrize("batch_size", [1, 3, 64, 100_000])
def test_stop_at_end_reads_every_record_once_identically_for_any_batch_size(
        kafka_bootstrap, kafka_topic, tmp_path, batch_size) -> None:
    """3 partitions, records sent many to a batch (tansu's high watermark is then short of
    the true end): every trade is counted once, and the windows are the same as with
    batch size 1 (the fixed interleaving of turns of 4 records)."""
    topic = kafka_topic("trades")
    create_topic(kafka_bootstrap, topic, 3)
    produce(kafka_bootstrap, topic, trades(300, 3), linger_ms=50)
    d = kafka_spec(kafka_bootstrap, [topic], stop_at="end")
    reference = run(spec_of(d, tmp_path, batch_size=1, interleave_records=4))
    result = run(spec_of(d, tmp_path, batch_size=batch_size, interleave_records=4))
    assert result.records_in == 300
    windows = rows(result, "main")
    assert sum(w["n"] for w in windows) + len(rows(result, "late_window")) == 300
    assert sum(w["qty"] for w in windows) + sum(
        r["qty"] for r in rows(result, "late_window")) == sum(i % 7 + 1 for i in range(300))
    assert windows == rows(reference, "main")
    assert rows(result, "late_window") == rows(reference, "late_window")


def test_stop_at_end_is_the_end_seen_at_start(kafka_bootstrap, kafka_topic, tmp_path) -> None:
    topic = kafka_topic("trades")
    create_topic(kafka_bootstrap, topic, 2)
    produce(kafka_bootstrap, topic, trades(40, 2), linger_ms=20)
    runner = LocalRunner(spec_of(kafka_spec(kafka_bootstrap, [topic], stop_at="end"),
                                 tmp_path))
    produce(kafka_bootstrap, topic, trades(25, 2, start=40))  # after the start
    result = runner.run()
    assert result.records_in == 40
    assert not result.interrupted


def test_poison_messages_go_to_errors_with_topic_partition_offset(
        kafka_bootstrap, kafka_topic, tmp_path) -> None:
    """Not JSON, a value with a line break, a tombstone: each costs only its record."""
    topic = kafka_topic("poison")
    create_topic(kafka_bootstrap, topic, 1)
    values = trades(30, 1)
    values[5] = (0, b'{"trade_id": 5, "ts": oops}')
    values[9] = (0, b'{"trade_id": 9,\n "ts": 9000, "symbol": "B", "qty": 3}')
    values[12] = (0, None)
    values[17] = (0, b"")  # an empty value, and one of blanks: no record, but a message
    values[21] = (0, b"  \t")
    produce(kafka_bootstrap, topic, values)
    d = kafka_spec(kafka_bootstrap, [topic], stop_at="end")
    d["steps"] = d["steps"][:1]  # the records themselves
    poison = (5, 9, 12, 17, 21)
    for batch_size in (8, 1000):
        result = run(spec_of(d, tmp_path, batch_size=batch_size))
        assert sorted(r["trade_id"] for r in rows(result, "main")) == \
            [i for i in range(30) if i not in poison]
        errors = rows(result, "errors")
        assert len(errors) == len(poison)
        for offset, err in zip(poison, errors, strict=True):
            assert f"topic {topic} partition 0 offset {offset}:" in err["error_message"]
            assert err["error_type"] == "deserialization_error"
        assert "line break" in errors[1]["error_message"]
        assert "no value" in errors[2]["error_message"]
        assert "empty" in errors[3]["error_message"] and "empty" in errors[4]["error_message"]


def test_metadata_columns_raw_and_csv_values(kafka_bootstrap, kafka_topic, tmp_path) -> None:
    topic = kafka_topic("meta")
    create_topic(kafka_bootstrap, topic, 2)
    produce(kafka_bootstrap, topic, [(i % 2, f"{i},{i * 10}".encode()) for i in range(6)],
            h=b"v")
    base = {"pipeline": "meta", "outputs": {"main": {"type": "memory"}},
            "checkpoint": {"dir": str(tmp_path / "cp")}}
    src = {"type": "kafka", "bootstrap": kafka_bootstrap, "topics": [topic],
           "stop_at": "end", "metadata": ["key", "topic", "partition", "offset",
                                          "timestamp", "headers"]}
    csv = run(PipelineSpec.model_validate({**base, "source": {
        **src, "format": "csv", "csv_header": ["a", "b"]}}))
    got = sorted(rows(csv, "main"), key=lambda r: r["a"])
    assert [(r["a"], r["b"]) for r in got] == [(i, i * 10) for i in range(6)]
    assert [(r["kafka_partition"], r["kafka_offset"], r["kafka_key"]) for r in got] == \
        [(i % 2, i // 2, f"k{i}") for i in range(6)]
    assert all(r["kafka_topic"] == topic and r["kafka_timestamp"] > 0 for r in got)
    assert json.loads(got[0]["kafka_headers"]) == [["h", "v"]]
    raw = run(PipelineSpec.model_validate({**base, "source": {**src, "format": "raw",
                                                              "metadata": []}}))
    assert sorted(rows(raw, "main"), key=lambda r: r["value"]) == \
        [{"value": f"{i},{i * 10}".encode()} for i in range(6)]
    assert raw.collected["main"].frame().schema["value"] == pl.Binary


def test_start_and_stop_positions_and_committed_offsets(
        kafka_bootstrap, kafka_topic, tmp_path) -> None:
    """`start: latest` reads nothing that was there; `stop_at: {timestamp_ms}` stops at
    the first record at or after it; after the run the group holds its positions; a new
    run with `start: committed` reads only what came after them."""
    topic = kafka_topic("pos")
    create_topic(kafka_bootstrap, topic, 1)
    produce(kafka_bootstrap, topic, trades(10, 1), linger_ms=20)
    group = f"g-{topic}"

    def once(**src: Any):
        d = kafka_spec(kafka_bootstrap, [topic], group_id=group, **src)
        d["steps"] = d["steps"][:1]
        return run(spec_of(d, tmp_path))

    assert once(start="latest", stop_at="end").records_in == 0
    import time
    cut = int(time.time() * 1000)
    time.sleep(0.05)
    produce(kafka_bootstrap, topic, trades(5, 1, start=10), linger_ms=20)
    before_cut = once(stop_at={"timestamp_ms": cut})
    assert sorted(r["trade_id"] for r in rows(before_cut, "main")) == list(range(10))
    c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
    assert c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset == 10
    c.close()
    after = once(start="committed", stop_at="end")
    assert sorted(r["trade_id"] for r in rows(after, "main")) == list(range(10, 15))
    at = once(start={"timestamp_ms": cut}, stop_at="end")
    assert sorted(r["trade_id"] for r in rows(at, "main")) == list(range(10, 15))


@pytest.mark.parametrize("batch_size", [2, 50, 10_000])
def test_several_topics_and_sources_interleave_as_files_do(kafka_bootstrap, kafka_topic,
                                                           tmp_path, batch_size) -> None:
    """Two topics in one source and a second source: partitions take fixed turns, so
    each output, in its order, is the same for every batch size."""
    t1, t2, t3 = kafka_topic("a"), kafka_topic("b"), kafka_topic("c")
    for t, n in ((t1, 2), (t2, 1), (t3, 2)):
        create_topic(kafka_bootstrap, t, n)
    produce(kafka_bootstrap, t1, trades(60, 2), linger_ms=20)
    produce(kafka_bootstrap, t2, trades(25, 1, start=100), linger_ms=20)
    produce(kafka_bootstrap, t3, trades(40, 2, start=200), linger_ms=20)

    def once(size: int):
        src = {"type": "kafka", "bootstrap": kafka_bootstrap, "stop_at": "end",
               "metadata": ["topic", "partition", "offset"]}
        wm = {"type": "watermark", "timestamp_column": "ts", "max_out_of_orderness_ms": 0}
        return run(PipelineSpec.model_validate({
            "pipeline": "multi",
            "sources": {"first": {**src, "topics": [t1, t2]}, "second": {**src, "topics": [t3]}},
            "streams": {"one": {"from": "first", "steps": [{**wm, "name": "wm1"}]},
                        "two": {"from": "second", "steps": [{**wm, "name": "wm2"}]}},
            "outputs": {"one": {"type": "memory"}, "two": {"type": "memory"}},
            "checkpoint": {"dir": str(tmp_path / f"cp-{size}")},
            "runtime": {"batch_size": size, "interleave_records": 3}}))

    reference, result = once(1), once(batch_size)
    one, two = rows(result, "one"), rows(result, "two")
    assert sorted(r["trade_id"] for r in one) == list(range(60)) + list(range(100, 125))
    assert sorted(r["trade_id"] for r in two) == list(range(200, 240))
    assert one == rows(reference, "one") and two == rows(reference, "two")


def test_full_buffers_pause_their_partitions_and_nothing_is_lost(
        kafka_bootstrap, kafka_topic, tmp_path, monkeypatch) -> None:
    """With room for 3 buffered messages a partition, partitions pause and resume all
    the time; the run still reads every record once, in the same order."""
    from surestream.connectors.kafka import feed

    topic = kafka_topic("flow")
    create_topic(kafka_bootstrap, topic, 3)
    produce(kafka_bootstrap, topic, trades(200, 3), linger_ms=20)
    d = kafka_spec(kafka_bootstrap, [topic], stop_at="end")
    reference = run(spec_of(d, tmp_path, batch_size=16, interleave_records=5))
    monkeypatch.setattr(feed, "MAX_BUFFERED", 3)
    result = run(spec_of(d, tmp_path, batch_size=16, interleave_records=5))
    assert result.records_in == 200
    assert rows(result, "main") == rows(reference, "main")


@pytest.mark.parametrize("batch_size", [3, 64, 100_000])
def test_widening_schema_and_poison_in_parsed_ahead_blocks_read_as_one_by_one(
        kafka_bootstrap, kafka_topic, tmp_path, batch_size) -> None:
    """A reader parses many fetched messages at once and serves the interleaving's chunks
    from that parse: a column null at first then typed, a field that first comes in one
    partition mid-stream (widening the schema the other partitions' parsed blocks were
    read with) and poison messages give exactly the records of a run reading one message
    at a time -- same rows, same columns, same order, the poison in errors."""
    topic = kafka_topic("widen")
    create_topic(kafka_bootstrap, topic, 3)
    values: list[tuple[int, bytes | None]] = []
    for i in range(150):
        record: dict[str, Any] = {"id": i, "ts": 1_000 * i, "v": None if i < 50 else i * 1.5}
        if i >= 70 and i % 3 == 1:
            record["extra"] = f"x{i}"
        value: bytes | None = json.dumps(record).encode()
        if i == 33:
            value = b"not json"
        elif i == 90:
            value = None  # a tombstone
        elif i == 95:
            value = b'{"id": 95,\n"ts": 1}'
        values.append((i % 3, value))
    produce(kafka_bootstrap, topic, values, linger_ms=50)
    d = {"pipeline": "kwiden",
         "source": {"type": "kafka", "bootstrap": kafka_bootstrap, "topics": [topic],
                    "stop_at": "end"},
         "steps": [{"type": "watermark", "timestamp_column": "ts",
                    "max_out_of_orderness_ms": 2000}]}
    reference = run(spec_of(d, tmp_path, batch_size=1, interleave_records=4))
    result = run(spec_of(d, tmp_path, batch_size=batch_size, interleave_records=4))
    got = rows(result, "main")
    assert result.records_in == 150
    assert sorted(r["id"] for r in got) == [i for i in range(150) if i not in (33, 90, 95)]
    assert got == rows(reference, "main")
    assert {r["extra"] for r in got if r.get("extra") is not None} == {
        f"x{i}" for i in range(70, 150) if i % 3 == 1 and i not in (33, 90, 95)}
    assert [r["v"] for r in got] == [None if r["id"] < 50 else r["id"] * 1.5 for r in got]
    errors = rows(result, "errors")
    places = [m[m.index("topic "):].split(" offset ")[0]
              for m in (e["error_message"] for e in errors)]
    assert sorted(places) == sorted(
        f"topic {topic} partition {i % 3}" for i in (33, 90, 95))
