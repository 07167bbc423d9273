"""``surestream demo``: simulate trades, run the bundled example pipeline, reconcile.

(The trading platform's five-job demo replaces this when that application lands; the
reconciliation below is the same idea: every injected duplicate, late trade and malformed
line must be found, exactly.)
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from importlib import resources
from pathlib import Path

from surestream.apps.trading.simulator import TradeSimulation
from surestream.cli.progress import ProgressLine
from surestream.model.loader import build_spec, load_spec_dict
from surestream.runners.local.runner import LocalRunner


def run_demo(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    (out / "data").mkdir(parents=True)
    started = time.perf_counter()
    print(f"simulating {args.events:,} trade events ...")
    truth = TradeSimulation(events=args.events).write(str(out / "data" / "trades.jsonl"))
    spec_file = resources.files("surestream") / "examples" / "trades_vwap.yaml"
    doc = load_spec_dict(str(spec_file))
    spec = build_spec(doc, out, str(spec_file))
    line = ProgressLine()
    runner = LocalRunner(spec, progress=line)
    result = runner.run()
    line.done(runner._progress(result.elapsed_s))
    windows = [json.loads(x) for x in (out / "out" / "windows.jsonl").read_text().splitlines()]
    c, w = result.counters, result.written
    checks = [
        ("duplicates removed", c.get("duplicates", 0), truth.duplicates),
        ("late trades quarantined", w.get("late", 0), truth.late),
        ("malformed lines in errors", w.get("errors", 0), truth.malformed),
        ("trades in windows", sum(x["trade_count"] for x in windows),
         truth.trades - truth.late),
    ]
    print(f"\nreport  ({time.perf_counter() - started:.1f} s, "
          f"{result.records_in / result.elapsed_s:,.0f} events/s in the pipeline)")
    ok = True
    for label, got, want in checks:
        ok &= got == want
        print(f"  {label:<28} {got:>10,}   injected/expected {want:>10,}   "
              f"{'OK' if got == want else 'MISMATCH'}")
    top = {}
    for x in windows:
        top[x["symbol"]] = top.get(x["symbol"], 0) + x["total_volume"]
    print("  top symbols by volume:     " + ", ".join(
        f"{s} {v:,.0f}" for s, v in sorted(top.items(), key=lambda kv: -kv[1])[:5]))
    print(f"\noutputs in {out / 'out'}: windows.jsonl ({len(windows):,} windows), late.jsonl, "
          "late_window.jsonl, errors.jsonl")
    print("next: surestream validate / run "
          f"{out / 'spec.yaml'} --set runtime.batch_size=1000")
    (out / "spec.yaml").write_text(Path(str(spec_file)).read_text())
    return 0 if ok else 1
