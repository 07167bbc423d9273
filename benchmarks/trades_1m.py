#!/usr/bin/env python3
"""trades-1m: surestream against the naive-Python baseline of ../shared/bench, same run.

Pipeline (benchmarks/trades_1m.yaml): parse JSON lines, watermark 5 s, dedup by trade_id,
1-minute tumbling windows per symbol (trade_count, total_volume, vwap, high, low), written
to a file; late records to their own file. The baseline is ../shared/bench/run_pyref.py,
used as a tool (run as it is, never copied).

It prints surestream's events/s, the baseline's, their ratio and peak RSS, for one core
(both processes pinned to CPU 0, polars limited to one thread) and for all cores, and checks
that surestream's windows equal the baseline's window by window: counts, high and low
exactly, total_volume and vwap within 1e-9 relative.

    python benchmarks/trades_1m.py [--events 1000000] [--repeat 2] [--cores one|all|both]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SPEC = HERE / "trades_1m.yaml"

DRIVER = r"""
import json, os, resource, sys
if os.environ.get("BENCH_ONE_CORE") == "1":
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from surestream.model.loader import load_spec
from surestream.runners.local.runner import LocalRunner
spec = load_spec(sys.argv[1], sys.argv[2:])
result = LocalRunner(spec).run()
print("RESULT " + json.dumps({
    "processing_s": result.elapsed_s, "records_in": result.records_in,
    "counters": result.counters, "written": result.written,
    "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def shared_bench() -> Path:
    for candidate in (REPO.parent / "shared" / "bench", REPO / "shared" / "bench"):
        if (candidate / "gen_trades.py").exists():
            return candidate
    sys.exit("../shared/bench not found beside the repository")


def ensure_data(bench: Path, events: int, data_dir: Path) -> dict:
    manifest = data_dir / f"trades-{events}.manifest.json"
    if not manifest.exists():
        subprocess.run([sys.executable, str(bench / "gen_trades.py"), "--n", str(events),
                        "--seed", "42", "--out", str(data_dir), "--parts", "0"], check=True)
    m = json.loads(manifest.read_text())
    m["path"] = str(data_dir / f"trades-{events}.jsonl")
    return m


def child_env(one_core: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("BENCH_ONE_CORE", None)
    if one_core:
        env["BENCH_ONE_CORE"] = "1"
        env["POLARS_MAX_THREADS"] = "1"
    return env


def pinned(cmd: list[str], one_core: bool) -> list[str]:
    cpu = str(min(os.sched_getaffinity(0)))
    return ["taskset", "-c", cpu, *cmd] if one_core else cmd


def result_line(stdout: str) -> dict:
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"no RESULT line in:\n{stdout}")


def run_baseline(bench: Path, data: dict, out: Path, one_core: bool) -> dict:
    """The baseline in a child process; its own peak RSS from wait4 (not the children's max)."""
    with tempfile.TemporaryFile("w+") as stdout:
        proc = subprocess.Popen(pinned([sys.executable, str(bench / "run_pyref.py"), "--input",
                                        data["path"], "--out", str(out)], one_core),
                                cwd=bench, stdout=stdout, env=child_env(one_core))
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"baseline failed with exit code {proc.returncode}")
        stdout.seek(0)
        r = result_line(stdout.read())
    r["max_rss_mb"] = usage.ru_maxrss / 1024
    return r


def run_surestream(data: dict, out_dir: Path, one_core: bool, batch_size: int) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(SPEC), f"source.path={data['path']}",
         f"outputs.main.path={out_dir / 'windows.csv'}",
         f"outputs.late_window.path={out_dir / 'late.jsonl'}",
         f"outputs.errors.path={out_dir / 'errors.jsonl'}",
         f"runtime.batch_size={batch_size}"],
        capture_output=True, text=True, check=True, env=child_env(one_core))
    return result_line(proc.stdout)


def compare_windows(ours: Path, baseline: Path) -> tuple[int, int, list[str]]:
    """Window-by-window equality: (windows compared, surestream's sum(trade_count), diffs)."""
    def load(path: Path) -> dict[tuple[str, int], dict[str, str]]:
        with open(path) as f:
            return {(r["symbol"], int(r["window_start"])): r for r in csv.DictReader(f)}

    a, b = load(ours), load(baseline)
    diffs = []
    if a.keys() != b.keys():
        diffs.append(f"window sets differ: {len(a.keys() - b.keys())} only in surestream, "
                     f"{len(b.keys() - a.keys())} only in the baseline")
    for key in sorted(a.keys() & b.keys()):
        x, y = a[key], b[key]
        if int(x["trade_count"]) != int(y["trade_count"]):
            diffs.append(f"{key}: trade_count {x['trade_count']} != {y['trade_count']}")
        for col in ("high", "low"):
            if float(x[col]) != float(y[col]):
                diffs.append(f"{key}: {col} {x[col]} != {y[col]}")
        for col in ("total_volume", "vwap"):
            fx, fy = float(x[col]), float(y[col])
            if abs(fx - fy) > 1e-9 * max(abs(fx), abs(fy)):
                diffs.append(f"{key}: {col} {fx!r} vs {fy!r}")
    return len(a.keys() & b.keys()), sum(int(r["trade_count"]) for r in a.values()), diffs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2, help="runs of each; the best is kept")
    ap.add_argument("--cores", choices=["one", "all", "both"], default="both")
    ap.add_argument("--batch-size", type=int, default=65536)
    ap.add_argument("--data", default=str(REPO / "bench-data"))
    ap.add_argument("--out", default=str(REPO / "bench-out"))
    a = ap.parse_args()
    bench = shared_bench()
    data = ensure_data(bench, a.events, Path(a.data))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    modes = {"one": [True], "all": [False], "both": [True, False]}[a.cores]
    report: dict[str, dict] = {}
    ok = True
    for one_core in modes:
        label = "one core" if one_core else f"{len(os.sched_getaffinity(0))} cores"
        base = min((run_baseline(bench, data, out / "pyref.csv", one_core)
                    for _ in range(a.repeat)), key=lambda r: r["processing_s"])
        ours = min((run_surestream(data, out / "surestream", one_core, a.batch_size)
                    for _ in range(a.repeat)), key=lambda r: r["processing_s"])
        compared, total, diffs = compare_windows(out / "surestream" / "windows.csv",
                                                 out / "pyref.csv")
        ok &= not diffs
        eps_ours = a.events / ours["processing_s"]
        eps_base = a.events / base["processing_s"]
        report[label] = {
            "surestream_events_per_s": round(eps_ours), "baseline_events_per_s": round(eps_base),
            "ratio": round(eps_ours / eps_base, 2),
            "surestream_peak_rss_mb": round(ours["max_rss_mb"]),
            "baseline_peak_rss_mb": round(base["max_rss_mb"]),
            "windows": compared, "sum_trade_count": total,
            "late": ours["written"].get("late_window"),
            "duplicates": ours["counters"].get("duplicates"),
            "windows_equal": not diffs,
        }
        print(f"[{label}] surestream {eps_ours:,.0f} events/s | baseline {eps_base:,.0f} "
              f"events/s | ratio {eps_ours / eps_base:.2f} | peak RSS {ours['max_rss_mb']:.0f} MB "
              f"(baseline {base['max_rss_mb']:.0f} MB) | windows compared {compared}, "
              f"{'all equal' if not diffs else f'{len(diffs)} DIFFERENCES'}")
        for d in diffs[:10]:
            print("   ", d)
    with open(out / "trades_1m.json", "w") as f:
        json.dump({"events": a.events, "batch_size": a.batch_size, "results": report}, f,
                  indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
