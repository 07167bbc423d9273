"""Broadcast reference refreshed from its Parquet file on an event-time schedule.

The reference file is changed between refreshes; each test says which records see which
version: a record gets the file as read at the last refresh before it, and a refresh
happens right before the first record (in seq order) whose event time enters a new
``refresh_interval_ms`` interval.
"""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from surestream.model.batch import Batch
from surestream.model.steps import BroadcastEnrichStep
from surestream.runners.local.graph import build_operator
from surestream.semantics.broadcast import build_broadcast_operator
from surestream.semantics.operator import MAIN

MIN = 60_000


def write_reference(path, sector: str, lot: int = 100) -> None:
    pl.DataFrame({"sym": ["AAPL", "JPM"], "sector": [sector, "banks"],
                  "lot": [lot, 50]}).write_parquet(path)


def step(**extra) -> BroadcastEnrichStep:
    return BroadcastEnrichStep(name="enrich", key_fields=["sym"], fields=["sector", "lot"],
                               reference={"path": "ref.parquet"}, refresh_interval_ms=MIN,
                               **extra)


def trades(ts: list[int], seq0: int = 0, syms: list[str] | None = None) -> Batch:
    syms = syms or ["AAPL"] * len(ts)
    return Batch.from_rows([{"sym": s} for s in syms], ts=ts, wm=[0] * len(ts),
                           seq=list(range(seq0, seq0 + len(ts))), wm_end=0)


def sectors(outputs) -> list[str]:
    return outputs[MAIN].data["sector"].to_list()


def test_a_changed_file_applies_from_the_refresh_point_on(tmp_path):
    write_reference(tmp_path / "ref.parquet", "tech")
    op = build_operator(step(), "trades", base_dir=str(tmp_path))  # reads "tech"
    assert sectors(op.process(trades([10_000, 30_000, 50_000]))) == ["tech"] * 3
    write_reference(tmp_path / "ref.parquet", "software")
    # 55 s: still the first minute; 61 s enters the second: refreshed before it; 59 s comes
    # after the refresh in seq order, so it sees the new file too
    out = op.process(trades([55_000, 61_000, 59_000, 70_000], seq0=3))
    assert sectors(out) == ["tech", "software", "software", "software"]
    write_reference(tmp_path / "ref.parquet", "hardware", lot=7)
    out = op.process(trades([119_999, 120_000, 100_000], seq0=7))
    assert sectors(out) == ["software", "hardware", "hardware"]
    assert out[MAIN].data["lot"].to_list() == ["100", "7", "7"]  # with "UNKNOWN": text
    assert op.counters["refreshes"] == 2


def test_a_jump_over_several_intervals_refreshes_once(tmp_path):
    write_reference(tmp_path / "ref.parquet", "tech")
    op = build_operator(step(), "trades", base_dir=str(tmp_path))
    write_reference(tmp_path / "ref.parquet", "software")
    out = op.process(trades([1_000, 10 * MIN, 11 * MIN - 1]))
    assert sectors(out) == ["tech", "software", "software"]
    assert op.counters["refreshes"] == 1


def test_updates_apply_around_the_refresh_by_seq(tmp_path):
    """An update before the refresh point is replaced by the file; one at or after it
    applies on top of the refreshed table."""
    write_reference(tmp_path / "ref.parquet", "tech")
    op = build_operator(step(updates="refs"), "trades", base_dir=str(tmp_path))
    write_reference(tmp_path / "ref.parquet", "software")
    main = trades([10_000, 20_000, 70_000, 80_000, 90_000], syms=["AAPL"] * 5)
    main = Batch(data=main.data, wm=main.wm, seq=pl.Series([0, 2, 4, 6, 8]).to_numpy(),
                 wm_end=0, ts=main.ts)
    updates = Batch.from_rows([{"sym": "AAPL", "sector": "early", "lot": 1},
                               {"sym": "AAPL", "sector": "late", "lot": 2}],
                              ts=[0, 0], wm=[0, 0], seq=[3, 7], wm_end=0)
    out = op.process_with_updates(main, updates)
    # seq 0, 2: tech; update seq 3 ("early"); refresh before seq 4 ("software");
    # seq 4, 6: software; update seq 7 ("late"); seq 8: late
    assert sectors(out) == ["tech", "tech", "software", "software", "late"]


