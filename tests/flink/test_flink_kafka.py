"""Kafka sources and outputs on Flink (issue 15 item 1): the same spec -- a Kafka topic of
JSON values with several partitions, out-of-order records, a late record and values that are
not records, through a tumbling window into Kafka outputs (main, late, errors) -- run on
Flink (the 4.0.1-2.0 Kafka connector on Flink 2.3.0, one driver for both jobs) and on the
local runner against the project's broker (tansu); the output topics read back are equal.

Why two topics: Flink keeps a watermark per partition and takes their minimum (SEMANTICS
§2), but which partition it reads when is its own choice (one fetch holds every partition,
read one partition after the other), while our runner reads partitions in fixed turns. A
record is late across partitions only relative to how far the others were read, so:
``spread`` has records in three partitions, each out of order only within its own
partition's bound (on time whatever the interleaving); ``late`` is a topic of one partition
with a record late for its window. (Measured: with the ``late`` records in one partition of
three and the other two empty, neither runner finds the record late -- the empty partitions
hold the watermark back until the end on both.) tansu reports a topic's end as its last
*batch's* base offset + 1, so every input record is produced in a batch of its own
(``stop_at: end`` reads to the true end on both runners).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from surestream.model.spec import PipelineSpec
from surestream.runners.flink.distribution import flink_python
from surestream.runners.flink.runner import flink_job
from surestream.runners.flink.sql_refusals import FlinkUnsupported
from surestream.runners.flink.submit import run_jobs
from surestream.runners.flink.translate import translate
from surestream.runners.local.runner import LocalRunner

SCHEMA = {"id": "int", "ts": "int", "k": "string", "qty": "int"}
OUTPUTS = ("main", "late_window", "errors")


def rec(i: int, ts: int | None, k: str = "a", qty: int = 1) -> bytes:
    value: dict[str, Any] = {"id": i, "k": k, "qty": qty}
    if ts is not None:
        value["ts"] = ts
    return json.dumps(value).encode()


#: partition -> values. Every record is on time for its own partition (within D = 2 s of
#: the largest timestamp before it there), so on time whatever the interleaving.
SPREAD = {
    0: [rec(1, 1000), rec(2, 3000, "b", 2), rec(3, 2500), rec(4, 8000, "b"), rec(5, 12000),
        rec(6, 11000, "b", 3), rec(7, 15000)],
    1: [rec(11, 500, "b"), rec(12, 4000), rec(13, 3500, "b", 5), b"{oops",
        rec(14, 9000), b'{"id": 15, "ts": "soon", "k": "a", "qty": 1}', rec(16, 21000, "b"),
        rec(17, 19500)],
    2: [rec(21, 2000), rec(22, 7000, "b"), rec(23, 6000), rec(24, 10000, "b", 4),
        rec(25, None), rec(26, 25000), rec(27, 99_999_999_999_999)],
}
#: one partition: 9500 comes when the watermark is 12000 - 2001 = 9999, the end - 1 of its
#: window [0, 10000): late for it (SEMANTICS §3)
LATE = {
    0: [rec(1, 1000), rec(2, 5000, "b"), rec(3, 12000), rec(4, 9500, "b", 7), rec(5, 11000),
        b"[1, 2]", rec(6, 30000, "b"), rec(7, 26000)],
}


#: the message metadata the ``late`` case reads as columns (its late record carries them)
METADATA = ["key", "topic", "partition", "offset", "timestamp"]


def create_topics(bootstrap: str, topics: dict[str, int]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(t, n, 1) for t, n in topics.items()]).values():
        future.result(30)


def produce_one_per_batch(bootstrap: str, topic: str, data: dict[int, list[bytes]]) -> None:
    """Each record in a batch of its own (tansu's end offset is then the true end)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for partition, values in data.items():
        for i, value in enumerate(values):
            producer.produce(topic, value=value, key=f"key-{partition}-{i}", partition=partition)
            assert producer.flush(30) == 0


def spec_of(name: str, bootstrap: str, topic: str, outs: dict[str, str], base: Path,
            metadata: list[str] | None = None) -> PipelineSpec:
    """The case's spec: ``outs`` names the output topics (each runner writes its own)."""
    return PipelineSpec.model_validate({
        "pipeline": name,
        "source": {"type": "kafka", "bootstrap": bootstrap, "topics": [topic],
                   "stop_at": "end", "schema": SCHEMA, "metadata": metadata or []},
        "steps": [
            {"type": "watermark", "timestamp_column": "ts", "max_out_of_orderness_ms": 2000},
            {"type": "window", "name": "w", "kind": "tumbling", "size_ms": 10_000,
             "key_fields": ["k"], "aggregations": {"n": "count()", "qty": "sum(qty)"}}],
        "outputs": {tag: {"type": "kafka", "bootstrap": bootstrap, "topic": outs[tag],
                          "transactional_id": f"tx-{outs[tag]}",
                          **({"key_fields": ["k"]} if tag == "main" else {})}
                    for tag in OUTPUTS},
        "checkpoint": {"dir": str(base / "ck"), "interval_ms": 1000},
    })


def read_topics(bootstrap: str, topics: list[str], idle_s: float = 3.0
                ) -> dict[str, list[tuple[bytes | None, dict]]]:
    """Every (key, value) of each topic (one partition each), read_committed, until nothing
    came for ``idle_s``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "flink-kafka-readback",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "fetch.wait.max.ms": 10})
    got: dict[str, list[tuple[bytes | None, dict]]] = {t: [] for t in topics}
    try:
        consumer.assign([TopicPartition(t, 0, 0) for t in topics])
        last = time.monotonic()
        while time.monotonic() - last < idle_s:
            for m in consumer.consume(500, 0.2):
                if not m.error():
                    got[m.topic()].append((m.key(), json.loads(m.value())))
                    last = time.monotonic()
    finally:
        consumer.close()
    return got


def windows(rows: list[tuple[bytes | None, dict]]) -> list[tuple]:
    return sorted((key, r["k"], r["window_start"], r["window_end"], r["revision"], r["n"],
                   r["qty"]) for key, r in rows)


def late(rows: list[tuple[bytes | None, dict]]) -> list[dict]:
    return sorted((r for _, r in rows), key=lambda r: r["id"])


_REASON = re.compile(r"^((.*?: )?(not valid JSON|a record must be a JSON object|field '\w+'|"
                     r"the message has no value|missing timestamp '\w+'|timestamp '\w+' = .*))")


def errors(rows: list[tuple[bytes | None, dict]]) -> list[tuple]:
    """Errors with a value's reason cut after its kind (our parser's detail -- e.g.
    orjson's position of the bad character -- is not Flink's); a timestamp's reason whole."""
    out = []
    for _, r in rows:
        reason = _REASON.match(r["error_message"])
        assert reason, r["error_message"]
        out.append((r["pipeline"], r["operator"], r["error_type"], reason.group(1), r["raw"]))
    return sorted(out)


