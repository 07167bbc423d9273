"""map / filter user functions: outputs keep their input's time; user errors -> errors."""

from __future__ import annotations

import orjson
import polars as pl
import pytest

from surestream.model.batch import POS_INF, Batch
from surestream.model.steps import FilterStep, MapStep
from surestream.semantics.errors import ERROR_COLUMNS
from surestream.semantics.operator import ERRORS, MAIN
from surestream.semantics.user_functions import (
    UserCodeNotFoundError,
    build_filter_operator,
    build_map_operator,
    resolve_callable,
)

ROWS = [{"id": 1, "qty": 10}, {"id": 2, "qty": 0}, {"id": 3, "qty": 5}]


def batch(rows=ROWS):
    n = len(rows)
    return Batch.from_rows(rows, ts=[1000, 2000, 3000][:n], wm=[7, 8, 9][:n],
                           seq=[40, 41, 42][:n], wm_end=50)


def mapper(function):
    return build_map_operator(MapStep(name="enrich", function=function), "pipe")


def divide(record):
    return {"id": record["id"], "per_unit": 100 // record["qty"]}


# -- map --------------------------------------------------------------------------------
def test_map_one_none_many_keep_input_time():
    def fan(record):
        if record["id"] == 1:
            return {"id": 1, "x": "one"}
        if record["id"] == 2:
            return None
        return [{"id": 3, "x": "a"}, {"id": 3, "x": "b"}]

    out = mapper(fan).process(batch())
    main = out[MAIN]
    assert main.data.to_dicts() == [{"id": 1, "x": "one"}, {"id": 3, "x": "a"},
                                    {"id": 3, "x": "b"}]
    assert main.ts.tolist() == [1000, 3000, 3000]
    assert main.wm.tolist() == [7, 9, 9]
    assert main.seq.tolist() == [40, 42, 42]
    assert main.wm_end == 50
    assert ERRORS not in out


def test_map_exception_goes_to_errors_and_the_rest_goes_on():
    out = mapper(divide).process(batch())
    assert out[MAIN].data.to_dicts() == [{"id": 1, "per_unit": 10}, {"id": 3, "per_unit": 20}]
    errors = out[ERRORS]
    assert errors.data.columns == list(ERROR_COLUMNS)
    (error,) = errors.data.to_dicts()
    assert error["pipeline"] == "pipe" and error["operator"] == "enrich"
    assert error["error_type"] == "ZeroDivisionError"
    assert "division" in error["error_message"]
    assert "in divide" in error["traceback"] and "ZeroDivisionError" in error["traceback"]
    assert orjson.loads(error["raw"]) == {"id": 2, "qty": 0}
    assert (errors.ts.tolist(), errors.wm.tolist(), errors.seq.tolist()) == ([2000], [8], [41])


def test_map_error_reports_the_record_as_it_came_in():
    def mutate_then_fail(record):
        record["qty"] = "changed"
        raise ValueError("boom")

    (error,) = mapper(mutate_then_fail).process(batch(ROWS[:1]))[ERRORS].data.to_dicts()
    assert orjson.loads(error["raw"]) == ROWS[0]
    assert (error["error_type"], error["error_message"]) == ("ValueError", "boom")


def test_map_wrong_return_type_is_that_records_error():
    def bad(record):
        return "text" if record["id"] == 2 else record

    out = mapper(bad).process(batch())
    assert out[MAIN].data["id"].to_list() == [1, 3]
    (error,) = out[ERRORS].data.to_dicts()
    assert error["error_type"] == "TypeError" and "not str" in error["error_message"]


def test_map_failing_generator_emits_nothing_for_that_record():
    def gen(record):
        yield {"id": record["id"], "part": 1}
        if record["id"] == 2:
            raise RuntimeError("half way")
        yield {"id": record["id"], "part": 2}

    out = mapper(gen).process(batch())
    assert out[MAIN].data.rows() == [(1, 1), (1, 2), (3, 1), (3, 2)]
    assert out[ERRORS].data["error_message"].to_list() == ["half way"]


def test_map_keeps_the_type_of_a_pass_through_column_that_is_all_null():
    b = Batch.from_rows([{"id": 1, "note": None}], schema={"id": pl.Int64, "note": pl.String},
                        ts=[1], wm=[0], wm_end=0)
    out = mapper(lambda r: r).process(b)
    assert out[MAIN].data.schema == pl.Schema({"id": pl.Int64, "note": pl.String})


def test_map_empty_batch_moves_the_watermark():
    out = mapper(divide).process(Batch.empty(POS_INF))
    assert len(out[MAIN]) == 0 and out[MAIN].wm_end == POS_INF and ERRORS not in out


# -- filter -----------------------------------------------------------------------------
def test_filter_keeps_truthy_and_reports_errors():
    def positive(record):
        if record["id"] == 3:
            raise KeyError("nope")
        return record["qty"] > 0

    op = build_filter_operator(FilterStep(name="positive", function=positive), "pipe")
    out = op.process(batch())
    assert out[MAIN].data.to_dicts() == [ROWS[0]]
    assert out[MAIN].seq.tolist() == [40] and out[MAIN].wm_end == 50
    (error,) = out[ERRORS].data.to_dicts()
    assert (error["operator"], error["error_type"]) == ("positive", "KeyError")
    assert orjson.loads(error["raw"]) == ROWS[2]
    assert op.output_tags() == {ERRORS} and op.snapshot() == {"errors": 1}


# -- resolving user code named in a spec ----------------------------------------------
def test_resolve_callable_forms():
    assert resolve_callable(divide) is divide
    assert resolve_callable(f"{__name__}.divide") is divide
    assert resolve_callable(f"{__name__}:divide") is divide
    assert resolve_callable("surestream.model.batch:Batch.from_rows") == Batch.from_rows


def test_spec_string_builds_the_same_operator():
    out = mapper(f"{__name__}:divide").process(batch(ROWS[:1]))
    assert out[MAIN].data.to_dicts() == [{"id": 1, "per_unit": 10}]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_pkg.mod:f", "module 'no_such_pkg.mod' cannot be imported"),
        (f"{__name__}:no_such_fn", f"{__name__!r} has no attribute 'no_such_fn'"),
        (f"{__name__}:ROWS", "resolves to a list, not a function"),
        ("justaname", "write it as 'package.module:attribute'"),
    ],
)
def test_resolve_callable_errors_name_the_path(spec, message):
    with pytest.raises(UserCodeNotFoundError, match=message) as info:
        resolve_callable(spec)
    assert spec in str(info.value)
