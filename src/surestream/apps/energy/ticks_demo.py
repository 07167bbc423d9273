"""``surestream demo ticks``: the vendor-tick system end to end.

1. simulate the feed into ``<out>/data`` (``ticks.jsonl``, ``truth.json``);
2. write the ``vendor_ticks`` template into ``<out>/vendor_ticks.yaml`` (its outputs under
   ``<out>/out``: the Iceberg warehouse, the errors file, the checkpoints);
3. run it;
4. reconcile its tables with the truth, exactly (``ticks_reconcile``), print the report and
   the next commands. Exit 0 only when every check holds.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from surestream.apps.energy.ticks_reconcile import Check, reconcile
from surestream.apps.energy.ticks_simulator import DATA_FILE, TickSimulation
from surestream.apps.energy.ticks_template import vendor_ticks_yaml
from surestream.apps.energy.ticks_truth import TicksTruth
from surestream.model.loader import build_spec, load_spec_dict
from surestream.ops.progress import ProgressDisplay
from surestream.ops.tables import plain_table, render_plain
from surestream.runners.local.runner import LocalRunner, RunResult

SPEC_FILE = "vendor_ticks.yaml"


@dataclass
class DemoOutcome:
    workspace: Path
    truth: TicksTruth
    result: RunResult
    checks: list[Check]
    elapsed_s: float

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def run_ticks_demo(sim: TickSimulation, out: str | Path, *, show_progress: bool = True
                   ) -> DemoOutcome:
    """Simulate, run the template, reconcile (the workspace ``out`` is deleted first)."""
    started = time.perf_counter()
    workspace = Path(out).resolve()
    if workspace.exists():
        shutil.rmtree(workspace)
    print(f"simulating {sim.minutes} min of vendor ticks: {sim.vendors} vendors x "
          f"{sim.symbols} symbols, {sim.ticks_per_s:g} ticks/s per vendor (seed {sim.seed}) "
          "...", flush=True)
    truth = sim.write(workspace / "data")
    spec_file = workspace / SPEC_FILE
    spec_file.write_text(vendor_ticks_yaml(input_path=f"data/{DATA_FILE}", out_dir="out"))
    spec = build_spec(load_spec_dict(str(spec_file)), workspace, str(spec_file))
    print(f"running the vendor_ticks template ({spec_file}) ...", flush=True)
    with ProgressDisplay("vendor-ticks", silent=not show_progress) as display:
        result = LocalRunner(spec, progress=display).run()
        display.done(result.progress())
    checks = reconcile(workspace / "out", truth, result.counters.get("duplicates", 0))
    return DemoOutcome(workspace, truth, result, checks, time.perf_counter() - started)


def report(outcome: DemoOutcome) -> str:
    """The demo's report: the feed, the reconciliation, the verdict, the next commands."""
    t, ws = outcome.truth, outcome.workspace
    feed = "\n".join(["feed (truth.json):", *t.table()])
    table = plain_table("check", "pipeline", "truth", "", right=("pipeline", "truth"))
    for c in outcome.checks:
        found, expected = (_short(c.found), _short(c.expected))
        table.add_row(c.name, found, expected, "ok" if c.ok else "MISMATCH")
    verdict = ("RECONCILED: every tick is curated, quarantined as late, dropped as a "
               "duplicate or in errors, exactly as injected" if outcome.ok else
               f"NOT RECONCILED: {sum(not c.ok for c in outcome.checks)} check(s) differ")
    spec = ws / SPEC_FILE
    query = "python -m surestream.apps.energy.ticks_tables --out " + str(ws / "out")
    nxt = [
        "next:",
        f"  surestream tables scan {spec} --output bars_1m --limit 10",
        f"  surestream tables scan {spec} --output late_vendor_ticks --limit 10",
        f'  {query} "SELECT vendor, COUNT(*) AS ticks, COUNT(DISTINCT (vendor, symbol, '
        'tick_id)) AS distinct_keys FROM vendor_ticks GROUP BY vendor ORDER BY vendor"',
        f'  {query} "SELECT vendor, COUNT(*) AS late, MAX(lateness_ms) AS max_lateness_ms '
        'FROM late_vendor_ticks GROUP BY vendor ORDER BY vendor"',
        f"  surestream verify {spec} --crash-points 3      # SIGKILLs and restarts: takes minutes",
    ]
    r = outcome.result
    run = (f"run: {r.records_in:,} lines in {r.elapsed_s:.1f} s, checkpoints: {r.checkpoints}; "
           f"demo total {outcome.elapsed_s:.1f} s")
    return "\n".join([feed, "", run, "", render_plain(table), "", verdict, "", *nxt])


def _short(value: object) -> str:
    if isinstance(value, list):
        return f"{len(value):,} rows"
    if isinstance(value, int):
        return f"{value:,}"
    text = str(value)
    return text[:12] + "…" if len(text) > 16 else text
