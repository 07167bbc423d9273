"""The route step: each value to its tag, default, unknown -> errors, order kept."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surestream.model.batch import POS_INF, Batch, concat
from surestream.model.steps import RouteStep
from surestream.semantics.errors import ERROR_COLUMNS, UNROUTABLE
from surestream.semantics.operator import ERRORS, MAIN, Operator
from surestream.semantics.router import build_route_operator

ROWS = [
    {"id": 1, "status": "NEW"},
    {"id": 2, "status": "FILLED"},
    {"id": 3, "status": "CANCELLED"},
    {"id": 4, "status": "NEW"},
    {"id": 5, "status": None},
    {"id": 6, "status": "FILLED"},
]


def batch(rows=ROWS, wm_end=100):
    n = len(rows)
    return Batch.from_rows(rows, ts=[10 * (i + 1) for i in range(n)], wm=list(range(n)),
                           seq=[100 + i for i in range(n)], wm_end=wm_end)


def ids(b: Batch) -> list[int]:
    return b.data["id"].to_list() if len(b) else []


def op(**kw):
    step = RouteStep(name="by_status", field="status",
                     routes=kw.pop("routes", {"NEW": "main", "FILLED": "filled"}), **kw)
    return build_route_operator(step, "trades")


def test_each_route_and_default_in_input_order():
    out = op(default="unroutable").process(batch())
    assert set(out) == {MAIN, "filled", "unroutable"}
    assert ids(out[MAIN]) == [1, 4]
    assert ids(out["filled"]) == [2, 6]
    assert ids(out["unroutable"]) == [3, 5]  # null counts as an unknown value
    # time, watermark and position travel with each record; every tag gets the batch's end
    assert out["filled"].seq.tolist() == [101, 105]
    assert out["filled"].wm.tolist() == [1, 5]
    assert out["filled"].ts.tolist() == [20, 60]
    assert all(b.wm_end == 100 for b in out.values())


def test_unknown_values_go_to_errors_without_default():
    out = op().process(batch())
    errors = out[ERRORS]
    assert errors.data.columns == list(ERROR_COLUMNS)
    assert errors.data["error_message"].to_list() == [
        "no route for status=CANCELLED", "no route for status=null"]
    assert set(errors.data["error_type"]) == {UNROUTABLE}
    assert set(errors.data["operator"]) == {"by_status"}
    assert set(errors.data["pipeline"]) == {"trades"}
    assert errors.data["traceback"].to_list() == [None, None]
    assert [orjson.loads(r) for r in errors.data["raw"]] == [ROWS[2], ROWS[4]]
    assert errors.seq.tolist() == [102, 104]
    assert ids(out[MAIN]) == [1, 4] and ids(out["filled"]) == [2, 6]


def test_no_errors_output_when_everything_routes():
    out = op().process(batch(ROWS[:2]))
    assert ERRORS not in out


def test_non_string_values_compare_by_text():
    rows = [{"id": 1, "status": 200}, {"id": 2, "status": 404}, {"id": 3, "status": 500}]
    out = op(routes={"200": "main", "404": "missing"}, default="other").process(batch(rows))
    assert (ids(out[MAIN]), ids(out["missing"]), ids(out["other"])) == ([1], [2], [3])


def test_missing_field_counts_as_unknown():
    rows = [{"id": 1}, {"id": 2}]
    out = op(default="unroutable").process(batch(rows))
    assert ids(out["unroutable"]) == [1, 2] and ids(out[MAIN]) == []
    errors = op().process(batch(rows))[ERRORS]
    assert errors.data["error_message"].to_list() == ["no route for status=null"] * 2


def test_empty_batch_moves_the_watermark_on_every_tag():
    out = op().process(Batch.empty(POS_INF))
    assert set(out) == {MAIN, "filled"}
    assert all(len(b) == 0 and b.wm_end == POS_INF for b in out.values())


def test_output_tags_and_protocol():
    assert op().output_tags() == {"filled", ERRORS}
    assert op(default="rest").output_tags() == {"filled", "rest"}
    operator = op()
    assert isinstance(operator, Operator) and operator.name == "by_status"
    operator.process(batch())
    assert operator.counters == {"errors": 2}  # the runner's metric, checkpointed
    fresh = op()
    fresh.restore(operator.snapshot())
    assert fresh.counters == {"errors": 2}


def test_errors_tag_cannot_be_a_route():
    with pytest.raises(ValueError, match="reserved for error records"):
        op(routes={"NEW": "errors"})


def cut(b: Batch, bounds: list[int]) -> list[Batch]:
    """``b`` cut at ``bounds``; each piece ends at the watermark before the next record."""
    edges = [0, *bounds, len(b)]
    return [
        Batch(data=b.data[i:j], wm=b.wm[i:j], seq=b.seq[i:j], ts=b.ts[i:j],
              wm_end=int(b.wm[j]) if j < len(b) else b.wm_end)
        for i, j in zip(edges, edges[1:], strict=False)
    ]


@settings(max_examples=40, deadline=None)
@given(
    statuses=st.lists(st.sampled_from(["NEW", "FILLED", "X", None]), min_size=1, max_size=30),
    data=st.data(),
)
def test_batch_size_independence(statuses, data):
    rows = [{"id": i, "status": s} for i, s in enumerate(statuses)]
    whole = batch(rows)
    bounds = sorted(data.draw(st.sets(st.integers(1, max(1, len(rows) - 1)))))
    bounds = [b for b in bounds if 0 < b < len(rows)]
    reference = op(default="rest").process(whole)
    pieces = [op(default="rest").process(p) for p in cut(whole, bounds)]
    for tag, expected in reference.items():
        got = concat([p[tag] for p in pieces])
        assert got.data.equals(expected.data) if len(expected) else len(got) == 0
        assert np.array_equal(got.seq, expected.seq) and np.array_equal(got.wm, expected.wm)
        assert got.wm_end == expected.wm_end
