"""Silver's schema validation: each bronze line checked against its feed's schema.

``validate_events`` is the silver hop's ``map_batches`` step: for every bronze row it
returns the row with ``silver_status`` (``valid`` / ``invalid``) and, for a valid event, its
cleaned fields; for an invalid one the reason (``dlq_reason``, ``dlq_field``) and a message
(``error``) that says what is wrong and what was expected. The checks, in this order, the
first failure deciding the reason (schemas.py has the fields):

1. the feed: from the row's ``ingest_source`` (the topic, or the landing file named after
   it) -- an unknown one is ``unknown_feed``;
2. ``malformed_json``: the line is not a JSON object;
3. each field of the feed's schema, in schema order: absent, null or an empty string is
   ``missing_field``; a value of another type is ``wrong_type`` (a number is an int or a
   float, never a bool; a timestamp is an ISO-8601 string in UTC with its zone; ``properties``
   an object).

What the values *mean* is not checked here: a user action's event_type outside
``USER_EVENT_TYPES`` is schema-valid (a string) and is caught after this step by the silver
hop's ``data_quality`` rule ``known_event_type`` (in_set), quarantined, and turned into a
dead letter of reason ``unknown_event_type`` by ``dq_as_dead_letter``.

Cleaning (valid events): the timestamp parsed to epoch milliseconds (``event_time_ms``);
amounts and values as floats; the currency upper-case; ``properties`` re-serialized as
canonical JSON (sorted keys) so equal objects compare equal; ``event_type`` of a
transaction / metric set to its feed (schemas.event_type_of); ``measure`` = amount or value.

The per-line JSON parse is Python (orjson): JSON validation of arbitrary, possibly broken
lines has no columnar form that keeps the reason. It runs in the silver hop only, never on
surestream's own hot path.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import orjson
import polars as pl

from surestream.apps.medallion.schemas import (
    FEED_FIELDS,
    TOPIC_FEEDS,
    event_type_of,
)
from surestream.apps.medallion.truth import measure_of

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)

#: the cleaned columns of a valid event, and their types
SILVER_TYPES: dict[str, pl.DataType] = {
    "event_id": pl.String(), "feed": pl.String(), "event_type": pl.String(),
    "source": pl.String(), "event_time_ms": pl.Int64(), "user_id": pl.String(),
    "session_id": pl.String(), "transaction_id": pl.String(), "amount": pl.Float64(),
    "currency": pl.String(), "status": pl.String(), "metric_name": pl.String(),
    "value": pl.Float64(), "host": pl.String(), "properties": pl.String(),
    "measure": pl.Float64(),
}
VERDICT_TYPES: dict[str, pl.DataType] = {
    "silver_status": pl.String(), "dlq_reason": pl.String(), "dlq_field": pl.String(),
    "error": pl.String(), "received_event_id": pl.String(),
}


class Invalid(Exception):  # noqa: N818 - a verdict, raised to stop at the first problem
    def __init__(self, reason: str, field: str | None, message: str) -> None:
        super().__init__(message)
        self.reason, self.field, self.message = reason, field, message


def feed_of(ingest_source: str | None) -> str | None:
    """The feed of a topic or landing file name (``raw-events`` / ``raw-events.jsonl``)."""
    if ingest_source is None:
        return None
    name = ingest_source.rsplit("/", 1)[-1]
    return TOPIC_FEEDS.get(name.removesuffix(".jsonl"))


def _timestamp_ms(value: str) -> int:
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None or parsed.utcoffset() != dt.timedelta(0):
        raise ValueError("not in UTC")
    return (parsed - _EPOCH) // _MS


def _check(field: str, kind: str, value: Any) -> Any:
    """``value`` cleaned, or ``Invalid`` naming the field and what it should be."""
    if value is None or value == "":
        raise Invalid("missing_field", field, f"{field} is required and missing")
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool) \
            and math.isfinite(value):
        return float(value)
    if kind == "object" and isinstance(value, dict):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if kind == "timestamp" and isinstance(value, str):
        try:
            return _timestamp_ms(value)
        except ValueError:
            pass
    expected = {"string": "a string", "number": "a number", "object": "a JSON object",
                "timestamp": "an ISO-8601 time in UTC with its zone, e.g. "
                             "2026-03-02T00:00:00.000Z"}[kind]
    raise Invalid("wrong_type", field, f"{field} must be {expected}, got "
                                       f"{type(value).__name__} {str(value)[:60]!r}")


def validate_line(ingest_source: str | None, raw: str | None) -> dict[str, Any]:
    """One bronze line's verdict and, when valid, its cleaned fields (module docstring)."""
    feed = feed_of(ingest_source)
    received_id: str | None = None
    try:
        if feed is None:
            raise Invalid("unknown_feed", None, f"{ingest_source!r} is not a known feed; "
                                                f"expected one of {', '.join(TOPIC_FEEDS)}")
        try:
            event = orjson.loads(raw or "")
        except orjson.JSONDecodeError as e:
            raise Invalid("malformed_json", None, f"not JSON: {e}") from None
        if not isinstance(event, dict):
            raise Invalid("malformed_json", None, f"a JSON {type(event).__name__}, not an "
                                                  "object")
        if event.get("event_id") is not None:
            received_id = str(event["event_id"])
        clean = {f: _check(f, kind, event.get(f)) for f, kind in FEED_FIELDS[feed].items()}
    except Invalid as bad:
        return {"silver_status": "invalid", "dlq_reason": bad.reason, "dlq_field": bad.field,
                "error": f"{bad.reason}: {bad.message}", "received_event_id": received_id,
                "feed": feed}
    clean["event_time_ms"] = clean.pop("timestamp")
    clean["event_type"] = event_type_of(feed, clean.get("event_type"))
    if "currency" in clean:
        clean["currency"] = clean["currency"].upper()
    clean["measure"] = measure_of(feed, clean)
    return {"silver_status": "valid", "received_event_id": received_id, "feed": feed, **clean}


