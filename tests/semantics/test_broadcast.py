"""Broadcast-state enrichment: reference data, updates in seq order, unknown keys."""

from __future__ import annotations

import orjson
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surestream.connectors.reference_data import load_reference
from surestream.model.batch import POS_INF, Batch
from surestream.model.steps import BroadcastEnrichStep
from surestream.runners.local.graph import build_operator
from surestream.semantics.broadcast import build_broadcast_operator
from surestream.semantics.errors import INVALID_BROADCAST_UPDATE
from surestream.semantics.operator import ERRORS, MAIN, Operator

REFERENCE = [
    {"sym": "AAPL", "sector": "tech", "lot": 100},
    {"sym": "JPM", "sector": "banks", "lot": 50},
]


def make_op(reference=None, *, fields=("sector", "lot"), unknown="UNKNOWN", base_dir=None):
    step = BroadcastEnrichStep(
        name="enrich", key_fields=["sym"], fields=list(fields), unknown_value=unknown,
        reference={"rows": REFERENCE} if reference is None else reference or None,
        updates="reference_updates",
    )
    return build_operator(step, "trades", base_dir=base_dir)  # reads the reference data


def main_batch(syms, seq=None, **columns):
    rows = [{"sym": s, **{c: v[i] for c, v in columns.items()}} for i, s in enumerate(syms)]
    n = len(rows)
    return Batch.from_rows(rows, ts=[100 + i for i in range(n)], wm=[10] * n,
                           seq=seq if seq is not None else list(range(n)), wm_end=20)


def update_batch(rows, seq):
    return Batch.from_rows(rows, ts=[1] * len(rows), wm=[0] * len(rows), seq=seq, wm_end=0)


def enriched(out) -> list[tuple]:
    return out[MAIN].data.select("sym", "sector", "lot").rows()


# -- reference data ---------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_reference_file_known_and_unknown_keys_in_order(tmp_path, fmt):
    frame = pl.DataFrame(REFERENCE)
    path = tmp_path / f"ref.{fmt}"
    {"parquet": frame.write_parquet, "csv": frame.write_csv, "jsonl": frame.write_ndjson}[fmt](
        path)
    op = make_op({"path": f"ref.{fmt}", "format": fmt}, base_dir=tmp_path)
    b = main_batch(["JPM", "TSLA", "AAPL", None], qty=[1, 2, 3, 4])
    out = op.process(b)
    assert out[MAIN].data.to_dicts() == [
        {"sym": "JPM", "qty": 1, "sector": "banks", "lot": "50"},
        {"sym": "TSLA", "qty": 2, "sector": "UNKNOWN", "lot": "UNKNOWN"},
        {"sym": "AAPL", "qty": 3, "sector": "tech", "lot": "100"},
        {"sym": None, "qty": 4, "sector": "UNKNOWN", "lot": "UNKNOWN"},  # null key: unknown
    ]
    assert op.unknown_count == 2
    result = out[MAIN]
    assert (result.ts.tolist(), result.wm.tolist(), result.seq.tolist(), result.wm_end) == \
        (b.ts.tolist(), b.wm.tolist(), b.seq.tolist(), 20)


def test_unknown_value_per_field_keeps_column_types():
    op = make_op(unknown={"sector": "UNKNOWN", "lot": None})
    out = op.process(main_batch(["AAPL", "X"]))
    assert enriched(out) == [("AAPL", "tech", 100), ("X", "UNKNOWN", None)]
    assert out[MAIN].data.schema["lot"] == pl.Int64


def test_output_types_do_not_depend_on_whether_a_batch_has_unknown_keys():
    op = make_op()
    all_known = op.process(main_batch(["AAPL"]))[MAIN].data.schema
    with_unknown = op.process(main_batch(["X"]))[MAIN].data.schema
    assert all_known == with_unknown and all_known["lot"] == pl.String


def test_enrichment_replaces_a_column_of_the_same_name():
    out = make_op().process(main_batch(["AAPL"], sector=["stale"]))
    assert out[MAIN].data.to_dicts() == [{"sym": "AAPL", "sector": "tech", "lot": "100"}]


def test_empty_main_batch_carries_the_watermark():
    out = make_op().process(Batch.empty(POS_INF))
    assert len(out[MAIN]) == 0 and out[MAIN].wm_end == POS_INF
    assert {"sector", "lot"} <= set(out[MAIN].data.columns)


