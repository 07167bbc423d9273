"""``surestream simulate medallion``: the event platform's raw events (user actions,
transactions, metrics) with re-sends and schema-invalid events, and their truth
(apps/medallion/simulator.py).

    surestream simulate medallion --events 6000 --out data/medallion
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK, EXIT_USAGE = 0, 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``medallion`` under ``surestream simulate``."""
    p = subparsers.add_parser(
        "medallion", help="raw platform events (three feeds) with re-sends and "
                          "schema-invalid events, and their truth",
        description="Write raw-events.jsonl, raw-transactions.jsonl and raw-metrics.jsonl "
                    "(each feed in delivery order) with byte-for-byte re-sends and "
                    "schema-invalid events (malformed JSON, missing fields, wrong types, "
                    "unknown event types), and truth.json. Same seed, same bytes.")
    p.add_argument("--out", default="out/medallion/data",
                   help="folder (default out/medallion/data)")
    p.add_argument("--events", type=int, default=6_000,
                   help="unique events (default 6000)")
    p.add_argument("--minutes", type=int, default=60,
                   help="span of event time in minutes (default 60)")
    p.add_argument("--start", default="2026-03-02T00:00:00Z",
                   help="the first event time, UTC (default 2026-03-02T00:00:00Z)")
    p.add_argument("--seed", type=int, default=7, help="same seed, same bytes (default 7)")
    p.add_argument("--invalid-rate", type=float, default=0.03,
                   help="share of events made schema-invalid (default 0.03)")
    p.add_argument("--duplicate-rate", type=float, default=0.03,
                   help="re-sent copies per valid event (default 0.03)")
    p.set_defaults(func=run_simulate_medallion)
    return p


def run_simulate_medallion(args: argparse.Namespace) -> int:
    """Write the feeds and the truth; print the truth. Exit 0, or 2 on bad settings."""
    from surestream.apps.medallion.simulator import MedallionSimulation

    try:
        sim = MedallionSimulation(seed=args.seed, events=args.events, minutes=args.minutes,
                                  start=args.start, invalid_rate=args.invalid_rate,
                                  duplicate_rate=args.duplicate_rate)
        truth = sim.write(args.out)
    except ValueError as e:
        print(f"simulate medallion: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {truth.total_received:,} raw events (seed {args.seed}) into {args.out}")
    print("\n".join(truth.lines()))
    return EXIT_OK
