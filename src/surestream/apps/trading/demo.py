"""``surestream demo``: the trading platform end to end on embedded defaults.

1. simulate ~1,000,000 market events (trades, ticks, order books) with injected
   duplicates, late events, malformed lines and unknown statuses, and their ground truth;
2. run the five jobs -- router, aggregation, price alerts, order book analytics,
   enrichment -- through the engine with checkpointing, into the Parquet warehouse;
3. reconcile the router's and the enrichment's counters and outputs against the ground
   truth, exactly;
4. report: counts per job and output, top symbols, alerts by severity, where the outputs
   are, and the next commands to try; and ``report.html`` beside it, with charts (the top
   symbols' OHLC and VWAP, the alert timeline) and each job's run report
   (``apps/trading/report.py``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import polars as pl
from rich.table import Table

from surestream.apps.trading.analytics import TradingAnalytics
from surestream.apps.trading.iceberg_warehouse import as_iceberg, read_dataset
from surestream.apps.trading.reference import load_reference
from surestream.apps.trading.report import write_demo_report
from surestream.apps.trading.simulator import MarketSimulation
from surestream.apps.trading.truth import MarketTruth
from surestream.connectors.file_sinks import read_parquet_dataset
from surestream.model.loader import build_spec, load_spec_dict
from surestream.ops.progress import ExtraCounts, ProgressDisplay
from surestream.ops.tables import plain_table, render_plain
from surestream.runners.local.runner import LocalRunner, Progress, RunResult

JOBS = ("router", "aggregation", "alerts", "orderbook", "enrichment")
#: symbols left out of the demo's reference file (unknown to enrichment), and the one of
#: them that the reference-update stream adds back while the job runs
MISSING_SYMBOLS = 3


def job_spec_file(job: str) -> Any:
    return resources.files("surestream") / "examples" / "trading" / f"{job}.yaml"


def prepare_reference(data: Path, seed: int) -> dict[str, Any]:
    """The reference file enrichment loads (a few symbols missing) and the update stream
    that re-adds one and moves another to a new sector while the job runs."""
    ref = load_reference().rename({"exchange": "listed_exchange"}).sort("symbol")
    missing = ref["symbol"].tail(MISSING_SYMBOLS).to_list()
    (data / "reference").mkdir(parents=True, exist_ok=True)
    ref.filter(~pl.col("symbol").is_in(missing)).write_parquet(
        data / "reference" / "symbols.parquet")
    readded = ref.filter(pl.col("symbol") == missing[0]).to_dicts()[0]
    moved = {**ref.row(0, named=True), "sector": "Reclassified"}
    with open(data / "reference_updates.jsonl", "wb") as f:
        for update in (readded, moved):
            f.write(orjson.dumps(update) + b"\n")
    return {"missing": missing, "readded": missing[0], "moved": moved["symbol"]}


@dataclass
class JobRun:
    job: str
    result: RunResult
    #: where the job's checkpoints and run history are (its run report is made from it)
    checkpoint_dir: Path | None = None


#: the jobs' error outputs (``error_kinds``): counted as ``errors``, not again as ``dlq``
ERROR_DLQS = frozenset({"dlq.deserialization", "dlq.processing-errors"})


def job_counts(job: str) -> ExtraCounts:
    """What the demo adds to a job's progress line: the records routed to dead-letter
    outputs (``dlq.*``; the error outputs among them are in ``errors``, on every line), and
    the alerts job's alerts."""

    def counts(p: Progress) -> list[tuple[str, int]]:
        routed = [t for t in p.written if t.startswith("dlq.") and t not in ERROR_DLQS]
        dlq = sum(p.written[t] for t in routed)
        found = [("dlq", dlq)] if routed else []
        if job == "alerts":
            found.append(("alerts", p.written.get("main", 0)))
        return found

    return counts


def run_job(job: str, workspace: Path, warehouse_format: str = "parquet") -> JobRun:
    """Run one job in ``workspace``; ``warehouse_format`` "iceberg": its Parquet datasets
    become Iceberg tables ``trading.<dataset>`` (``iceberg_warehouse.as_iceberg``)."""
    spec_file = job_spec_file(job)
    doc = load_spec_dict(str(spec_file))
    if warehouse_format == "iceberg":
        doc = as_iceberg(doc)
    spec = build_spec(doc, workspace, str(spec_file))
    with ProgressDisplay(job, extra=job_counts(job)) as display:
        result = LocalRunner(spec, progress=display).run()
        display.done(result.progress())
    return JobRun(job, result, spec.checkpoint_dir())