def test_restart_from_a_checkpoint_gives_identical_output(tmp_path):
    write_reference(tmp_path / "ref.parquet", "tech")
    first = build_operator(step(), "trades", base_dir=str(tmp_path))
    first.process(trades([10_000, 61_000]))  # the refresh at 61 s read "tech" again
    state = first.snapshot()
    write_reference(tmp_path / "ref.parquet", "software")  # changed after the checkpoint
    rest = trades([100_000, 110_000, 121_000, 130_000], seq0=2)
    expected = first.process(rest)
    assert sectors(expected) == ["tech", "tech", "software", "software"]
    restarted = build_operator(step(), "trades", base_dir=str(tmp_path))  # reads "software"
    restarted.restore(state)
    assert restarted.process(rest)[MAIN].data.equals(expected[MAIN].data)
    assert restarted.counters == first.counters
    # without the checkpointed table the records before 2 min would see the new file
    unrestored = build_operator(step(), "trades", base_dir=str(tmp_path))
    assert sectors(unrestored.process(rest))[:2] == ["software", "software"]


def test_a_failed_refresh_keeps_the_table_and_is_counted(tmp_path):
    write_reference(tmp_path / "ref.parquet", "tech")
    op = build_operator(step(), "trades", base_dir=str(tmp_path))
    (tmp_path / "ref.parquet").unlink()
    assert sectors(op.process(trades([1_000, 61_000]))) == ["tech", "tech"]
    pl.DataFrame({"sym": ["AAPL"], "sector": ["x"], "lot": ["not a number"]}).write_parquet(
        tmp_path / "ref.parquet")
    assert sectors(op.process(trades([121_000], seq0=2))) == ["tech"]
    assert (op.counters["refreshes"], op.counters["refresh_errors"]) == (0, 2)


def test_refresh_needs_event_time(tmp_path):
    write_reference(tmp_path / "ref.parquet", "tech")
    op = build_operator(step(), "trades", base_dir=str(tmp_path))
    untimed = Batch.from_rows([{"sym": "AAPL"}], wm=[0], seq=[0], wm_end=0)
    with pytest.raises(ValueError, match="watermark step before"):
        op.process(untimed)


@pytest.mark.parametrize("reference", [{"rows": [{"sym": "A", "sector": "s", "lot": 1}]},
                                       {"path": "ref.csv"},
                                       {"path": "ref.data", "format": "jsonl"}])
def test_the_spec_refuses_a_refresh_without_a_parquet_file(reference):
    with pytest.raises(ValidationError, match="refresh_interval_ms re-reads"):
        BroadcastEnrichStep(key_fields=["sym"], fields=["sector"], reference=reference,
                            refresh_interval_ms=MIN)
    BroadcastEnrichStep(key_fields=["sym"], fields=["sector"],
                        reference={"path": "ref.data", "format": "parquet"},
                        refresh_interval_ms=MIN)


# -- any batching gives the same answer as one record at a time -------------------------------

V1 = pl.DataFrame({"sym": ["AAPL", "JPM"], "sector": ["v1", "v1"], "lot": [1, 1]})
V2 = pl.DataFrame({"sym": ["AAPL", "JPM"], "sector": ["v2", "v2"], "lot": [2, 2]})

records = st.lists(st.tuples(st.sampled_from(["AAPL", "JPM", "X"]), st.integers(0, 5 * MIN)),
                   min_size=1, max_size=40)


def model(items: list[tuple[str, int]]) -> list[str]:
    """One record at a time: v1 until the running maximum of ts // 1 min first grows,
    v2 after (the reloader always reads v2)."""
    out, interval, table = [], None, {"AAPL": "v1", "JPM": "v1"}
    for sym, ts in items:
        k = ts // MIN
        if interval is not None and k > interval:
            table = {"AAPL": "v2", "JPM": "v2"}
        interval = k if interval is None else max(interval, k)
        out.append(table.get(sym, "UNKNOWN"))
    return out


@settings(max_examples=80, deadline=None)
@given(items=records, data=st.data())
def test_any_batching_and_restore_matches_one_record_at_a_time(items, data):
    n = len(items)
    bounds = sorted(set(data.draw(st.lists(st.integers(0, n), max_size=6))) | {0, n})
    restore_at = data.draw(st.integers(0, len(bounds) - 1))

    def fresh():
        return build_broadcast_operator(step(), "trades", reference=V1, reload=lambda: V2)

    op, got = fresh(), []
    for piece, (lo, hi) in enumerate(zip(bounds, bounds[1:], strict=False)):
        if piece == restore_at:
            restored = fresh()
            restored.restore(op.snapshot())
            op = restored
        chunk = items[lo:hi]
        got += sectors(op.process(trades([ts for _, ts in chunk], seq0=lo,
                                          syms=[s for s, _ in chunk])))
    assert got == model(items)
