#!/usr/bin/env python3
"""Checkpoint costs: state with 1M dedup keys, recovery to first output, throughput.

1. checkpoint duration and size with 1,000,000 dedup keys (target < 1 s), and the next
   checkpoint when that state has not changed (incremental: nothing rewritten);
2. recovery time to first output (target < 5 s): the trades-1m pipeline is stopped after
   a checkpoint half-way, then a new process resumes; measured from process start to the
   first output committed after the restore (interpreter start-up and imports included);
3. throughput of the trades-1m pipeline with a checkpoint every second vs none
   (target: at most 10 % slower).

    python benchmarks/checkpoints.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from trades_1m import REPO, SPEC, ensure_data, shared_bench  # noqa: E402

from surestream.model.batch import Batch  # noqa: E402
from surestream.model.steps import KeyedDedupStep  # noqa: E402
from surestream.runners.local.checkpoint_store import CheckpointStore  # noqa: E402
from surestream.semantics.dedup import KeepFirstDedup  # noqa: E402

RESUME_DRIVER = r"""
import json, sys, time
t_start = float(sys.argv[1])
from surestream.model.loader import load_spec
from surestream.runners.local.runner import LocalRunner
spec = load_spec(sys.argv[2], sys.argv[3:])
runner = LocalRunner(spec)
runner._start()
t_restored = time.time()
runner.step(False)
runner.checkpoint()
t_first = time.time()
print("RESULT " + json.dumps({"restored_s": t_restored - t_start,
                              "first_output_s": t_first - t_start,
                              "restored_from": runner.restored.id if runner.restored else None}))
"""


def bench_dedup_checkpoint(keys: int, repeat: int) -> dict:
    op = KeepFirstDedup(KeyedDedupStep(key_fields=["trade_id"], time_window_ms=600_000,
                                       state_ttl_ms=3_600_000), "bench")
    ts = np.arange(keys, dtype=np.int64)
    data = pl.DataFrame({"trade_id": [f"T{i:09d}" for i in range(keys)]})
    op.process(Batch(data=data, ts=ts, wm=np.full(keys, -1, dtype=np.int64),
                     seq=ts, wm_end=int(ts[-1])))
    best = None
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as d:
            store = CheckpointStore(Path(d))
            t0 = time.perf_counter()
            meta = store.write(1, {"dedup": op.snapshot()}, positions={}, sinks={},
                               pipeline="bench", operators_info={})
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            meta2 = store.write(2, {"dedup": op.snapshot()}, positions={}, sinks={},
                                pipeline="bench", operators_info={})
            second = time.perf_counter() - t0
            t0 = time.perf_counter()
            fresh = KeepFirstDedup(op.step, "bench")
            fresh.restore(store.latest().state("dedup"))
            restore = time.perf_counter() - t0
        r = {"keys": keys, "checkpoint_s": round(first, 3), "bytes": meta["bytes_total"],
             "unchanged_checkpoint_s": round(second, 3),
             "unchanged_bytes_written": meta2["bytes_written"], "restore_s": round(restore, 3)}
        best = r if best is None or r["checkpoint_s"] < best["checkpoint_s"] else best
    return best


def overrides(data_path: str, out: Path, extra: list[str]) -> list[str]:
    return [f"source.path={data_path}", f"outputs.main.path={out / 'windows.csv'}",
            f"outputs.late_window.path={out / 'late.jsonl'}",
            f"outputs.errors.path={out / 'errors.jsonl'}", f"checkpoint.dir={out / 'cp'}",
            *extra]


def run_driver(code: str, args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          check=True)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


THROUGHPUT_DRIVER = r"""
import json, sys
from surestream.model.loader import load_spec
from surestream.runners.local.runner import LocalRunner
result = LocalRunner(load_spec(sys.argv[1], sys.argv[2:])).run()
print("RESULT " + json.dumps({"s": result.elapsed_s, "checkpoints": result.checkpoints}))
"""


def bench_throughput(data: dict, repeat: int) -> dict:
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as d:
        for label, extra in (("none", []), ("every 1 s", ["checkpoint.interval_ms=1000"]),
                             ("every 200 ms", ["checkpoint.interval_ms=200"]),
                             ("every batch", ["checkpoint.interval_records=65536"])):
            runs = [run_driver(THROUGHPUT_DRIVER, [str(SPEC), *overrides(
                data["path"], Path(d) / label.replace(" ", "_"), extra)]) for _ in range(repeat)]
            best = min(runs, key=lambda r: r["s"])
            out[label] = {"events_per_s": round(data["n_events"] / best["s"]),
                          "checkpoints": best["checkpoints"]}
    for label in ("every 1 s", "every 200 ms", "every batch"):
        out[label]["slowdown_pct"] = round(100 * (1 - out[label]["events_per_s"]
                                                  / out["none"]["events_per_s"]), 1)
    return out


def bench_recovery(data: dict) -> dict:
    with tempfile.TemporaryDirectory() as d:
        args = overrides(data["path"], Path(d), ["runtime.batch_size=65536"])
        # run half-way: stop after the checkpoint that follows ~500K records
        run_driver(r"""
import sys
from surestream.model.loader import load_spec
from surestream.runners.local.runner import LocalRunner
spec = load_spec(sys.argv[1], sys.argv[2:])
r = LocalRunner(spec)
r._start()
while r.records_in < 500_000:
    r.step(False)
r.checkpoint()
print('RESULT {}')
""", [str(SPEC), *args])
        return run_driver(RESUME_DRIVER, [repr(time.time()), str(SPEC), *args])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keys", type=int, default=1_000_000)
    a = ap.parse_args()
    data = ensure_data(shared_bench(), 1_000_000, REPO / "bench-data")
    report = {"dedup_checkpoint": bench_dedup_checkpoint(a.keys, a.repeat),
              "recovery": bench_recovery(data),
              "throughput": bench_throughput(data, a.repeat)}
    c, r, t = report["dedup_checkpoint"], report["recovery"], report["throughput"]
    print(f"checkpoint with {c['keys']:,} dedup keys: {c['checkpoint_s']:.3f} s, "
          f"{c['bytes'] / 1e6:.1f} MB; unchanged state: {c['unchanged_checkpoint_s']:.3f} s, "
          f"{c['unchanged_bytes_written']} bytes written; restore {c['restore_s']:.3f} s")
    print(f"recovery: state restored {r['restored_s']:.2f} s, first output committed "
          f"{r['first_output_s']:.2f} s after process start (from checkpoint "
          f"{r['restored_from']})")
    print(f"throughput: no checkpoints {t['none']['events_per_s']:,} events/s")
    for label in ("every 1 s", "every 200 ms", "every batch"):
        print(f"  checkpoint {label}: {t[label]['events_per_s']:,} events/s "
              f"({t[label]['checkpoints']} checkpoints incl. the final one), "
              f"{t[label]['slowdown_pct']} % slower")
    (REPO / "bench-out").mkdir(exist_ok=True)
    (REPO / "bench-out" / "checkpoints.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