@pytest.fixture(scope="module")
def flink() -> None:
    flink_python()  # Flink must be installed (scripts/flink-deps.sh)


def test_kafka_spec_on_flink_equals_the_local_runner(flink: None, kafka_bootstrap: str,
                                                     kafka_topic: Any, tmp_path: Path) -> None:
    cases = {"spread": SPREAD, "late": LATE}
    inputs = {case: kafka_topic(f"in-{case}") for case in cases}
    outs = {(case, runner): {tag: kafka_topic(f"{case}-{runner}-{tag}") for tag in OUTPUTS}
            for case in cases for runner in ("flink", "local")}
    create_topics(kafka_bootstrap, {**{inputs[c]: len(data) for c, data in cases.items()},
                                    **{t: 1 for o in outs.values() for t in o.values()}})
    for case, data in cases.items():
        produce_one_per_batch(kafka_bootstrap, inputs[case], data)

    def spec(case: str, runner: str) -> PipelineSpec:
        base = tmp_path / case / runner
        base.mkdir(parents=True, exist_ok=True)
        return spec_of(f"fk_{case}", kafka_bootstrap, inputs[case], outs[case, runner], base,
                       METADATA if case == "late" else None)

    jobs = [flink_job(spec(case, "flink"), extra={"restart-strategy.type": "none"})
            for case in cases]  # (a failure fails the test instead of restarting)
    runs = run_jobs(jobs, tmp_path / "flink-jobs", timeout_s=900)
    assert [r.state for r in runs] == ["FINISHED", "FINISHED"]
    for case in cases:
        LocalRunner(spec(case, "local")).run()
    got = read_topics(kafka_bootstrap, [t for o in outs.values() for t in o.values()])

    def out(case: str, runner: str, tag: str) -> list[tuple[bytes | None, dict]]:
        return got[outs[case, runner][tag]]

    for case in cases:
        assert windows(out(case, "flink", "main")) == windows(out(case, "local", "main")), case
        assert late(out(case, "flink", "late_window")) == late(out(case, "local",
                                                                    "late_window")), case
        assert errors(out(case, "flink", "errors")) == errors(out(case, "local", "errors")), \
            case

    # what the user is promised, whichever runner: every record in exactly one place
    spread = windows(out("spread", "flink", "main"))
    assert sum(w[5] for w in spread) == 18  # 22 values: bad JSON, a bad ts, no ts, year 5138
    assert out("spread", "flink", "late_window") == []
    assert {w[0] for w in spread} == {b"a", b"b"}  # the key is the key field's text
    spread_errors = errors(out("spread", "flink", "errors"))
    where = f"{inputs['spread']}[1]: topic {inputs['spread']} partition 1"
    assert [(e[2], e[3], e[4]) for e in spread_errors] == [
        ("deserialization_error", f"{where} offset 3: not valid JSON", "{oops"),
        ("deserialization_error", f"{where} offset 5: field 'ts'",
         '{"id": 15, "ts": "soon", "k": "a", "qty": 1}'),
        ("missing_timestamp", "missing timestamp 'ts'",
         '{"id":25,"ts":null,"k":"a","qty":1}'),
        ("timestamp_out_of_range", "timestamp 'ts' = 99999999999999 is outside the valid "
         "range 1900-01-01T00:00:00.000Z .. 2500-12-31T23:59:59.999Z (the watermark step's "
         "min_timestamp / max_timestamp)", '{"id":27,"ts":99999999999999,"k":"a","qty":1}')]
    late_rows = late(out("late", "flink", "late_window"))
    assert [(r["id"], r["watermark_ms"], r["lateness_ms"]) for r in late_rows] == \
        [(4, 9999, 499)]
    assert [(r["kafka_key"], r["kafka_topic"], r["kafka_partition"], r["kafka_offset"])
            for r in late_rows] == [("key-0-3", inputs["late"], 0, 3)]
    assert late_rows[0]["kafka_timestamp"] > 1_700_000_000_000  # the producer's clock
    assert windows(out("late", "flink", "main")) == [
        (b"a", "a", 0, 10_000, 0, 1, 1), (b"a", "a", 10_000, 20_000, 0, 2, 2),
        (b"a", "a", 20_000, 30_000, 0, 1, 1), (b"b", "b", 0, 10_000, 0, 1, 1),
        (b"b", "b", 30_000, 40_000, 0, 1, 1)]
    assert [e[3] for e in errors(out("late", "flink", "errors"))] == [
        f"{inputs['late']}[0]: topic {inputs['late']} partition 0 offset 5: a record must be "
        "a JSON object"]


