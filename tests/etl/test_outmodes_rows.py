"""Output modes (docs/etl.md): the rows of the aggregate step and of windows in
update, complete and append mode, asserted against expectations written by hand for small
inputs, at several batch sizes; a state timeout that drops a key's state (gauges, the
checkpointed state) and finalizes it in append mode."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from surestream.model.batch import Batch
from surestream.model.spec import PipelineSpec
from surestream.model.steps import AggregateStep
from surestream.runners.local.checkpoint_store import CheckpointStore
from surestream.runners.local.runner import run
from surestream.semantics.running import build_aggregate_operator

WATERMARK = {"type": "watermark", "timestamp_column": "ts", "max_out_of_orderness_ms": 0}


def spec(tmp_path, records, step, *, batch_size=1000, outputs=None, every=None, name="t"):
    checkpoint = {"dir": str(tmp_path / f"chk-{name}-{batch_size}")}
    if every:
        checkpoint["interval_records"] = every
    return PipelineSpec(pipeline="t", source={"type": "memory", "records": records},
                        steps=[WATERMARK, step], checkpoint=checkpoint,
                        outputs=outputs or {"main": {"type": "memory"}},
                        runtime={"batch_size": batch_size})


def rows(tmp_path, records, step, tag="main", **kw):
    return run(spec(tmp_path, records, step, **kw)).rows(tag)


AGGS = {"n": "count()", "s": "sum(v)", "lo": "min(v)", "hi": "max(v)", "f": "first(v)",
        "l": "last(v)", "avg": "avg(v)"}
RECORDS = [{"k": "a", "v": 1, "ts": 1000}, {"k": "b", "v": 2, "ts": 2000},
           {"k": "a", "v": 3, "ts": 3000}, {"k": "a", "v": None, "ts": 1500},
           {"k": "a", "v": 0, "ts": 500}]


def row(k, n, s, lo, hi, f, last, avg, version):
    return {"k": k, "n": n, "s": s, "lo": lo, "hi": hi, "f": f, "l": last, "avg": avg,
            "version": version}


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_aggregate_update_emits_each_records_result_with_its_version(tmp_path, batch_size):
    """One row per record: its key's result after it. A null value changes no
    aggregation but the record count; first/last go by event time (the record at 500 is
    the key's first although it came last)."""
    step = {"type": "aggregate", "name": "agg", "key_fields": ["k"], "aggregations": AGGS}
    assert rows(tmp_path, RECORDS, step, batch_size=batch_size) == [
        row("a", 1, 1, 1, 1, 1, 1, 1.0, 1),
        row("b", 1, 2, 2, 2, 2, 2, 2.0, 1),
        row("a", 2, 4, 1, 3, 1, 3, 2.0, 2),
        row("a", 3, 4, 1, 3, 1, 3, 2.0, 3),
        row("a", 4, 4, 0, 3, 0, 3, 4 / 3, 4),
    ]


@pytest.mark.parametrize(("batch_size", "every"), [(1, 1), (2, 2), (1000, None)])
def test_aggregate_complete_holds_every_keys_result_once(tmp_path, batch_size, every):
    """The output (a memory output replaces its rows at every checkpoint) holds the whole
    result table once, whatever the number of checkpoints it was emitted at."""
    step = {"type": "aggregate", "name": "agg", "key_fields": ["k"], "aggregations": AGGS,
            "output_mode": "complete"}
    assert rows(tmp_path, RECORDS, step, batch_size=batch_size, every=every) == [
        row("a", 4, 4, 0, 3, 0, 3, 4 / 3, 4),
        row("b", 1, 2, 2, 2, 2, 2, 2.0, 1),
    ]


def test_aggregate_without_key_fields_is_one_running_result(tmp_path):
    step = {"type": "aggregate", "name": "agg", "aggregations": {"n": "count()",
                                                                 "s": "sum(v)"}}
    assert rows(tmp_path, RECORDS[:3], step, batch_size=2) == [
        {"n": 1, "s": 1, "version": 1}, {"n": 2, "s": 3, "version": 2},
        {"n": 3, "s": 6, "version": 3}]


TIMEOUT_RECORDS = [{"k": "a", "v": 1, "ts": 1000}, {"k": "b", "v": 2, "ts": 1200},
                   {"k": "a", "v": 3, "ts": 1500}, {"k": "c", "v": 4, "ts": 5000},
                   {"k": "a", "v": 5, "ts": 5100}]


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_append_emits_a_key_once_when_its_state_times_out(tmp_path, batch_size):
    """state_timeout_ms 2000: the record at 5000 moves the watermark to 4999, past a's
    last record (1500) + 2000 and b's (1200) + 2000: both are final there, b first (it
    timed out first). a's record at 5100 starts a fresh result (version 1); the end of the
    input finalizes c and the new a."""
    step = {"type": "aggregate", "name": "agg", "key_fields": ["k"],
            "aggregations": {"n": "count()", "s": "sum(v)"}, "output_mode": "append",
            "state_timeout_ms": 2000}
    assert rows(tmp_path, TIMEOUT_RECORDS, step, batch_size=batch_size) == [
        {"k": "b", "n": 1, "s": 2, "version": 1}, {"k": "a", "n": 2, "s": 4, "version": 2},
        {"k": "c", "n": 1, "s": 4, "version": 1}, {"k": "a", "n": 1, "s": 5, "version": 1}]


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_update_after_a_timeout_starts_the_key_afresh(tmp_path, batch_size):
    step = {"type": "aggregate", "name": "agg", "key_fields": ["k"],
            "aggregations": {"s": "sum(v)"}, "state_timeout_ms": 2000}
    assert rows(tmp_path, TIMEOUT_RECORDS, step, batch_size=batch_size) == [
        {"k": "a", "s": 1, "version": 1}, {"k": "b", "s": 2, "version": 1},
        {"k": "a", "s": 4, "version": 2}, {"k": "c", "s": 4, "version": 1},
        {"k": "a", "s": 5, "version": 1}]


def test_complete_keeps_a_timed_out_keys_last_result_until_the_key_starts_afresh(tmp_path):
    step = {"type": "aggregate", "name": "agg", "key_fields": ["k"],
            "aggregations": {"s": "sum(v)"}, "output_mode": "complete",
            "state_timeout_ms": 2000}
    assert rows(tmp_path, TIMEOUT_RECORDS, step, batch_size=1, every=1) == [
        {"k": "a", "s": 5, "version": 1}, {"k": "b", "s": 2, "version": 1},
        {"k": "c", "s": 4, "version": 1}]


def _batch(records: list[dict], seq0: int, wm_before: int) -> Batch:
    """Records with event time ``ts`` and the watermark of max_out_of_orderness 0 (W =
    the largest timestamp so far - 1), starting from ``wm_before``."""
    ts = np.array([r["ts"] for r in records], dtype=np.int64)
    after = np.maximum.accumulate(np.maximum(ts - 1, wm_before))
    before = np.concatenate([[wm_before], after[:-1]]).astype(np.int64)
    return Batch(data=pl.DataFrame(records), ts=ts, wm=before,
                 seq=np.arange(seq0, seq0 + len(records), dtype=np.int64),
                 wm_end=int(after[-1]))


def test_a_timed_out_key_leaves_the_state_and_its_checkpoint():
    """The state gauge counts live keys: a and b go once the watermark passes them by the
    timeout; the snapshot (what a checkpoint holds) has c only, and a restored operator
    goes on exactly as the original."""
    step = AggregateStep(name="agg", key_fields=["k"], aggregations={"s": "sum(v)"},
                         output_mode="update", state_timeout_ms=2000)
    op = build_aggregate_operator(step, "p")
    op.process(_batch(TIMEOUT_RECORDS[:3], 0, -(2**63)))
    assert op.state_gauges()["keys"] == 2
    first = op.process(_batch(TIMEOUT_RECORDS[3:4], 3, 1499))
    assert first["main"].data.to_dicts() == [{"k": "c", "s": 4, "version": 1}]
    assert op.state_gauges()["keys"] == 1
    saved = op.snapshot()
    assert saved["state"].get_column("k").to_list() == ["c"]
    assert op.counters["finalized"] == 2
    restored = build_aggregate_operator(step, "p")
    restored.restore(saved)
    last = _batch(TIMEOUT_RECORDS[4:], 4, 4999)
    assert restored.process(last)["main"].data.to_dicts() == \
        op.process(last)["main"].data.to_dicts() == [{"k": "a", "s": 5, "version": 1}]


WINDOW_RECORDS = [{"k": "a", "v": 1, "ts": 1000}, {"k": "b", "v": 2, "ts": 2500},
                  {"k": "a", "v": 3, "ts": 2900}, {"k": "a", "v": 5, "ts": 4100},
                  {"k": "a", "v": 7, "ts": 1500}, {"k": "a", "v": 8, "ts": 9000}]


def window(mode: str, **extra) -> dict:
    return {"type": "window", "name": "w", "kind": "tumbling", "size_ms": 3000,
            "key_fields": ["k"], "aggregations": "v:sum", "output_mode": mode, **extra}


OUTPUTS = {"main": {"type": "memory"}, "late_window": {"type": "memory"}}


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_window_update_emits_each_change_of_a_key_and_window(tmp_path, batch_size):
    """The record at 1500 comes after the watermark passed [0, 3000): it goes to the late
    output, as in append mode."""
    result = run(spec(tmp_path, WINDOW_RECORDS, window("update"), batch_size=batch_size,
                      outputs=OUTPUTS))
    assert result.rows("main") == [
        {"k": "a", "window_start": 0, "window_end": 3000, "v": 1, "version": 1},
        {"k": "b", "window_start": 0, "window_end": 3000, "v": 2, "version": 1},
        {"k": "a", "window_start": 0, "window_end": 3000, "v": 4, "version": 2},
        {"k": "a", "window_start": 3000, "window_end": 6000, "v": 5, "version": 1},
        {"k": "a", "window_start": 9000, "window_end": 12000, "v": 8, "version": 1}]
    assert [r["ts"] for r in result.rows("late_window")] == [1500]


def test_window_update_with_allowed_lateness_takes_the_late_record(tmp_path):
    result = run(spec(tmp_path, WINDOW_RECORDS, window("update", allowed_lateness_ms=2000),
                      outputs=OUTPUTS))
    changes = [(r["window_start"], r["v"], r["version"]) for r in result.rows("main")
               if r["k"] == "a"]
    assert changes == [(0, 1, 1), (0, 4, 2), (3000, 5, 1), (0, 11, 3), (9000, 8, 1)]
    assert result.rows("late_window") == []


def test_sliding_window_update_has_a_row_per_window_of_the_record(tmp_path):
    step = {"type": "window", "name": "w", "kind": "sliding", "size_ms": 2000,
            "slide_ms": 1000, "aggregations": {"n": "count()"}, "output_mode": "update"}
    got = rows(tmp_path, [{"ts": 1500}, {"ts": 1700}, {"ts": 2100}], step,
               outputs={"main": {"type": "memory"}, "late_window": {"type": "memory"}})
    assert [(r["window_start"], r["n"], r["version"]) for r in got] == [
        (1000, 1, 1), (0, 1, 1), (1000, 2, 2), (0, 2, 2), (2000, 1, 1), (1000, 3, 3)]


@pytest.mark.parametrize(("batch_size", "every"), [(1, 1), (1000, None)])
def test_window_complete_is_every_windows_result(tmp_path, batch_size, every):
    result = run(spec(tmp_path, WINDOW_RECORDS, window("complete"), batch_size=batch_size,
                      every=every, outputs=OUTPUTS))
    assert result.rows("main") == [
        {"k": "a", "window_start": 0, "window_end": 3000, "v": 4, "version": 2},
        {"k": "a", "window_start": 3000, "window_end": 6000, "v": 5, "version": 1},
        {"k": "a", "window_start": 9000, "window_end": 12000, "v": 8, "version": 1},
        {"k": "b", "window_start": 0, "window_end": 3000, "v": 2, "version": 1}]
    assert len(result.rows("late_window")) == 1


def test_window_append_is_unchanged(tmp_path):
    got = rows(tmp_path, WINDOW_RECORDS, window("append"), outputs=OUTPUTS)
    assert [(r["k"], r["window_start"], r["v"], r["revision"]) for r in got] == [
        ("a", 0, 4, 0), ("b", 0, 2, 0), ("a", 3000, 5, 0), ("a", 9000, 8, 0)]


def test_a_value_an_aggregation_cannot_use_goes_to_errors(tmp_path):
    records = [{"k": "a", "v": "1.5", "ts": 1}, {"k": "a", "v": "lots", "ts": 2},
               {"k": "a", "v": "2", "ts": 3}]
    result = run(spec(tmp_path, records, {"type": "aggregate", "name": "agg",
                                          "key_fields": ["k"],
                                          "aggregations": {"s": "sum(v)"}},
                      outputs={"main": {"type": "memory"}, "errors": {"type": "memory"}}))
    assert result.rows("main") == [{"k": "a", "s": 1.5, "version": 1},
                                   {"k": "a", "s": 3.5, "version": 2}]
    [error] = result.rows("errors")
    assert "sum(v) needs a number" in error["error_message"]


def test_the_aggregate_state_is_in_the_checkpoint(tmp_path):
    step = {"type": "aggregate", "name": "agg", "key_fields": ["k"],
            "aggregations": {"s": "sum(v)"}}
    s = spec(tmp_path, RECORDS, step, every=2)
    run(s)
    state = CheckpointStore(s.checkpoint_dir(), 3).latest().state("agg")["state"]
    assert sorted(state.get_column("k").to_list()) == ["a", "b"]


def test_the_shipped_example_runs_and_holds_what_the_docs_say(tmp_path):
    """docs/examples/outmodes_page_views.yaml (docs/etl.md), its outputs moved to
    a temporary folder."""
    from pathlib import Path

    import duckdb

    from surestream.model.loader import load_spec_dict

    doc = load_spec_dict(Path(__file__).resolve().parents[2] / "docs" / "examples"
                         / "outmodes_page_views.yaml")
    for out in doc["outputs"].values():
        out["path"] = str(tmp_path / Path(out["path"]).name)
    doc["checkpoint"]["dir"] = str(tmp_path / "chk")
    result = run(PipelineSpec(**doc))
    assert result.checkpoints >= 3  # the table was replaced at each
    with duckdb.connect(str(tmp_path / "gold.duckdb"), read_only=True) as con:
        assert con.execute("select page, clicks, version from page_totals order by page"
                           ).fetchall() == [("cart", 5, 2), ("home", 9, 4)]
    idle = [(r["user_id"], r["views"], r["version"]) for r in result.rows("idle_users")]
    assert idle == [("u2", 1, 1), ("u1", 3, 3), ("u3", 1, 1), ("u2", 1, 1)]
    assert [r["version"] for r in result.rows("user_totals")] == [1, 1, 2, 3, 1, 2]