#: the router's routed datasets, each a Parquet folder under warehouse/
ROUTED_DATASETS = ("processed_trades_new", "processed_trades_filled",
                   "processed_trades_cancelled", "processed_trades_rejected",
                   "dlq_trades_unroutable")


def flagged_late(warehouse: Path) -> int:
    """Trades the router routed with ``is_late`` true, counted in its outputs (Parquet
    datasets, or the Iceberg tables of ``--warehouse iceberg``)."""
    total = 0
    for name in ROUTED_DATASETS:
        if (warehouse / name).exists():
            total += int(read_parquet_dataset(warehouse / name)["is_late"].sum())
        else:
            frame = read_dataset(warehouse, name)
            total += int(frame["is_late"].sum()) if frame.height else 0
    return total


def reconcile(router: RunResult, enrichment: RunResult, truth: MarketTruth,
              warehouse: Path) -> list[tuple[str, int, int]]:
    """(check, found by the pipeline, injected/expected) -- each pair must be equal.

    The router routes every trade, late ones included (flagged ``is_late``), so each route
    holds every unique well-formed trade of its statuses (``statuses``, late or not); the
    late ones are found by their flag in the routed outputs."""
    t = truth.streams["raw.trades"]
    w = router.written
    statuses = t.statuses
    filled = statuses.get("FILLED", 0) + statuses.get("PARTIALLY_FILLED", 0)
    return [
        ("duplicates removed", router.counters.get("duplicates", 0), t.duplicates),
        ("late trades routed, flagged is_late", flagged_late(warehouse), t.late),
        ("malformed -> dlq.deserialization", w.get("dlq.deserialization", 0), t.malformed),
        ("unknown status -> dlq.trades.unroutable", w.get("dlq.trades.unroutable", 0),
         t.unknown_status),
        ("processed.trades.new", w.get("processed.trades.new", 0), statuses.get("NEW", 0)),
        ("processed.trades.filled", w.get("processed.trades.filled", 0), filled),
        ("processed.trades.cancelled", w.get("processed.trades.cancelled", 0),
         statuses.get("CANCELLED", 0)),
        ("processed.trades.rejected", w.get("processed.trades.rejected", 0),
         statuses.get("REJECTED", 0)),
        ("enrichment: processed.trades.filled enriched",
         enrichment.written.get("enriched.trades", 0), filled),
    ]


def simulate_workspace(args: argparse.Namespace) -> tuple[Path, MarketTruth, dict[str, Any]]:
    """A fresh workspace (``--out``, deleted first) holding the simulated market in
    ``data/`` and the reference data enrichment loads: the start of both demos."""
    workspace = Path(args.out).resolve()
    if workspace.exists():
        shutil.rmtree(workspace)
    data = workspace / "data"
    print(f"simulating {args.events:,} market events (seed {args.seed}) ...", flush=True)
    truth = MarketSimulation(events=args.events, seed=args.seed,
                             days=getattr(args, "days", 1)).write(data)
    return workspace, truth, prepare_reference(data, args.seed)


