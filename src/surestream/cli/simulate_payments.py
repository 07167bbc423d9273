"""``surestream simulate payments``: payment events with retries, late events and fraud
bursts, and the truth a correct processor must reproduce (apps/payments/simulator.py).

    surestream simulate payments --days 2 --events 20000 --out data/payments
    surestream simulate payments --tps 50 --hours 1 --seed 3 --duplicate-rate 0.05
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from surestream.cli.simulate_payments_kafka import add_kafka_options, run_payments_kafka

EXIT_OK, EXIT_USAGE = 0, 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``payments`` under ``surestream simulate``."""
    p = subparsers.add_parser(
        "payments", help="payment events with network retries, late events and fraud "
                         "bursts, and their truth",
        description="Write payments.jsonl (payment events in delivery order) with injected "
                    "network-retry duplicates, events more than 1 h late, velocity-fraud "
                    "bursts and large amounts, and the truth (truth.json, "
                    "truth_transactions.parquet). Same seed, same bytes.")
    p.add_argument("--days", type=int, default=1, help="UTC days of event time (default 1)")
    p.add_argument("--hours", type=float, default=None,
                   help="span of event time in hours instead of whole days "
                        "(default: --days x 24)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--events", type=int, default=20_000,
                      help="unique transactions over the span (default 20000)")
    size.add_argument("--tps", type=float, default=None,
                      help="unique transactions per second of event time instead of "
                           "--events (default: --events)")
    p.add_argument("--seed", type=int, default=7, help="same seed, same bytes (default 7)")
    p.add_argument("--out", default="out/payments", help="folder (default out/payments)")
    p.add_argument("--duplicate-rate", type=float, default=0.02,
                   help="network-retry events per unique transaction (default 0.02)")
    p.add_argument("--late-rate", type=float, default=0.001,
                   help="share of transactions delivered more than 1 h late (default 0.001)")
    p.add_argument("--large-rate", type=float, default=0.005,
                   help="share of payments above 5,000 (default 0.005)")
    p.add_argument("--fraud-accounts", type=int, default=3,
                   help="accounts with a velocity burst per day (default 3)")
    p.add_argument("--burst-size", type=int, default=8,
                   help="payments in each burst (default 8)")
    p.add_argument("--velocity-threshold", type=int, default=5,
                   help="more than this many payments of one account in 10 minutes is "
                        "velocity fraud (default 5)")
    p.add_argument("--start", default="2026-03-02",
                   help="the first UTC day of event time (default 2026-03-02)")
    add_kafka_options(p)
    p.set_defaults(func=run_simulate_payments)
    return p


def run_simulate_payments(args: argparse.Namespace) -> int:
    """Write the stream and its truth; print the truth. Exit 0, or 2 on bad settings."""
    from surestream.apps.payments.simulator import DATA_FILE, PaymentSimulation

    try:
        sim = PaymentSimulation(
            seed=args.seed, days=args.days, hours=args.hours, events=args.events,
            tps=args.tps, duplicate_rate=args.duplicate_rate, late_rate=args.late_rate,
            large_rate=args.large_rate, fraud_accounts=args.fraud_accounts,
            burst_size=args.burst_size, velocity_threshold=args.velocity_threshold,
            start=args.start)
    except ValueError as e:
        print(f"simulate payments: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.kafka:
        return run_payments_kafka(args, sim)
    print(f"simulating {sim.unique_transactions:,} payments (seed {args.seed}) "
          f"into {args.out} ...")
    started = time.perf_counter()
    truth = sim.write(args.out)
    elapsed = time.perf_counter() - started
    print(f"done in {elapsed:.2f} s: {truth.events:,} events ({truth.unique:,} unique, "
          f"{truth.duplicates:,} duplicates, {truth.late:,} late)\n")
    print("\n".join(truth.table()))
    print(f"\nfiles: {DATA_FILE}, truth.json, truth_transactions.parquet")
    return EXIT_OK
