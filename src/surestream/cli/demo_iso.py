"""``surestream demo iso``: a simulated day of five ISOs' real-time LMP through the
``hardened_iso_streaming`` template into embedded tables, reconciled exactly with the truth.

    surestream demo iso                        # a day, embedded Iceberg (+ ClickHouse if installed)
    surestream demo iso --hours 2 --seed 3     # smaller
    surestream demo iso --clickhouse 127.0.0.1:9000

Exit 0 only when every check reconciles; 1 when one does not; 2 on bad options.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "iso", help="ISO real-time LMP feeds through the hardened template, reconciled",
        description="Simulate real-time 5-minute LMP for CAISO, MISO, PJM, ERCOT and NYISO "
                    "(duplicates, late messages, corrections, a silent ISO, malformed lines), "
                    "run the hardened_iso_streaming template into embedded Iceberg tables "
                    "(and ClickHouse), and reconcile every table with the simulator's truth.")
    p.add_argument("--hours", type=int, default=None,
                   help="hours of feed (default: 24, or 24 x --days)")
    p.add_argument("--days", type=int, default=1, help="days of feed (default %(default)s)")
    p.add_argument("--seed", type=int, default=7,
                   help="same seed, same feed (default %(default)s)")
    p.add_argument("--out", default="out/demo-iso", metavar="DIR",
                   help="the demo's folder: feed, tables, checkpoints (default %(default)s)")
    p.add_argument("--clickhouse", default=None, metavar="HOST:PORT",
                   help="a ClickHouse server's native port (default: an embedded "
                        "clickhouse-server when installed, else Iceberg alone)")
    p.set_defaults(func=run_demo_iso)
    return p


def run_demo_iso(args: argparse.Namespace) -> int:
    from surestream.apps.energy.iso_demo import describe, report, run_iso_demo
    from surestream.apps.energy.iso_simulator import IsoSimulation

    hours = args.hours if args.hours is not None else 24 * args.days
    if args.clickhouse is not None and not args.clickhouse.rpartition(":")[2].isdigit():
        print(f"demo iso: --clickhouse wants HOST:PORT, got {args.clickhouse!r}",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        sim = IsoSimulation(hours=hours, seed=args.seed)
    except ValueError as e:
        print(f"demo iso: {e}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    print(f"surestream demo iso: {describe(sim)}")
    started = time.perf_counter()
    outcome = run_iso_demo(out, sim, args.clickhouse)
    print("\n".join(report(outcome, out, args.clickhouse)))
    print(f"\ndemo iso took {time.perf_counter() - started:.1f} s")
    return EXIT_OK if outcome.ok else EXIT_FAILED
