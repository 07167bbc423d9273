"""``surestream demo ticks``: simulate a vendor-tick feed, run the ``vendor_ticks`` template
into embedded Iceberg tables, reconcile exactly with the simulator's truth, report.

    surestream demo ticks                       # an hour of 4 vendors x 5 symbols
    surestream demo ticks --minutes 10 --out out/demo-ticks
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE = 0, 1, 2

#: option -> (TickSimulation field, type, help)
KNOBS: dict[str, tuple[str, type, str]] = {
    "--minutes": ("minutes", int, "minutes of feed"),
    "--seed": ("seed", int, "same seed, same feed"),
    "--vendors": ("vendors", int, "market-data vendors (at most 6)"),
    "--symbols": ("symbols", int, "symbols each vendor quotes (at most 8)"),
    "--ticks-per-s": ("ticks_per_s", float, "ticks per second per vendor"),
    "--idle-minutes": ("idle_minutes", int,
                       "how long one vendor stays silent (at most --minutes / 2)"),
}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``ticks`` on ``surestream demo``'s SYSTEM sub-commands."""
    from surestream.apps.energy.ticks_settings import TickSettings

    defaults = TickSettings()
    p = subparsers.add_parser(
        "ticks", help="vendor price ticks: dedup, late quarantine, bars, reconciled exactly",
        description="Simulate high-frequency ticks from several market-data vendors "
                    "(duplicates, late ticks, an idle vendor, malformed lines), run the "
                    "vendor_ticks template into embedded Iceberg tables, reconcile every "
                    "count with the simulator's truth and print a report. Exit 0 only when "
                    "everything reconciles, 1 otherwise.")
    for option, (name, kind, text) in KNOBS.items():
        p.add_argument(option, dest=name, type=kind, default=getattr(defaults, name),
                       help=f"{text} (default: %(default)s)")
    p.add_argument("--out", default="out/demo-ticks", metavar="DIR",
                   help="workspace, deleted first (default: %(default)s)")
    p.set_defaults(func=run_demo_ticks)
    return p


def run_demo_ticks(args: argparse.Namespace) -> int:
    from surestream.apps.energy.ticks_demo import report, run_ticks_demo
    from surestream.apps.energy.ticks_simulator import TickSimulation

    try:
        sim = TickSimulation(**{name: getattr(args, name) for name, _, _ in KNOBS.values()})
    except ValueError as e:
        print(f"demo ticks: {e}", file=sys.stderr)
        return EXIT_USAGE
    outcome = run_ticks_demo(sim, args.out)
    print()
    print(report(outcome))
    return EXIT_OK if outcome.ok else EXIT_MISMATCH
