"""What the table sink benchmarks share (``sink_delta.py``, ``sink_clickhouse.py``).

Two workloads, each run in this process with a checkpoint every second:

- **windows**: the trades-1m pipeline (watermark, dedup, 1-minute VWAP windows per symbol)
  over 1M trades, its windows written to the table;
- **raw**: the 1M trades themselves (parsed, nothing else) written to the table;
- **raw/50k**: the same with a checkpoint every 50,000 records instead, taken at batch
  ends (16 commits): the whole run takes about as long as two 1 s checkpoints, so this
  shows the commit latency over many commits into a growing table.

Figures: rows committed to the table, rows/s over the run's wall time (the whole pipeline:
parse, operators, sink), and per checkpoint with rows the sink's ``pre_commit`` (staging)
and ``commit`` (making the rows visible) times: p50 / p99 / max. The load average is
printed first: other work on the machine changes every figure.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from trades_1m import REPO, SPEC, ensure_data, shared_bench  # noqa: E402

from surestream.model.loader import load_spec  # noqa: E402
from surestream.runners.local.runner import LocalRunner  # noqa: E402

RAW_SPEC = """
pipeline: raw-trades-to-table
source: {type: file, path: unset, format: jsonl}
steps: []
outputs:
  main: {type: memory}
  errors: {type: file, path: unset}
checkpoint: {interval_ms: 1000}
runtime: {batch_size: 65536}
"""


def timed(cls: type, name: str, into: list[tuple[int, float]]) -> Callable[[], None]:
    """Wrap ``cls.name`` to record (rows, seconds) of each call with rows; returns undo."""
    original = getattr(cls, name)

    def wrapper(self: Any, arg: Any, *rest: Any) -> Any:
        rows = (sum(f.height for f in self._frames) if name == "pre_commit"
                else int(arg.get("rows", 0)) if isinstance(arg, dict) else 0)
        start = time.perf_counter()
        result = original(self, arg, *rest)
        if rows:
            into.append((rows, time.perf_counter() - start))
        return result

    setattr(cls, name, wrapper)
    return lambda: setattr(cls, name, original)


def percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    ms = np.array(values) * 1000
    return (f"{np.percentile(ms, 50):.0f} / {np.percentile(ms, 99):.0f} / "
            f"{ms.max():.0f} ms")


def run_case(name: str, spec_path: Path, sets: list[str], sink_cls: type) -> dict[str, Any]:
    stage: list[tuple[int, float]] = []
    commit: list[tuple[int, float]] = []
    undo = [timed(sink_cls, "pre_commit", stage), timed(sink_cls, "commit", commit)]
    try:
        spec = load_spec(spec_path, sets)
        start = time.perf_counter()
        result = LocalRunner(spec).run()
        wall = time.perf_counter() - start
    finally:
        for u in undo:
            u()
    rows = result.written["main"]
    figures = {"case": name, "records_in": result.records_in, "rows": rows, "wall_s": wall,
               "rows_per_s": rows / wall, "checkpoints": len(commit),
               "stage": percentiles([s for _, s in stage]),
               "commit": percentiles([s for _, s in commit]),
               "commit_rows_per_s": (sum(r for r, _ in commit) / sum(s for _, s in commit)
                                     if commit else 0.0)}
    print(f"{name:8s} {figures['records_in']:>9,} in  {rows:>9,} rows  {wall:6.1f} s  "
          f"{figures['rows_per_s']:>10,.0f} rows/s  checkpoints with rows "
          f"{figures['checkpoints']:>3}  pre_commit p50/p99/max {figures['stage']}  "
          f"commit p50/p99/max {figures['commit']}  "
          f"(commit alone {figures['commit_rows_per_s']:,.0f} rows/s)", flush=True)
    return figures


def run_benchmark(label: str, sink_cls: type, main_entry: Callable[[str, Path], str],
                  events: int, data_dir: Path, work: Path) -> list[dict[str, Any]]:
    """Both workloads; ``main_entry(case, folder)`` is the sink's outputs.main YAML."""
    print(f"{label}: load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"{os.cpu_count()} cores", flush=True)
    data = ensure_data(shared_bench(), events, data_dir)
    results = []
    out = work / "windows"
    results.append(run_case("windows", SPEC, [
        f"source.path={data['path']}", f"outputs.main={main_entry('windows', out)}",
        f"outputs.late_window.path={out / 'late.jsonl'}",
        f"outputs.errors.path={out / 'errors.jsonl'}",
        f"checkpoint.dir={out / 'chk'}", "checkpoint.interval_ms=1000"], sink_cls))
    out = work / "raw"
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "raw.yaml"
    raw.write_text(RAW_SPEC)
    results.append(run_case("raw", raw, [
        f"source.path={data['path']}", f"outputs.main={main_entry('raw', out)}",
        f"outputs.errors.path={out / 'errors.jsonl'}", f"checkpoint.dir={out / 'chk'}"],
        sink_cls))
    out = work / "raw50k"
    out.mkdir(parents=True, exist_ok=True)
    results.append(run_case("raw/50k", raw, [
        f"source.path={data['path']}", f"outputs.main={main_entry('raw', out)}",
        f"outputs.errors.path={out / 'errors.jsonl'}", f"checkpoint.dir={out / 'chk'}",
        "checkpoint.interval_ms=null", "checkpoint.interval_records=50000"], sink_cls))
    print(f"{label}: load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
          flush=True)
    return results


DEFAULT_DATA = REPO / "bench-data"
