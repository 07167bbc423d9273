"""The window cases computed by real Apache Flink (tests/data/flink-cases, see its README).

Each case is replayed as the README says: records in file order keyed by ``k``, a punctuated
watermark ``W = max(W, max_ts - D - 1)`` after every record, then +infinity. Firings are
compared in Flink's order, except that consecutive firings with the same ``window_end``
(different keys) are compared as a multiset (SEMANTICS §5); late records by id, in order.
Every case is run whole, one record per batch, and cut in odd places.

The cases are a copy of ``shared/flink-cases`` kept in the repository, so that the suite is
self-contained; a missing or empty folder fails the suite instead of skipping the cases.
"""

from __future__ import annotations

import json
from collections import Counter
from itertools import groupby, pairwise
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from surestream.model.batch import NEG_INF, POS_INF, Batch, concat
from surestream.model.steps import WindowStep
from surestream.semantics.operator import MAIN
from surestream.semantics.windows import build_window_operator

AGGS = {"count": "count()", "sum": "sum(v)", "min": "min(v)", "max": "max(v)",
        "first": "first(v)", "last": "last(v)"}

CASES_DIR = Path(__file__).resolve().parents[1] / "data" / "flink-cases"
CASES = sorted(p for p in CASES_DIR.iterdir() if p.is_dir()) if CASES_DIR.is_dir() else []
#: the cases the suite must hold at least (more may be added beside them)
REQUIRED = {"t01_tumble_boundaries", "t03_tumble_lateness_revisions",
            "s03_sliding_offset_3x", "w02_session_late_bridge"}
FILES = ("case.json", "input.jsonl", "expected_main.jsonl", "expected_late.jsonl")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def case_batches(records: list[dict], d: int, cuts: list[int]) -> list[Batch]:
    """The records cut into batches at ``cuts``, W computed per record, then end of input."""
    w, top, before = NEG_INF, NEG_INF, []
    for r in records:
        before.append(w)
        top = max(top, r["ts"])
        w = max(w, top - d - 1)
    frame = pl.DataFrame(records, schema={"k": pl.String, "ts": pl.Int64, "v": pl.Float64,
                                          "id": pl.String})
    n = len(records)
    batches = []
    for a, b in pairwise([0, *cuts, n]):
        batches.append(Batch(data=frame.slice(a, b - a),
                             ts=frame["ts"].to_numpy()[a:b].astype(np.int64),
                             wm=np.array(before[a:b], dtype=np.int64),
                             seq=np.arange(a, b, dtype=np.int64),
                             wm_end=before[b] if b < n else w))
    return [*batches, Batch.empty(POS_INF)]


def step_for(case: dict) -> WindowStep:
    win = case["window"]
    return WindowStep(
        name="flink_case", key_fields=[case["key_field"]], kind=win["kind"],
        size_ms=win.get("size_ms"), slide_ms=win.get("slide_ms"), gap_ms=win.get("gap_ms"),
        offset_ms=win.get("offset_ms", 0), allowed_lateness_ms=case["allowed_lateness_ms"],
        aggregations=AGGS)


def runs_by_end(rows: list[dict]) -> list[tuple[int, Counter]]:
    """Consecutive firings with the same window_end, each run as a multiset."""
    return [(end, Counter(json.dumps(r, sort_keys=True) for r in group))
            for end, group in groupby(rows, key=lambda r: r["window_end"])]


@pytest.mark.parametrize("case_dir", CASES, ids=[p.name for p in CASES])
@pytest.mark.parametrize("cutting", ["whole", "per_record", "odd"])
def test_flink_case(case_dir: Path, cutting: str) -> None:
    case = json.loads((case_dir / "case.json").read_text())
    records = read_jsonl(case_dir / "input.jsonl")
    n = len(records)
    cuts = {"whole": [], "per_record": list(range(1, n)), "odd": [1, 2, 2, 7, n // 2, n - 1]}
    op = build_window_operator(step_for(case), "flink_cases")
    outs = [op.process(b) for b in case_batches(records, case["max_out_of_orderness_ms"],
                                                  sorted(cuts[cutting]))]
    main = concat([o[MAIN] for o in outs])
    got = main.data.drop("supersedes", strict=False).to_dicts()
    expected = read_jsonl(case_dir / "expected_main.jsonl")
    assert runs_by_end(got) == runs_by_end(expected)

    late = [o["late_window"] for o in outs if "late_window" in o]
    got_late = [r["id"] for b in late for r in b.data.to_dicts()]
    assert got_late == [r["id"] for r in read_jsonl(case_dir / "expected_late.jsonl")]
    for b in late:
        assert {"watermark_ms", "lateness_ms", "original_timestamp", "pipeline",
                "operator"} <= set(b.data.columns)
        assert (b.data["lateness_ms"] == b.data["watermark_ms"] - b.data["ts"]).all()


def test_cases_are_found() -> None:
    """Without this, a missing folder would parametrize ``test_flink_case`` with nothing:
    zero tests, a silent pass."""
    assert CASES_DIR.is_dir(), f"{CASES_DIR} is missing: the Flink cases are test data"
    assert {p.name for p in CASES} >= REQUIRED
    for case in CASES:
        assert all((case / f).is_file() for f in FILES), f"{case.name}: incomplete case"
        assert read_jsonl(case / "expected_main.jsonl"), f"{case.name}: no expected firing"