def validate_events(frame: pl.DataFrame) -> pl.DataFrame:
    """The bronze rows with their verdict and cleaned fields (module docstring): the same
    rows in the same order, bronze's own envelope text columns replaced by the cleaned
    ones."""
    verdicts = [validate_line(s, r) for s, r in
                zip(frame["ingest_source"].to_list(), frame["raw"].to_list(), strict=True)]
    types = {**VERDICT_TYPES, **SILVER_TYPES}
    columns = {name: pl.Series(name, [v.get(name) for v in verdicts], dtype=dtype)
               for name, dtype in types.items()}
    kept = frame.drop([c for c in frame.columns if c in columns or c == "event_timestamp"])
    return kept.with_columns(**columns)


#: data_quality rule (silver's quarantine) -> (dlq_reason, dlq_field) of its dead letters
DQ_RULE_REASONS: dict[str, tuple[str, str | None]] = {
    "known_event_type": ("unknown_event_type", "event_type"),
}


def dq_as_dead_letter(frame: pl.DataFrame) -> pl.DataFrame:
    """Records the silver ``data_quality`` step quarantined (``dq_rule``, ``dq_reason``)
    as dead letters of the same columns, in the same order, as schema-invalid ones, so both
    reach the DLQ table and ``dlq-events`` through one union: ``silver_status`` invalid,
    ``dlq_reason`` / ``dlq_field`` from the rule (``DQ_RULE_REASONS``; another rule's name
    is its own reason), ``error`` = reason + the rule's message."""
    rules = frame["dq_rule"].to_list()
    reasons = [DQ_RULE_REASONS.get(r, (r, None)) for r in rules]
    errors = [f"{reason}: {message} (data_quality rule {rule})" for (reason, _), rule, message
              in zip(reasons, rules, frame["dq_reason"].to_list(), strict=True)]
    return frame.drop("dq_rule", "dq_severity", "dq_reason").with_columns(
        silver_status=pl.lit("invalid", pl.String()),
        dlq_reason=pl.Series([r for r, _ in reasons], dtype=pl.String()),
        dlq_field=pl.Series([f for _, f in reasons], dtype=pl.String()),
        error=pl.Series(errors, dtype=pl.String()))
