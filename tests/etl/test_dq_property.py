"""Property: through a data_quality step every input record ends in exactly one of the
stream's result, the quarantine output or errors -- for any records and any batch size --
and what does not depend on the batch cut (every rule but ``unique`` within a batch) is
the same at every batch size."""

from __future__ import annotations

import json
from collections import Counter

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surestream.testing import run_steps

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def big_ids_fail(frame: pl.DataFrame) -> pl.Series:
    """A vectorized user check that raises for a marked record (its failure goes to errors)."""
    if (frame["amount"] == 13).any():
        raise ValueError("unlucky amount")
    return frame["id"] < 1_000


record_st = st.fixed_dictionaries({
    "k": st.sampled_from(["a", "b", "c", None]),
    "amount": st.one_of(st.none(), st.integers(-5, 20)),
    "status": st.sampled_from(["NEW", "DONE", "ODD", None]),
    "code": st.sampled_from(["1", "2", "-1", "x", None]),
    "dt": st.integers(-3, 6),
})


def rules(batch_rule: bool) -> list[dict]:
    out = [
        {"name": "amount_present", "rule": "not_null", "column": "amount",
         "on_failure": "warn"},
        {"name": "amount_range", "rule": "range", "column": "amount", "min": 0, "max": 15},
        {"name": "status_known", "rule": "in_set", "column": "status",
         "values": ["NEW", "DONE"], "on_failure": "continue"},
        {"name": "code_positive", "rule": "expression", "sql": "CAST(code AS INT) > 0"},
        {"name": "user_check", "rule": "function", "function": big_ids_fail},
        {"name": "k_window", "rule": "unique", "column": "k", "within": {"window_ms": 3},
         "severity": "warning"},
    ]
    if batch_rule:
        out.append({"name": "k_batch", "rule": "unique", "column": "k", "severity": "info"})
    return out


def run(records: list[dict], batch_size: int, batch_rule: bool) -> dict[str, list[dict]]:
    steps = [{"type": "watermark", "timestamp_column": "ts", "max_out_of_orderness_ms": 2},
             {"type": "data_quality", "name": "checks", "rules": rules(batch_rule)}]
    return run_steps(records, steps, batch_size=batch_size)


def with_ids(records: list[dict]) -> list[dict]:
    ts, out = 1_000_000, []
    for i, r in enumerate(records):
        ts += r["dt"]  # out of order now and then; a late record is judged like any other
        out.append({"id": i, "ts": ts, **{k: v for k, v in r.items() if k != "dt"}})
    return out


def placements(out: dict[str, list[dict]]) -> Counter:
    errors = [json.loads(e["raw"])["id"] for e in out.get("errors", [])]
    return Counter([r["id"] for r in out["main"]] + [r["id"] for r in out.get("dq_failed", [])]
                   + errors)


@SETTINGS
@given(st.lists(record_st, max_size=40), st.integers(1, 12))
def test_every_record_ends_in_exactly_one_place_at_any_batch_size(raw, batch_size):
    records = with_ids(raw)
    out = run(records, batch_size, batch_rule=True)
    assert placements(out) == Counter(r["id"] for r in records)
    for r in out.get("dq_failed", []):
        assert r["dq_rule"] and r["dq_reason"] and r["dq_severity"]


@SETTINGS
@given(st.lists(record_st, max_size=40), st.integers(1, 12))
def test_outcomes_without_the_batch_rule_do_not_depend_on_the_batch_size(raw, batch_size):
    records = with_ids(raw)
    whole = run(records, 1_000, batch_rule=False)
    cut = run(records, batch_size, batch_rule=False)
    assert [r["id"] for r in cut["main"]] == [r["id"] for r in whole["main"]]
    assert [(r["id"], r["dq_rule"], r["dq_reason"]) for r in cut.get("dq_failed", [])] == \
        [(r["id"], r["dq_rule"], r["dq_reason"]) for r in whole.get("dq_failed", [])]
    assert [(e["raw"], e["error_message"]) for e in cut["errors"]] == \
        [(e["raw"], e["error_message"]) for e in whole["errors"]]
