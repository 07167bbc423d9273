"""Silver's schema validation: each kind of bad line gets its reason and field."""

from __future__ import annotations

import json

import polars as pl

from surestream.apps.medallion.validation import validate_events, validate_line

GOOD_CLICK = {"event_id": "e1", "event_type": "click", "user_id": "u1", "session_id": "s1",
              "source": "web", "timestamp": "2026-03-02T00:00:01.500Z",
              "properties": {"page": "/p/1", "b": 1}}
GOOD_TX = {"event_id": "e2", "transaction_id": "t1", "user_id": "u1", "amount": 12,
           "currency": "eur", "status": "captured", "timestamp": "2026-03-02T00:00:00+00:00",
           "source": "ios"}


def _line(event: dict, **change: object) -> str:
    return json.dumps({**event, **change})


def test_valid_events_are_cleaned() -> None:
    click = validate_line("raw-events.jsonl", _line(GOOD_CLICK))
    assert click["silver_status"] == "valid"
    assert click["event_time_ms"] == 1772409601500  # 2026-03-02T00:00:01.5Z
    assert click["properties"] == '{"b":1,"page":"/p/1"}'  # canonical: sorted keys
    assert click["measure"] is None
    tx = validate_line("raw-transactions", _line(GOOD_TX))
    assert (tx["silver_status"], tx["event_type"], tx["amount"], tx["currency"],
            tx["measure"]) == ("valid", "transaction", 12.0, "EUR", 12.0)


def test_each_fault_has_its_reason_and_field() -> None:
    bad = {
        "malformed": ("raw-events.jsonl", _line(GOOD_CLICK)[:30], "malformed_json", None),
        "array": ("raw-events.jsonl", "[1, 2]", "malformed_json", None),
        "missing": ("raw-events.jsonl", _line({k: v for k, v in GOOD_CLICK.items()
                                               if k != "user_id"}), "missing_field", "user_id"),
        "null": ("raw-transactions.jsonl", _line(GOOD_TX, amount=None), "missing_field",
                 "amount"),
        "amount as text": ("raw-transactions.jsonl", _line(GOOD_TX, amount="12.50"),
                           "wrong_type", "amount"),
        "bool is no number": ("raw-transactions.jsonl", _line(GOOD_TX, amount=True),
                              "wrong_type", "amount"),
        "epoch timestamp": ("raw-events.jsonl", _line(GOOD_CLICK, timestamp=1772409601500),
                            "wrong_type", "timestamp"),
        "naive timestamp": ("raw-events.jsonl", _line(GOOD_CLICK,
                                                      timestamp="2026-03-02T00:00:01"),
                            "wrong_type", "timestamp"),
        "unknown feed": ("raw-other.jsonl", _line(GOOD_CLICK), "unknown_feed", None),
    }
    for case, (source, raw, reason, field) in bad.items():
        verdict = validate_line(source, raw)
        assert (verdict["silver_status"], verdict["dlq_reason"], verdict["dlq_field"]) == \
            ("invalid", reason, field), case
        assert verdict["error"].startswith(reason + ": "), case


def test_an_unknown_event_type_is_schema_valid() -> None:
    # meaning is the data_quality step's question (rule known_event_type), not the schema's
    verdict = validate_line("raw-events.jsonl", _line(GOOD_CLICK, event_type="hover"))
    assert (verdict["silver_status"], verdict["event_type"]) == ("valid", "hover")


def test_validate_events_keeps_rows_and_order() -> None:
    frame = pl.DataFrame({"raw": [_line(GOOD_CLICK), "{oops", _line(GOOD_TX)],
                          "ingest_source": ["raw-events.jsonl", "raw-events.jsonl",
                                            "raw-transactions.jsonl"],
                          "ingest_partition": [0, 0, 1], "ingest_offset": [0, 1, 0]})
    out = validate_events(frame)
    assert out["silver_status"].to_list() == ["valid", "invalid", "valid"]
    assert out["ingest_offset"].to_list() == [0, 1, 0]
    assert out["event_id"].to_list() == ["e1", None, "e2"]
