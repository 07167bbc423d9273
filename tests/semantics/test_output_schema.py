"""A user function's declared ``output_schema`` on the local runner (model.declared_schema),
and the Flink adapter's batch function giving the same records and errors as the local
``map_batches`` operator on the same frame (no JVM: the adapter's pure part)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from surestream.model.batch import Batch
from surestream.model.steps import MapBatchesStep, MapStep
from surestream.runners.flink.udf_adapter import BatchFunction, RecordFunction
from surestream.semantics.expressions import build_map_batches_operator
from surestream.semantics.operator import ERRORS, MAIN
from surestream.semantics.user_functions import build_map_operator

FRAME = pl.DataFrame({"id": [f"r{i}" for i in range(20)], "n": list(range(20)),
                      "v": [float(i) / 2 for i in range(20)]})


def batch(frame: pl.DataFrame = FRAME) -> Batch:
    n = frame.height
    return Batch(data=frame, wm=np.arange(n, dtype=np.int64), seq=np.arange(n, dtype=np.int64),
                 wm_end=n, ts=np.arange(n, dtype=np.int64))


def shape(record: dict) -> object:
    """map: a string for n (declared int) on r3, an undeclared key, n as the float."""
    return {"id": record["id"], "n": "three" if record["id"] == "r3" else record["n"],
            "extra": 1, "v": record["n"]}


def test_map_results_are_conformed_and_a_wrong_type_is_the_inputs_error() -> None:
    op = build_map_operator(MapStep(function=shape, output_schema={
        "id": "string", "n": "int", "v": "float", "gone": "bool"}), "p")
    out = op.process(batch())
    main = out[MAIN].data
    assert main.columns == ["id", "n", "v", "gone"]  # declared order; extra dropped
    assert main.schema["v"] == pl.Float64 and main["v"].to_list()[:2] == [0.0, 1.0]
    assert main["gone"].null_count() == main.height
    assert "r3" not in main["id"].to_list() and main.height == 19
    errors = out[ERRORS].data.to_dicts()
    assert [(e["error_type"], e["error_message"]) for e in errors] == [
        ("TypeError", "output column 'n' is declared int in output_schema, got str 'three'")]


def failing(frame: pl.DataFrame) -> pl.DataFrame:
    """map_batches: fails on any frame holding r5 or r13; r8's n does not cast to int."""
    if frame["id"].is_in(["r5", "r13"]).any():
        raise ValueError(f"bad rows in {frame.height}\nmore")
    return frame.with_columns(pl.when(pl.col("id") == "r8").then(pl.lit("x"))
                              .otherwise(pl.col("n").cast(pl.String)).alias("n"),
                              (pl.col("v") * 2).alias("v2"))


SCHEMA = {"id": "string", "n": "int", "v2": "float"}


def test_map_batches_output_schema_isolates_rows_that_do_not_cast() -> None:
    op = build_map_batches_operator(MapBatchesStep(function=failing, output_schema=SCHEMA),
                                    "p")
    out = op.process(batch())
    assert out[MAIN].data.columns == list(SCHEMA)
    failed = [row["raw"] for row in out[ERRORS].data.to_dicts()]
    assert [r.split('"')[3] for r in failed] == ["r5", "r8", "r13"]


@pytest.mark.parametrize("size", [1, 3, 7, 20])
def test_the_flink_batch_function_gives_the_local_operators_results(size: int) -> None:
    """Whatever Flink's Arrow batch size: the same rows out, the same errors."""
    op = build_map_batches_operator(MapBatchesStep(name="m", function=failing,
                                                   output_schema=SCHEMA), "p")
    local = op.process(batch())
    local_errors = {(r["raw"].split('"')[3], r["error_type"], r["error_message"])
                    for r in local[ERRORS].data.to_dicts()}
    function = BatchFunction({"kind": "map_batches", "module": "", "attribute": "",
                              "step": "m", "inputs": [["id", "STRING"], ["n", "BIGINT"],
                                                      ["v", "DOUBLE"]],
                              "outputs": list(map(list, SCHEMA.items()))})
    function._function = failing
    rows, errors = [], set()
    pdf = FRAME.with_columns(pl.col("n").cast(pl.String)).to_pandas()  # BIGINT as text
    for lo in range(0, FRAME.height, size):
        part = pdf.iloc[lo:lo + size].reset_index(drop=True)
        got = function(part["id"], part["n"], part["v"], part["id"])  # (+ the carried wm)
        assert got["wm__"].tolist() == part["id"].tolist()
        for i, r in got.iterrows():
            if r["error_type__"] is None:
                rows.append({c: r[f"o__{c}"] for c in SCHEMA})
            else:
                errors.add((part["id"][i], r["error_type__"], r["error_message__"]))
    assert errors == local_errors
    assert [{**r, "n": int(r["n"])} for r in rows] == local[MAIN].data.to_dicts()


def test_the_flink_record_function_reports_like_the_local_map() -> None:
    function = RecordFunction({"kind": "map", "module": "", "attribute": "", "step": "m",
                               "inputs": [["id", "STRING"], ["n", "BIGINT"]],
                               "outputs": [["id", "string"], ["n", "int"], ["v", "float"]]})
    function._function = shape
    assert list(function("r1", 1)) == [(None, None, "r1", 1, 1.0)]
    assert list(function("r3", 3)) == [("TypeError", "output column 'n' is declared int in "
                                        "output_schema, got str 'three'", None, None, None)]
