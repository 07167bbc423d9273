"""data_quality rules x on_failure actions, on small inputs with hand-written expectations.

For every rule kind: which records fail and the reason a person reads for each (written
here by hand, not taken from a run); then every action over the same case: ``quarantine``
(failing records to ``dq_failed`` with dq_rule / dq_severity / dq_reason, the rest on),
``continue`` (all on, counted), ``warn`` (all on, one log line per batch with the count),
``abort`` (the run fails naming the rule, the count and an example).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import polars as pl
import pytest

from surestream.model.loader import SpecError
from surestream.semantics.quality import DataQualityAbort
from surestream.testing import memory_spec, run_spec, run_steps


def even_ids(frame: pl.DataFrame) -> pl.Series:
    """A vectorized user check: records with an even id pass."""
    return frame["id"] % 2 == 0


@dataclass
class Case:
    rule: dict[str, Any]
    records: list[dict[str, Any]]
    #: id -> the reason it fails, in input order
    failing: dict[int, str]


CASES = {
    "not_null": Case(
        {"rule": "not_null", "column": "amount"},
        [{"id": 1, "amount": 5}, {"id": 2, "amount": None}, {"id": 3, "amount": 7},
         {"id": 4}],
        {2: "amount is null", 4: "amount is null"}),
    "range": Case(  # min and max are inclusive; null passes (not_null's question)
        {"rule": "range", "column": "amount", "min": 0, "max": 100},
        [{"id": 1, "amount": 0}, {"id": 2, "amount": 100}, {"id": 3, "amount": 101},
         {"id": 4, "amount": -1}, {"id": 5, "amount": None}],
        {3: "amount 101 > max 100", 4: "amount -1 < min 0"}),
    "regex": Case(
        {"rule": "regex", "column": "code", "pattern": "^[A-Z]{3}$"},
        [{"id": 1, "code": "ABC"}, {"id": 2, "code": "abcd"}, {"id": 3, "code": None},
         {"id": 4, "code": "AB1"}],
        {2: "code 'abcd' does not match ^[A-Z]{3}$", 4: "code 'AB1' does not match ^[A-Z]{3}$"}),
    "in_set": Case(
        {"rule": "in_set", "column": "status", "values": ["NEW", "DONE"]},
        [{"id": 1, "status": "NEW"}, {"id": 2, "status": "ODD"}, {"id": 3, "status": None},
         {"id": 4, "status": "DONE"}],
        {2: "status 'ODD' is not in ['NEW', 'DONE']"}),
    "unique": Case(  # within the batch (one batch here); nulls are not compared
        {"rule": "unique", "column": "k"},
        [{"id": 1, "k": "a"}, {"id": 2, "k": "b"}, {"id": 3, "k": "a"}, {"id": 4, "k": None},
         {"id": 5, "k": None}, {"id": 6, "k": "b"}],
        {3: "k a already seen in this batch", 6: "k b already seen in this batch"}),
    "expression": Case(  # false or null fails
        {"rule": "expression", "sql": "price * qty > 0"},
        [{"id": 1, "price": 2, "qty": 3}, {"id": 2, "price": 0, "qty": 5},
         {"id": 3, "price": None, "qty": 1}],
        {2: "condition price * qty > 0 is not true", 3: "condition price * qty > 0 is not true"}),
    "function": Case(
        {"rule": "function", "function": even_ids},
        [{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}],
        {1: f"check {__name__}:even_ids returned false",
         3: f"check {__name__}:even_ids returned false"}),
}


def step(case: Case, on_failure: str, severity: str = "warning") -> dict[str, Any]:
    return {"type": "data_quality", "name": "checks",
            "rules": [{"name": "the_rule", **case.rule, "severity": severity,
                       "on_failure": on_failure}]}


def ids(rows: list[dict[str, Any]]) -> list[int]:
    return [r["id"] for r in rows]


@pytest.mark.parametrize("kind", CASES)
def test_quarantine_sends_each_failing_record_with_its_rule_and_reason(kind):
    case = CASES[kind]
    out = run_steps(case.records, [step(case, "quarantine")])
    passing = [r["id"] for r in case.records if r["id"] not in case.failing]
    assert ids(out["main"]) == passing
    assert [(r["id"], r["dq_rule"], r["dq_severity"], r["dq_reason"])
            for r in out["dq_failed"]] == [(i, "the_rule", "warning", reason)
                                           for i, reason in case.failing.items()]
    assert out["errors"] == []


@pytest.mark.parametrize("kind", CASES)
def test_continue_passes_every_record_and_counts_the_failures(kind):
    case = CASES[kind]
    result = run_spec(memory_spec(case.records, [step(case, "continue", "info")]))
    assert ids(result.rows("main")) == [r["id"] for r in case.records]
    assert "dq_failed" not in result.outputs  # no quarantine rule: no quarantine tag
    op = result.operator_counters["checks"]
    assert op["dq_quarantined"] == 0


@pytest.mark.parametrize("kind", CASES)
def test_warn_passes_every_record_and_logs_a_line_with_the_count(kind, caplog):
    case = CASES[kind]
    with caplog.at_level(logging.WARNING, logger="surestream.quality"):
        out = run_steps(case.records, [step(case, "warn")])
    assert ids(out["main"]) == [r["id"] for r in case.records]
    lines = [r.getMessage() for r in caplog.records if r.name == "surestream.quality"]
    assert len(lines) == 1  # one batch, one line
    n = len(case.records)
    assert f"rule 'the_rule' (warning): {len(case.failing)} of {n} record(s) failed" in lines[0]
    assert next(iter(case.failing.values())) in lines[0]  # an example's reason


@pytest.mark.parametrize("kind", CASES)
def test_abort_fails_the_run_naming_the_rule_the_count_and_an_example(kind):
    case = CASES[kind]
    with pytest.raises(DataQualityAbort) as failed:
        run_steps(case.records, [step(case, "abort", "error")])
    message = str(failed.value)
    first_id, first_reason = next(iter(case.failing.items()))
    assert "rule 'the_rule'" in message
    assert f"failed for {len(case.failing)} record(s)" in message
    assert first_reason in message
    assert f'"id":{first_id}' in message  # the example record itself


def test_a_record_failing_several_rules_is_quarantined_once_by_the_first_in_rule_order():
    records = [{"id": 1, "amount": 500, "status": "ODD"},  # fails range (2nd) and in_set (3rd)
               {"id": 2, "amount": 5, "status": "ODD"},    # fails in_set only
               {"id": 3, "amount": 5, "status": "NEW"}]
    rules = [{"name": "warn_big", "rule": "range", "column": "amount", "max": 10,
              "on_failure": "warn"},  # a warn rule does not quarantine: rule 2 names it
             {"name": "amount_range", "rule": "range", "column": "amount", "max": 100},
             {"name": "status_known", "rule": "in_set", "column": "status",
              "values": ["NEW"], "severity": "info"}]
    out = run_steps(records, [{"type": "data_quality", "name": "c", "rules": rules}])
    assert ids(out["main"]) == [3]
    assert [(r["id"], r["dq_rule"], r["dq_severity"], r["dq_reason"])
            for r in out["dq_failed"]] == [
        (1, "amount_range", "error", "amount 500 > max 100"),
        (2, "status_known", "info", "status 'ODD' is not in ['NEW']")]


def test_a_record_the_sql_cannot_evaluate_goes_to_errors_and_nowhere_else():
    records = [{"id": 1, "code": "7"}, {"id": 2, "code": "x"}, {"id": 3, "code": "-1"}]
    rules = [{"name": "positive", "rule": "expression", "sql": "CAST(code AS INT) > 0"}]
    out = run_steps(records, [{"type": "data_quality", "name": "c", "rules": rules}],
                    batch_size=3)
    assert ids(out["main"]) == [1]
    assert ids(out["dq_failed"]) == [3]
    assert len(out["errors"]) == 1
    assert '"id":2' in out["errors"][0]["raw"]
    assert "data_quality rule 'positive' could not check the record" in \
        out["errors"][0]["error_message"]


def test_a_user_check_that_raises_sends_the_records_it_fails_on_to_errors():
    def picky(frame: pl.DataFrame) -> pl.Series:
        if (frame["id"] == 2).any():
            raise ValueError("cannot judge id 2")
        return frame["id"] > 1

    rules = [{"name": "picky", "rule": "function", "function": picky,
              "on_failure": "quarantine"}]
    out = run_steps([{"id": i} for i in (1, 2, 3)],
                    [{"type": "data_quality", "name": "c", "rules": rules}])
    assert ids(out["main"]) == [3]
    assert ids(out["dq_failed"]) == [1]
    assert [e["error_type"] for e in out["errors"]] == ["user_function_error"]  # as map_batches
    assert "ValueError: cannot judge id 2" in out["errors"][0]["error_message"]


def test_a_custom_quarantine_tag_and_a_record_column_of_the_same_name_kept_aside():
    rules = [{"name": "r", "rule": "not_null", "column": "amount"}]
    out = run_steps([{"id": 1, "dq_rule": "mine"}],
                    [{"type": "data_quality", "name": "c", "rules": rules,
                      "quarantine_output_tag": "bad"}])
    assert out["bad"] == [{"id": 1, "dq_rule__input": "mine", "dq_rule": "r",
                           "dq_severity": "error", "dq_reason": "amount is missing"}]


def test_a_range_over_text_values_fails_a_value_that_is_no_number():
    rules = [{"name": "r", "rule": "range", "column": "amount", "max": 10}]
    out = run_steps([{"id": 1, "amount": "5"}, {"id": 2, "amount": "abc"},
                     {"id": 3, "amount": "12"}],
                    [{"type": "data_quality", "name": "c", "rules": rules}])
    assert ids(out["main"]) == [1]
    assert [r["dq_reason"] for r in out["dq_failed"]] == ["amount 'abc' is not a number",
                                                         "amount 12 > max 10"]


@pytest.mark.parametrize("rule, problem", [
    ({"rule": "range", "column": "a"}, "needs `min`, `max` or both"),
    ({"rule": "range", "column": "a", "min": 5, "max": 1}, "min 5 is above max 1"),
    ({"rule": "regex", "column": "a", "pattern": "("}, "is not a regular expression"),
    ({"rule": "in_set", "column": "a", "values": []}, "at least one value"),
    ({"rule": "expression", "sql": "a >>> 1"}, "is not a SQL condition"),
    ({"rule": "not_null"}, "needs `column`"),
    ({"rule": "not_null", "column": "a", "max": 3}, "`max` applies to range rules only"),
    ({"rule": "unique", "column": "a", "within": {"window_ms": 0}}, "window_ms"),
    ({"rule": "not_null", "column": "a", "on_failure": "explode"}, "on_failure"),
])
def test_a_mistaken_rule_is_refused_at_validation_naming_the_field(rule, problem):
    with pytest.raises(SpecError) as refused:
        memory_spec([], [{"type": "data_quality", "rules": [{"name": "r", **rule}]}])
    text = str(refused.value)
    assert "steps[0]" in text and "rules" in text
    assert problem in text


def test_unique_within_a_window_needs_a_watermark_before_it():
    rule = {"name": "u", "rule": "unique", "column": "k", "within": {"window_ms": 1000}}
    with pytest.raises(SpecError, match="needs event time; put a `watermark` step"):
        memory_spec([], [{"type": "data_quality", "rules": [rule]}])


def test_the_python_api_builds_the_same_step():
    from surestream.api import Pipeline, memory

    p = Pipeline("dq-api", batch_size=2)
    (p.read_records([{"id": 1, "amount": 5}, {"id": 2, "amount": 50}])
     .data_quality([{"name": "small", "rule": "range", "column": "amount", "max": 10}],
                   name="checks", quarantine_output_tag="too_big")
     .to(memory()))
    p.output("too_big", memory())
    result = p.run()
    assert ids(result.rows("main")) == [1]
    assert [(r["id"], r["dq_reason"]) for r in result.rows("too_big")] == [
        (2, "amount 50 > max 10")]


@pytest.mark.parametrize("records, values, passing, reasons", [
    ([{"v": 1.5}, {"v": 2.0}], [2], [2.0], ["v '1.5' is not in [2]"]),  # 2 is 2.0 here
    ([{"v": 1}, {"v": 2}], [1.5, 2], [2], ["v '1' is not in [1.5, 2]"]),  # 1.5 is not 1
    ([{"v": 1}, {"v": 2}], ["1"], [1], ["v '2' is not in ['1']"]),  # text for text
    ([{"v": [1, 2]}, {"v": [3]}], [[1, 2]], [[1, 2]], ["v '[3]' is not in [[1, 2]]"]),
])
def test_in_set_compares_values_of_other_types_exactly(records, values, passing, reasons):
    rules = [{"name": "r", "rule": "in_set", "column": "v", "values": values}]
    out = run_steps(records, [{"type": "data_quality", "name": "c", "rules": rules}])
    assert [r["v"] for r in out["main"]] == passing
    assert [r["dq_reason"] for r in out["dq_failed"]] == reasons
