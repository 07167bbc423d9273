"""``surestream demo medallion``: raw platform events through bronze, silver and gold
(Iceberg), each hop killed mid-commit and resumed, reconciled with the simulator's truth
(apps/medallion/demo.py). Exit 0 only when every check PASSes."""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``medallion`` under ``surestream demo``."""
    p = subparsers.add_parser(
        "medallion", help="raw events -> bronze -> silver -> gold in Iceberg, exactly once, "
                          "reconciled",
        description="Simulate the event platform's raw events (user actions, transactions, "
                    "metrics) with re-sends and schema-invalid events; land them in bronze "
                    "(every line as received), validate, clean and deduplicate them into "
                    "silver (invalid ones to a DLQ table and dlq-events), aggregate gold "
                    "(5-minute count/sum/avg per event type and source); kill hops with "
                    "SIGKILL mid-commit and resume them; reconcile every layer with the "
                    "truth. Exit 0 only when every check PASSes.")
    p.add_argument("--out", default="out/demo-medallion", metavar="DIR",
                   help="the demo's folder, deleted first (default out/demo-medallion)")
    p.add_argument("--events", type=int, default=6_000,
                   help="unique raw events simulated (default 6000)")
    p.add_argument("--minutes", type=int, default=60,
                   help="span of event time in minutes (default 60)")
    p.add_argument("--seed", type=int, default=7, help="same seed, same events (default 7)")
    p.add_argument("--invalid-rate", type=float, default=0.03,
                   help="share of events made schema-invalid (default 0.03)")
    p.add_argument("--duplicate-rate", type=float, default=0.03,
                   help="re-sent copies per valid event (default 0.03)")
    p.add_argument("--kafka", action="store_true",
                   help="publish the feeds to Kafka topics (an embedded broker unless "
                        "--bootstrap) and read bronze from them; dlq-events is a topic "
                        "(default: landing files, dlq-events.jsonl)")
    p.add_argument("--bootstrap", default=None,
                   help="with --kafka: a cluster's host:port instead of the embedded broker; "
                        "it must not hold the topics raw-events, raw-transactions, "
                        "raw-metrics, dlq-events yet: the demo reconciles all they hold "
                        "(default: embedded)")
    p.add_argument("--checkpoints", type=int, default=8,
                   help="checkpoints over each hop's input (default 8)")
    p.add_argument("--kill-at", default="bronze,silver", metavar="HOPS",
                   help="hops whose first run is killed with SIGKILL mid-commit, as "
                        "hop[:checkpoint],... or none (default bronze,silver, each half-way)")
    p.set_defaults(func=run_demo_medallion)
    return p


def run_demo_medallion(args: argparse.Namespace) -> int:
    from surestream.apps.medallion.demo import DemoSettings, parse_kill_at, run_demo

    try:
        kill_at = parse_kill_at(args.kill_at)
        settings = DemoSettings(
            out=args.out, events=args.events, minutes=args.minutes, seed=args.seed,
            invalid_rate=args.invalid_rate, duplicate_rate=args.duplicate_rate,
            kafka=args.kafka, bootstrap=args.bootstrap, checkpoints=args.checkpoints,
            kill_at=kill_at)
        if args.checkpoints < 1:
            raise ValueError(f"--checkpoints must be at least 1, got {args.checkpoints}")
        from surestream.apps.medallion.simulator import MedallionSimulation

        MedallionSimulation(seed=args.seed, events=args.events, minutes=args.minutes,
                            invalid_rate=args.invalid_rate, duplicate_rate=args.duplicate_rate)
    except ValueError as e:
        print(f"demo medallion: {e}", file=sys.stderr)
        return EXIT_USAGE
    print("surestream demo medallion: raw events -> bronze -> silver -> gold (Iceberg)")
    return EXIT_OK if run_demo(settings).ok else EXIT_FAILED
