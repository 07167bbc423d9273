"""``surestream demo payments``: simulate, run the processor, SIGKILL it mid-run, resume,
reconcile with the truth (apps/payments/demo.py). Exit 0 only when every day PASSes and
every figure equals the truth."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``payments`` under ``surestream demo``."""
    p = subparsers.add_parser(
        "payments", help="exactly-once payments end to end: simulate, process (killed and "
                         "resumed), reconcile",
        description="Simulate days of payments (network retries, late events, fraud "
                    "bursts), run the payment processor into PostgreSQL or DuckDB, kill it "
                    "with SIGKILL in the middle of the run, resume it, and reconcile every "
                    "table with the simulator's truth. Exit 0 only when every day PASSes "
                    "and every figure is equal.")
    p.add_argument("--days", type=int, default=2, help="UTC days of payments (default 2)")
    p.add_argument("--events", type=int, default=40_000,
                   help="unique transactions over the days (default 40000)")
    p.add_argument("--seed", type=int, default=7, help="same seed, same events (default 7)")
    p.add_argument("--duplicate-rate", type=float, default=0.02,
                   help="network-retry events per transaction (default 0.02)")
    p.add_argument("--out", default="out/demo-payments",
                   help="workspace, deleted first (default out/demo-payments)")
    p.add_argument("--postgres", default=None, metavar="DSN",
                   help="write the tables to this PostgreSQL database (fresh: the demo "
                        "refuses existing tables) (default: DuckDB in --out)")
    p.add_argument("--embedded-postgres", action="store_true",
                   help="start a PostgreSQL 15 server of our own on 127.0.0.1 for the run "
                        "(needs postgresql-15 installed) (default: DuckDB)")
    p.add_argument("--checkpoints", type=int, default=20,
                   help="checkpoints over the run (default 20)")
    p.add_argument("--kill-at", type=int, default=None,
                   help="the checkpoint during whose commit the first run is killed "
                        "(default: half-way)")
    p.set_defaults(func=run_demo_payments)
    return p


def run_demo_payments(args: argparse.Namespace) -> int:
    from surestream.apps.payments.demo import DemoSettings, run_demo

    return run_demo(DemoSettings(
        out=args.out, days=args.days, events=args.events, seed=args.seed,
        duplicate_rate=args.duplicate_rate, postgres=args.postgres,
        embedded_postgres=args.embedded_postgres, checkpoints=args.checkpoints,
        kill_at=args.kill_at))