# -- updates ----------------------------------------------------------------------------
def test_update_inside_a_batch_applies_between_records_by_seq():
    op = make_op()
    main = main_batch(["AAPL", "TSLA", "AAPL", "TSLA", "JPM"], seq=[0, 2, 4, 6, 8])
    updates = update_batch(
        [{"sym": "AAPL", "sector": "hardware", "lot": 10},
         {"sym": "TSLA", "sector": "autos", "lot": 1},
         {"sym": "JPM", "sector": "finance", "lot": 5}],
        seq=[3, 5, 8],  # 8 ties with the JPM record: the update applies first
    )
    out = op.process_with_updates(main, updates)
    assert enriched(out) == [
        ("AAPL", "tech", "100"), ("TSLA", "UNKNOWN", "UNKNOWN"), ("AAPL", "hardware", "10"),
        ("TSLA", "autos", "1"), ("JPM", "finance", "5"),
    ]
    assert op.unknown_count == 1
    assert sorted(op.table.rows()) == [("AAPL", "hardware", 10), ("JPM", "finance", 5),
                                       ("TSLA", "autos", 1)]


def test_several_updates_of_one_key_the_latest_before_each_record_wins():
    op = make_op()
    updates = update_batch([{"sym": "AAPL", "sector": s, "lot": i} for i, s in
                            enumerate(["v1", "v2", "v3"])], seq=[5, 1, 3])  # out of order
    out = op.process_with_updates(main_batch(["AAPL"] * 4, seq=[0, 2, 4, 6]), updates)
    assert [r[1] for r in enriched(out)] == ["tech", "v2", "v3", "v1"]
    assert op.table.filter(pl.col("sym") == "AAPL").rows() == [("AAPL", "v1", 0)]


def test_update_then_process_and_missing_update_fields_become_null():
    op = make_op()
    assert op.update(update_batch([{"sym": "NVDA", "sector": "chips"}], seq=[0])) == {}
    assert enriched(op.process(main_batch(["NVDA"]))) == [("NVDA", "chips", None)]


def test_invalid_updates_go_to_errors_and_leave_the_table_alone():
    op = make_op()
    updates = update_batch([{"sym": None, "sector": "x", "lot": 1},
                            {"sym": "AAPL", "sector": "x", "lot": "many"},
                            {"sym": "JPM", "sector": "ok", "lot": "7"}], seq=[1, 2, 3])
    out = op.process_with_updates(main_batch(["AAPL", "JPM"], seq=[4, 5]), updates)
    assert enriched(out) == [("AAPL", "tech", "100"), ("JPM", "ok", "7")]
    errors = out[ERRORS].data.to_dicts()
    assert [e["error_type"] for e in errors] == [INVALID_BROADCAST_UPDATE] * 2
    assert errors[0]["error_message"] == "null key field"
    assert "does not fit" in errors[1]["error_message"]
    assert orjson.loads(errors[1]["raw"]) == {"sym": "AAPL", "sector": "x", "lot": "many"}
    assert out[ERRORS].seq.tolist() == [1, 2]
    assert op.counters == {"unknown_keys": 0, "errors": 2}


def test_without_reference_the_first_updates_define_the_table():
    op = make_op(reference=False)
    assert enriched(op.process(main_batch(["AAPL"]))) == [("AAPL", "UNKNOWN", "UNKNOWN")]
    op.update(update_batch([{"sym": "AAPL", "sector": "tech", "lot": 100}], seq=[1]))
    assert enriched(op.process(main_batch(["AAPL", "X"], seq=[2, 3]))) == [
        ("AAPL", "tech", "100"), ("X", "UNKNOWN", "UNKNOWN")]
    assert op.unknown_count == 2


def test_main_key_type_differs_from_reference():
    step = BroadcastEnrichStep(name="e", key_fields=["id"], fields=["name"],
                               reference={"rows": [{"id": "7", "name": "seven"}]})
    op = build_operator(step, "p")
    b = Batch.from_rows([{"id": 7}, {"id": 8}], ts=[1, 2], wm=[0, 0], wm_end=0)
    assert op.process(b)[MAIN].data.rows() == [(7, "seven"), (8, "UNKNOWN")]