# -- the translation itself (no JVM) -----------------------------------------------------------
def kafka_doc(**source: Any) -> dict:
    return {"pipeline": "kt",
            "source": {"type": "kafka", "bootstrap": "127.0.0.1:1", "topics": ["a", "b"],
                       "schema": SCHEMA, **source},
            "steps": [{"type": "watermark", "timestamp_column": "ts",
                       "max_out_of_orderness_ms": 0, "idle_source_timeout_ms": 5000}],
            "outputs": {"main": {"type": "kafka", "bootstrap": "127.0.0.1:1", "topic": "o"}},
            "checkpoint": {"dir": "ck"}}


def test_start_stop_idleness_and_jars_in_the_translation(tmp_path: Path) -> None:
    bounded = translate(PipelineSpec.model_validate(kafka_doc(
        start={"timestamp_ms": 5}, stop_at={"timestamp_ms": 9})))
    sql = bounded.script()
    for option in ("'topic' = 'a;b'", "'scan.startup.mode' = 'timestamp'",
                   "'scan.startup.timestamp-millis' = '5'", "'scan.bounded.mode' = 'timestamp'",
                   "'scan.bounded.timestamp-millis' = '9'", "'value.format' = 'raw'",
                   "'sink.delivery-guarantee' = 'exactly-once'",
                   "'sink.transactional-id-prefix' = 'surestream-kt-main'"):
        assert option in sql, option
    assert "json.ignore-parse-errors" not in sql
    # a replay never judges idleness by wall time (SEMANTICS §2): no idle timeout
    assert "idle-timeout" not in sql and bounded.config == {}
    assert [j.name for j in bounded.jars] == ["flink-connector-kafka.jar", "kafka-clients.jar"]
    live = translate(PipelineSpec.model_validate(kafka_doc(start="committed")))
    assert live.config == {"table.exec.source.idle-timeout": "5000 ms"}
    assert "SET 'table.exec.source.idle-timeout' = '5000 ms';" in live.script()
    assert "'scan.startup.mode' = 'group-offsets'" in live.script()
    assert "scan.bounded.mode" not in live.script()
    at_least_once = kafka_doc(stop_at="end")
    at_least_once["outputs"]["main"]["delivery"] = "at_least_once"
    sql = translate(PipelineSpec.model_validate(at_least_once)).script()
    assert "'scan.bounded.mode' = 'latest-offset'" in sql
    assert "'sink.delivery-guarantee' = 'at-least-once'" in sql
    assert "transactional-id-prefix" not in sql


