"""The with_columns step: SQL expressions over a batch; misfits go to errors, whole."""

import pytest
from pydantic import ValidationError

from surestream.model.steps import WithColumnsStep
from surestream.testing import run_steps

TRADES = [{"side": "BUY", "price": 1.5, "quantity": 2.0},
          {"side": "SELL", "price": 2.0, "quantity": None}]


def test_columns_are_computed_in_order_and_nulls_propagate():
    out = run_steps(TRADES, [WithColumnsStep(columns={
        "value": "price * quantity",
        "is_buy": "CASE WHEN side = 'BUY' THEN 1 ELSE 0 END",
        "double_value": "value * 2"})])
    assert [(r["value"], r["is_buy"], r["double_value"]) for r in out["main"]] == [
        (3.0, 1, 6.0), (None, 0, None)]


def test_a_batch_that_does_not_fit_goes_to_errors_with_the_reason():
    out = run_steps(TRADES, [WithColumnsStep(name="derive", columns={"x": "volume * 2"})])
    assert out["main"] == []
    assert [e["operator"] for e in out["errors"]] == ["derive", "derive"]
    assert 'unable to find column "volume"' in out["errors"][0]["error_message"]
    assert out["errors"][0]["raw"] == '{"side":"BUY","price":1.5,"quantity":2.0}'


def test_a_bad_expression_is_a_spec_error_naming_the_column():
    with pytest.raises(ValidationError, match=r"columns\.x: 'price \+\* 2' is not a SQL"):
        WithColumnsStep(columns={"x": "price +* 2"})


def test_where_keeps_true_rows_and_counts_the_rest():
    from surestream.model.steps import WhereStep
    from surestream.runners.local.runner import LocalRunner
    from surestream.testing import memory_spec

    spec = memory_spec(TRADES + [{"side": None, "price": 3.0, "quantity": 1.0}],
                       [WhereStep(name="buys", condition="side = 'BUY' AND price > 1")])
    result = LocalRunner(spec).run()
    assert result.rows("main") == [TRADES[0]]
    assert result.operator_counters["buys"]["filtered"] == 2  # SELL, and a null side


def test_map_batches_runs_vectorized_user_code_and_reports_its_failure():
    import polars as pl

    from surestream.model.steps import MapBatchesStep

    def notional(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns((pl.col("price") * 10).alias("p10"))

    out = run_steps(TRADES, [MapBatchesStep(function=notional)])
    assert [r["p10"] for r in out["main"]] == [15.0, 20.0]

    def broken(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.clear()  # drops every row, whatever the batch

    out = run_steps(TRADES, [MapBatchesStep(name="b", function=broken)])
    assert out["main"] == [] and len(out["errors"]) == 2
    assert "must return a DataFrame with one row per input row" in \
        out["errors"][0]["error_message"]