# -- reference loading errors ---------------------------------------------------------
def test_reference_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match=r"missing columns \['lot'\]"):
        load_reference({"rows": [{"sym": "A", "sector": "s"}]}, ["sym"], ["sector", "lot"])
    with pytest.raises(ValueError, match="1 rows have a null key"):
        load_reference({"rows": [{"sym": None, "x": 1}]}, ["sym"], ["x"])
    with pytest.raises(ValueError, match="suffix does not name one of parquet"):
        load_reference({"path": str(tmp_path / "r.xml")}, ["sym"], ["x"])
    with pytest.raises(ValueError, match="format 'xml' is not one of parquet"):
        load_reference({"path": "r.txt", "format": "xml"}, ["sym"], ["x"])
    with pytest.raises(ValueError, match="unknown keys"):
        load_reference({"path": "r.csv", "sep": ";"}, ["sym"], ["x"])


def test_the_operator_starts_from_the_frame_it_is_handed_and_reads_no_file():
    """Reading the reference file is the runner's job (connectors.reference_data); the
    operator gets the table as a frame, and refuses a reference nobody loaded for it."""
    step = BroadcastEnrichStep(name="e", key_fields=["sym"], fields=["sector"],
                               reference={"path": "nowhere.parquet"})
    frame = pl.DataFrame({"sym": ["A"], "sector": ["tech"]})
    op = build_broadcast_operator(step, "p", reference=frame)
    b = Batch.from_rows([{"sym": "A"}, {"sym": "B"}], ts=[1, 2], wm=[0, 0], wm_end=0)
    assert op.process(b)[MAIN].data.rows() == [("A", "tech"), ("B", "UNKNOWN")]
    with pytest.raises(ValueError, match="reference data was not loaded"):
        build_broadcast_operator(step, "p")


def test_reference_duplicates_keep_the_last_row():
    frame = load_reference({"rows": [{"k": 1, "v": "a"}, {"k": 1, "v": "b"}]}, ["k"], ["v"])
    assert frame.rows() == [(1, "b")]


# -- checkpoints and determinism ------------------------------------------------------
def test_snapshot_restore_round_trip():
    op = make_op()
    op.update(update_batch([{"sym": "NVDA", "sector": "chips", "lot": 3}], seq=[0]))
    op.process(main_batch(["X"]))
    state = op.snapshot()
    fresh = make_op(reference=False)
    fresh.restore(state)
    assert fresh.unknown_count == 1
    assert fresh.table.equals(op.table)
    b = main_batch(["NVDA", "AAPL", "Y"], seq=[5, 6, 7])
    assert fresh.process(b)[MAIN].data.equals(op.process(b)[MAIN].data)
    assert isinstance(fresh, Operator) and fresh.output_tags() == {ERRORS}


SYMS = ["AAPL", "JPM", "NVDA", "X"]
events = st.lists(
    st.one_of(
        st.tuples(st.just("main"), st.sampled_from(SYMS)),
        st.tuples(st.just("update"), st.sampled_from(SYMS), st.sampled_from(["s1", "s2"]),
                  st.integers(1, 9)),
    ),
    min_size=1, max_size=30,
)


def model(items) -> list[tuple]:
    """The meaning of broadcast state, one event at a time."""
    table = {r["sym"]: (r["sector"], str(r["lot"])) for r in REFERENCE}
    out = []
    for item in items:
        if item[0] == "update":
            table[item[1]] = (item[2], str(item[3]))
        else:
            out.append((item[1], *table.get(item[1], ("UNKNOWN", "UNKNOWN"))))
    return out


@settings(max_examples=60, deadline=None)
@given(items=events, data=st.data())
def test_any_batching_matches_one_event_at_a_time(items, data):
    n = len(items)
    bounds = sorted(set(data.draw(st.lists(st.integers(0, n), max_size=5))) | {0, n})
    restore_at = data.draw(st.integers(0, len(bounds) - 1))
    op, got = make_op(), []
    for piece, (lo, hi) in enumerate(zip(bounds, bounds[1:], strict=False)):
        if piece == restore_at:
            fresh = make_op()
            fresh.restore(op.snapshot())
            op = fresh
        stretch = list(enumerate(items))[lo:hi]
        mains = [(i, it) for i, it in stretch if it[0] == "main"]
        ups = [(i, it) for i, it in stretch if it[0] == "update"]
        main = main_batch([it[1] for _, it in mains], seq=[i for i, _ in mains])
        updates = update_batch([{"sym": it[1], "sector": it[2], "lot": it[3]} for _, it in ups],
                               seq=[i for i, _ in ups])
        got.extend(enriched(op.process_with_updates(main, updates)) if mains else [])
        if not mains:
            op.update(updates)
    assert got == model(items)
    assert op.unknown_count == sum(1 for r in got if r[1] == "UNKNOWN")
