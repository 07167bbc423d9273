"""The Kafka-fed examples end to end, against the real broker fixture: the reference
``streaming-example.json`` (user events -> 10-minute windows by user_id -> NotNull/Range
checks -> PostgreSQL ``user_event_aggregations``, late records to a topic) and the
low-latency fraud example (running totals per card -> alerts topic). Results are checked
against what was computed by hand from the small inputs. (Both need issue 14's keys --
trigger, data_quality, aggregate, retry -- merged.)"""

from __future__ import annotations

import json

import psycopg
from etl_examples import (
    at,
    copy_examples,
    create_topic,
    import_config,
    jsonl,
    load,
    produce_file,
    save,
    streaming,
    surestream,
    topic_values,
)
from postgres_server import postgres_dsn, postgres_server  # noqa: F401 -- the shared server


def point_at(doc: dict, bootstrap: str, **topics: str) -> dict:
    """The configuration pointed at the test's broker and topics, as a user edits it."""
    doc["source"] = {**doc["source"], "topic": topics["source"],
                     "bootstrapServers": bootstrap}
    cfg = streaming(doc)
    if "late" in topics:
        cfg["lateData"]["topic"] = topics["late"]
    doc["streamingConfigJson"] = json.dumps(cfg)
    return doc


def test_the_reference_example_windows_into_postgres_with_late_records_on_a_topic(
        tmp_path, kafka_bootstrap, kafka_topic, postgres_dsn):  # noqa: F811
    folder = copy_examples(tmp_path)
    events = create_topic(kafka_bootstrap, kafka_topic("user-events"))
    late = create_topic(kafka_bootstrap, kafka_topic("late-user-events"))
    produce_file(kafka_bootstrap, events, folder / "data/user_events.jsonl")
    doc = point_at(load(folder, "streaming-example"), kafka_bootstrap, source=events,
                   late=late)
    doc["sink"] = {"type": "postgres", "url": "jdbc:" + postgres_dsn,
                   "table": doc["sink"]["table"]}
    save(folder, "streaming-example", doc)
    spec = import_config(folder, "streaming-example")
    r = surestream("run", spec.name, "--set", "source.stop_at=end", cwd=folder)
    assert r.returncode == 0, r.stderr

    with psycopg.connect(postgres_dsn) as con:
        rows = con.execute("select user_id, window_start, window_end, page_views, clicks "
                           "from user_event_aggregations").fetchall()
    # 14 events, 5-minute watermark delay: e8 (u1 10:04, after 10:31) and e11 (u2 10:22,
    # after 10:41) are late; e13 (no user_id) and e14 (500 clicks) fail the checks
    assert sorted(rows) == sorted([
        ("u1", at("10:00"), at("10:10"), 2, 3), ("u2", at("10:00"), at("10:10"), 1, 0),
        ("u1", at("10:10"), at("10:20"), 1, 3), ("u2", at("10:10"), at("10:20"), 1, 5),
        ("u1", at("10:20"), at("10:30"), 1, 1), ("u2", at("10:20"), at("10:30"), 1, 1),
        ("u2", at("10:30"), at("10:40"), 1, 2), ("u1", at("10:40"), at("10:50"), 2, 2)])
    late_records = topic_values(kafka_bootstrap, late, expected=2)
    assert sorted(r["event_id"] for r in late_records) == ["e11", "e8"]
    quarantined = {r["event_id"]: r["dq_rule"]
                   for r in jsonl(folder / "out/user_events_quarantine.jsonl")}
    assert quarantined == {"e13": "user_id_present", "e14": "clicks_in_range"}
    assert jsonl(folder / "dlq/user_event_aggregations.jsonl") == []  # the sink never failed


def test_the_fraud_example_alerts_on_running_totals_per_card(tmp_path, kafka_bootstrap,
                                                              kafka_topic):
    folder = copy_examples(tmp_path)
    txns = create_topic(kafka_bootstrap, kafka_topic("card-transactions"))
    alerts = create_topic(kafka_bootstrap, kafka_topic("fraud-alerts"))
    produce_file(kafka_bootstrap, txns, folder / "data/card_transactions.jsonl")
    doc = point_at(load(folder, "low-latency-fraud"), kafka_bootstrap, source=txns)
    doc["sink"] = {**doc["sink"], "topic": alerts}
    save(folder, "low-latency-fraud", doc)
    spec = import_config(folder, "low-latency-fraud")
    r = surestream("run", spec.name, "--set", "source.stop_at=end", cwd=folder)
    assert r.returncode == 0, r.stderr

    got = {(a["card_id"], a["txn_count"], a["total_amount"])
           for a in topic_values(kafka_bootstrap, alerts, expected=3)}
    # c2's first 1500 (> 1000), c1's third transaction (3 of them), c2's second (1510);
    # t5 (-5) fails amount_not_negative; t7 (c2 11:58, after 12:01) is late and dropped
    assert got == {("c2", 1, 1500.0), ("c1", 3, 100.0), ("c2", 2, 1510.0)}
    quarantined = jsonl(folder / "out/fraud_quarantine.jsonl")
    assert [(q["txn_id"], q["dq_rule"]) for q in quarantined] == [
        ("t5", "amount_not_negative")]
