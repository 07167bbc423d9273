"""The ``processing_time`` step (SEMANTICS §1): one wall-clock value per checkpoint interval,
stored with the checkpoint, so a crash and a restart reproduce the values of the records
processed again -- the output equals the clean run's, although the clock has moved on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from surestream.api import Pipeline, jsonl
from surestream.runners.local.runner import LocalRunner

RECORDS = [{"id": i, "ts": 1_000 * i} for i in range(60)]


class Crash(Exception):
    """Stands for the process dying: the open checkpoint interval is never committed."""


def ticking_clock(start: int) -> Callable[[], int]:
    """A clock that moves 1,000 ms each time it is read."""
    now = [start]

    def clock() -> int:
        now[0] += 1_000
        return now[0]

    return clock


def spec(folder: Path, unit: str = "ms"):
    p = Pipeline("stamped", batch_size=10, checkpoint_dir=str(folder / "chk"))
    p.checkpoint["interval_records"] = 20
    (p.read_records(RECORDS).watermark("ts")
     .processing_time("seen_at", unit=unit, name="stamp")
     .to(jsonl(str(folder / "out.jsonl"))))
    return p.spec()


def stamps(folder: Path) -> list[tuple[int, object]]:
    frame = pl.read_ndjson(folder / "out.jsonl")
    return list(zip(frame["id"].to_list(), frame["seen_at"].to_list(), strict=True))


def test_one_value_per_checkpoint_interval(tmp_path):
    LocalRunner(spec(tmp_path), clock=ticking_clock(0)).run()
    # read at the start, then at each checkpoint (after 20, 40, 60 records): records 0-19
    # share one value, 20-39 a later one, 40-59 a later one still
    values = [v for _, v in stamps(tmp_path)]
    intervals = [set(values[i:i + 20]) for i in (0, 20, 40)]
    assert all(len(one) == 1 for one in intervals)
    firsts = [next(iter(one)) for one in intervals]
    assert firsts == sorted(firsts) and len(set(firsts)) == 3


def test_a_crash_and_restart_gives_the_records_processed_again_their_stored_value(tmp_path):
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    LocalRunner(spec(clean), clock=ticking_clock(0)).run()
    batches = []

    def crash_after_five_batches(progress) -> None:
        batches.append(progress)
        if len(batches) == 5:  # 50 records read: checkpoints at 20 and 40, not at 50
            raise Crash

    with pytest.raises(Crash):
        LocalRunner(spec(crashed), clock=ticking_clock(0),
                    progress=crash_after_five_batches).run()
    # the restart reads a clock a day later: records 40..49, processed again from checkpoint
    # 2, keep the value stored with it -- the value the interrupted run had given them and
    # the clean run gives them; the restart's own first checkpoint (after its first batch)
    # opens an interval with the new clock's value
    restarted = LocalRunner(spec(crashed), clock=ticking_clock(86_400_000)).run()
    assert restarted.restored_from is not None
    assert stamps(crashed)[:50] == stamps(clean)[:50]
    assert all(v >= 86_400_000 for _, v in stamps(crashed)[50:])


def test_timestamp_unit_is_a_utc_timestamp(tmp_path):
    p = Pipeline("stamped", checkpoint_dir=str(tmp_path / "chk"))
    p.read_records(RECORDS[:2]).processing_time("seen_at", unit="timestamp").to(
        jsonl(str(tmp_path / "out.jsonl")))
    result = LocalRunner(p.spec(), clock=lambda: 1_767_225_600_123).run()
    assert result.written["main"] == 2
    frame = pl.read_ndjson(tmp_path / "out.jsonl")
    assert frame["seen_at"].str.to_datetime(time_zone="UTC").to_list() == [
        datetime(2026, 1, 1, 0, 0, 0, 123_000, tzinfo=UTC)] * 2
