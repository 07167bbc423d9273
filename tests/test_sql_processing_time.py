"""Processing time in SQL (issue 11, item 5): ``CURRENT_DATE``, ``CURRENT_TIMESTAMP`` and
``NOW()`` in ``with_columns`` and ``where`` take one value per checkpoint interval, stored
with the checkpoint -- a restart after midnight gives the records it processes again the
date the interrupted run gave them, not the new day's."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from surestream.api import Pipeline, jsonl
from surestream.model.batch import Batch
from surestream.model.steps import WithColumnsStep
from surestream.runners.local.runner import LocalRunner
from surestream.semantics.expressions import build_with_columns_operator
from surestream.semantics.sql_processing_time import pin_processing_time

RECORDS = [{"id": i, "ts": 1_000 * i} for i in range(60)]
#: 23:00 UTC on 1 January 2026, and half past midnight the next day
BEFORE_MIDNIGHT = int(datetime(2026, 1, 1, 23, 0, tzinfo=UTC).timestamp() * 1000)
AFTER_MIDNIGHT = int(datetime(2026, 1, 2, 0, 30, tzinfo=UTC).timestamp() * 1000)


class Crash(Exception):
    """Stands for the process dying: the open checkpoint interval is never committed."""


def spec(folder: Path):
    p = Pipeline("sql_stamped", batch_size=10, checkpoint_dir=str(folder / "chk"))
    p.checkpoint["interval_records"] = 20
    (p.read_records(RECORDS).watermark("ts")
     .with_columns({"processed_on": "CURRENT_DATE", "seen_at": "NOW()",
                    "label": "'CURRENT_DATE'"}, name="stamp")
     .where("CURRENT_DATE < CAST('2026-01-02' AS DATE) OR id >= 50", name="today_only")
     .to(jsonl(str(folder / "out.jsonl"))))
    return p.spec()


def rows(folder: Path) -> dict[int, tuple[str, str, str]]:
    frame = pl.read_ndjson(folder / "out.jsonl")
    return {i: (d, t, label) for i, d, t, label in frame.select(
        "id", "processed_on", "seen_at", "label").iter_rows()}


def test_a_restart_after_midnight_gives_the_interrupted_records_the_date_they_had(tmp_path):
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    LocalRunner(spec(clean), clock=lambda: BEFORE_MIDNIGHT).run()
    batches = []

    def crash_after_five_batches(progress) -> None:
        batches.append(progress)
        if len(batches) == 5:  # 50 records read: checkpoints at 20 and 40, not at 50
            raise Crash

    with pytest.raises(Crash):
        LocalRunner(spec(crashed), clock=lambda: BEFORE_MIDNIGHT,
                    progress=crash_after_five_batches).run()
    restarted = LocalRunner(spec(crashed), clock=lambda: AFTER_MIDNIGHT).run()
    assert restarted.restored_from is not None
    before = ("2026-01-01", "2026-01-01 23:00:00", "CURRENT_DATE")  # a string stays a string
    clean_rows, crashed_rows = rows(clean), rows(crashed)
    assert {i: (d, t[:19].replace("T", " "), s) for i, (d, t, s) in clean_rows.items()} \
        == dict.fromkeys(range(60), before)
    # records 40..49, processed again from checkpoint 2: the date stored with it, and the
    # `where` on CURRENT_DATE keeps them, as the clean run did
    assert [crashed_rows[i] for i in range(50)] == [clean_rows[i] for i in range(50)]
    # the restart's own first checkpoint (after its first batch) opens an interval with the
    # new clock's reading
    assert {crashed_rows[i][0] for i in range(50, 60)} == {"2026-01-02"}


def test_a_checkpoint_without_a_stamp_restores_and_takes_one_at_the_first_batch():
    """A with_columns operator checkpointed before it had a stamp ({"counters": ...})."""
    op = build_with_columns_operator(
        WithColumnsStep(name="stamp", columns={"processed_on": "CURRENT_DATE"}), "p",
        clock=lambda: AFTER_MIDNIGHT)
    op.restore({"counters": {"errors": 0}})
    batch = Batch(pl.DataFrame({"id": [1, 2]}), wm=np.zeros(2, dtype=np.int64),
                  seq=np.arange(2, dtype=np.int64), wm_end=0)
    out = op.process(batch)["main"]
    assert out.data["processed_on"].to_list() == [datetime(2026, 1, 2).date()] * 2
    assert op.snapshot()["processing_time_stamp"] == AFTER_MIDNIGHT


def test_only_calls_are_pinned_not_strings_or_columns_named_like_them():
    stamp = int(datetime(2026, 3, 4, 5, 6, 7, 89_000, tzinfo=UTC).timestamp() * 1000)
    pinned = pin_processing_time(
        "CONCAT('now() ', CAST(current_date AS VARCHAR), \"CURRENT_TIME\", now, "
        "CAST(CURRENT_TIMESTAMP() AS VARCHAR), CAST(LOCALTIME AS VARCHAR))", stamp)
    assert pinned == (
        "CONCAT('now() ', CAST(CAST('2026-03-04' AS DATE) AS VARCHAR), \"CURRENT_TIME\", now, "
        "CAST(CAST('2026-03-04 05:06:07.089' AS TIMESTAMP) AS VARCHAR), "
        "CAST(CAST('05:06:07.089' AS TIME) AS VARCHAR))")