def run_demo(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    workspace, truth, ref = simulate_workspace(args)
    print(f"  {truth.streams['raw.trades'].events:,} trades, "
          f"{truth.streams['raw.marketdata'].events:,} ticks, "
          f"{truth.streams['raw.orderbook'].events:,} order books "
          f"in {time.perf_counter() - started:.1f} s\n", flush=True)
    warehouse_format = getattr(args, "warehouse", "parquet")
    runs = {job: run_job(job, workspace, warehouse_format) for job in JOBS}
    warehouse = workspace / "warehouse"
    checks = reconcile(runs["router"].result, runs["enrichment"].result, truth, warehouse)
    elapsed = time.perf_counter() - started
    report = build_report(runs, checks, truth, ref, warehouse, workspace, elapsed)
    if warehouse_format == "iceberg":
        report = report.replace("(Parquet datasets, one folder per stream)",
                                "(Iceberg tables trading.<stream>, catalog "
                                f"{warehouse / 'catalog.db'})")
    print(report)
    (workspace / "report.txt").write_text(report + "\n")
    (workspace / "report.json").write_text(json.dumps({
        "elapsed_s": round(elapsed, 1), "events": args.events,
        "reconciliation": [{"check": c, "found": f, "injected": i} for c, f, i in checks],
        "jobs": {j: r.result.summary() for j, r in runs.items()}}, indent=1, default=str))
    html = write_demo_report(
        workspace / "report.html", warehouse=warehouse, checks=checks,
        job_dirs={j: r.checkpoint_dir for j, r in runs.items() if r.checkpoint_dir},
        summary=f"{truth.events:,} simulated events (seed {args.seed}), five jobs, "
                f"{elapsed:.1f} s; warehouse {warehouse}")
    print(f"\nHTML report (charts, each job's conservation and checkpoints): {html}")
    return 0 if all(found == want for _, found, want in checks) else 1


def build_report(runs: dict[str, JobRun], checks: list[tuple[str, int, int]],
                 truth: MarketTruth, ref: dict[str, Any], warehouse: Path, workspace: Path,
                 elapsed: float) -> str:
    """The report as plain text (printed, and saved as report.txt): rich tables rendered
    without colour, so the file reads the same as the terminal."""
    enrich = runs["enrichment"].result.operator_counters.get("reference_data", {})
    with TradingAnalytics(warehouse) as a:
        top = a.top_symbols(limit=5)
        alerts = a.alerts_by_severity()
    parts = [f"\n== report ({elapsed:.1f} s for {truth.events:,} events) ==", "",
             "jobs and outputs:", _indent(render_plain(jobs_table(runs))), "",
             "reconciliation with the simulator's ground truth (router and enrichment jobs):",
             _indent(render_plain(reconciliation_table(checks))),
             f"  enrichment: {enrich.get('unknown_keys', 0):,} trades with symbols "
             f"missing from the reference ({', '.join(ref['missing'])}; "
             f"{ref['readded']} added back by the update stream while running, until the "
             "next day's refresh from the file)", "",
             "top 5 symbols by traded value:", _indent(render_plain(top_table(top))), "",
             "price alerts by severity:", _indent(render_plain(alerts_table(alerts)))]
    parts += ["", f"outputs: {warehouse} (Parquet datasets, one folder per stream); "
              f"raw inputs and truth.json in {workspace / 'data'}", "", "next:",
              f"  surestream query top-symbols --warehouse {warehouse}",
              f"  surestream query top-traded-symbols --warehouse {warehouse}",
              f"  surestream query portfolio-analysis --account-id AC000000 "
              f"--warehouse {warehouse} --format csv",
              f"  surestream query sector-performance --warehouse {warehouse}",
              f"  surestream query compare-volume-to-historical --symbol "
              f"{top['symbol'][0] if top.height else 'SYM'} --warehouse {warehouse}",
              f"  surestream checkpoints {job_spec_file('router')} "
              f"--set checkpoint.dir={workspace / '.surestream/checkpoints/trading-router'}",
              f"  surestream verify {job_spec_file('router')} "
              f"--set source.path={workspace / 'data' / 'raw.trades.jsonl'} --crash-points 5"]
    return "\n".join(parts)


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())


def jobs_table(runs: dict[str, JobRun]) -> Table:
    """Per job: its events, time and rate, then each output it wrote to and the count."""
    table = plain_table("job / output", "records", "seconds", "per second",
                        right=("records", "seconds", "per second"))
    for job, run in runs.items():
        r = run.result
        table.add_row(job, f"{r.records_in:,}", f"{r.elapsed_s:.1f}",
                      f"{r.records_in / max(r.elapsed_s, 1e-9):,.0f}", style="bold")
        for tag, n in sorted(r.written.items()):
            if n or tag != "main":
                table.add_row(f"  {tag}", f"{n:,}", "", "")
    return table


def reconciliation_table(checks: list[tuple[str, int, int]]) -> Table:
    """One row per check: found by the pipeline, injected/expected, OK or MISMATCH."""
    table = plain_table("check", "found", "", "injected", "",
                        right=("found", "injected"))
    table.show_header = False
    for check, found, want in checks:
        table.add_row(check, f"{found:,}", "injected/expected", f"{want:,}",
                      "OK" if found == want else "MISMATCH")
    return table


def top_table(top: pl.DataFrame) -> Table:
    table = plain_table("symbol", "trades", "shares", "value", "vwap",
                        right=("trades", "shares", "value", "vwap"))
    for row in top.iter_rows(named=True):
        table.add_row(row["symbol"], f"{row['trades']:,}", f"{row['volume']:,.0f}",
                      f"{row['value']:,.2f}", f"{row['vwap']:.2f}")
    return table


def alerts_table(alerts: pl.DataFrame) -> Table:
    table = plain_table("severity", "alerts", "up", "down", right=("alerts", "up", "down"))
    for row in alerts.iter_rows(named=True):
        table.add_row(row["severity"], f"{row['alerts']:,}", f"{row['up']:,}",
                      f"{row['down']:,}")
    return table


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default="out/demo")
    sys.exit(run_demo(ap.parse_args()))