@pytest.mark.parametrize(("change", "path"), [
    ({"format": "csv", "csv_header": ["id"]}, "source.format"),
    ({"schema": None}, "source.schema"),
    ({"metadata": ["offset", "headers"]}, "source.metadata"),
    ({"options": {"fetch.min.bytes": 1}}, "source.options"),
])
def test_untranslated_source_settings_are_refused(change: dict, path: str) -> None:
    with pytest.raises(FlinkUnsupported) as refused:
        translate(PipelineSpec.model_validate(kafka_doc(**change)))
    assert refused.value.path == path


def test_float_key_fields_are_refused() -> None:
    doc = kafka_doc(schema={**SCHEMA, "price": "float"})
    doc["outputs"]["main"]["key_fields"] = ["price"]
    with pytest.raises(FlinkUnsupported) as refused:
        translate(PipelineSpec.model_validate(doc))
    assert refused.value.path == "outputs.main.key_fields"
    assert "float" in refused.value.reason


def test_explain_prints_kafka_sql_and_names_a_missing_address(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from surestream.cli.main import main

    path = tmp_path / "spec.json"
    path.write_text(json.dumps(kafka_doc(stop_at="end")))
    assert main(["explain", str(path), "--runner", "flink"]) == 0
    sql = capsys.readouterr().out
    assert "'connector' = 'kafka'" in sql and "'value.format' = 'raw'" in sql
    assert "'scan.watermark.emit.strategy' = 'on-event'" in sql
    doc = kafka_doc(stop_at="end")
    del doc["source"]["bootstrap"]  # none given, none in the environment, no broker running
    path.write_text(json.dumps(doc))
    monkeypatch.delenv("SURESTREAM_BOOTSTRAP", raising=False)
    monkeypatch.setenv("SURESTREAM_HOME", str(tmp_path / "home"))
    assert main(["explain", str(path), "--runner", "flink"]) == 2
    assert "source.bootstrap" in capsys.readouterr().err
