"""``surestream simulate ticks``: a vendor-tick feed with its exact truth.

    surestream simulate ticks --minutes 60 --seed 7 --out data/ticks
    surestream simulate ticks --kafka --topic vendor.ticks      # to a one-partition topic

Writes ``ticks.jsonl`` (or publishes its lines) and ``truth.json`` into ``--out``, and
prints the truth: what ``vendor_ticks`` must produce from the feed.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: option -> (TickSimulation field, type, help)
KNOBS: dict[str, tuple[str, type, str]] = {
    "--minutes": ("minutes", int, "minutes of feed"),
    "--seed": ("seed", int, "same seed, same bytes"),
    "--vendors": ("vendors", int, "market-data vendors (at most 6)"),
    "--symbols": ("symbols", int, "symbols each vendor quotes (at most 8)"),
    "--ticks-per-s": ("ticks_per_s", float, "ticks per second per vendor"),
    "--duplicate-rate": ("duplicate_rate", float, "share of ticks re-sent within a minute"),
    "--late-rate": ("late_rate", float, "share of ticks published 45-180 s late"),
    "--malformed-rate": ("malformed_rate", float,
                         "share of extra lines cut short or without a readable event_time"),
    "--idle-vendors": ("idle_vendors", int, "vendors that go silent for a while"),
    "--idle-minutes": ("idle_minutes", int, "how long an idle vendor stays silent"),
    "--start": ("start", str, "the feed's first event time (ISO-8601 UTC)"),
}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``ticks`` on ``surestream simulate``'s SYSTEM sub-commands."""
    from surestream.apps.energy.ticks_settings import TickSettings

    defaults = TickSettings()
    p = subparsers.add_parser(
        "ticks", help="high-frequency price ticks from several market-data vendors",
        description="Write a vendor-tick feed (ticks.jsonl, in publication order) with "
                    "injected duplicates, late ticks, idle vendors and malformed lines, and "
                    "truth.json: exactly what vendor_ticks must produce from it.")
    for option, (name, kind, text) in KNOBS.items():
        p.add_argument(option, dest=name, type=kind, default=getattr(defaults, name),
                       help=f"{text} (default: %(default)s)")
    p.add_argument("--out", default="data/ticks", help="folder (default: %(default)s)")
    p.add_argument("--kafka", action="store_true",
                   help="publish the lines to --topic instead of writing ticks.jsonl "
                        "(default: files)")
    p.add_argument("--bootstrap", default=None, metavar="B",
                   help="--kafka: the cluster, host:port[,...] (default: $SURESTREAM_BOOTSTRAP, "
                        "else the running `surestream broker`)")
    p.add_argument("--topic", default="vendor.ticks",
                   help="--kafka: the topic, created with one partition if missing "
                        "(default: %(default)s)")
    p.set_defaults(func=run_simulate_ticks)
    return p


def run_simulate_ticks(args: argparse.Namespace) -> int:
    from pathlib import Path

    from surestream.apps.energy.ticks_simulator import (
        DATA_FILE,
        TRUTH_FILE,
        TickSimulation,
        write_feed,
    )

    try:
        sim = TickSimulation(**{name: getattr(args, name) for name, _, _ in KNOBS.values()})
        started = time.perf_counter()
        lines, truth = sim.generate()
    except ValueError as e:
        print(f"simulate ticks: {e}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    if args.kafka:
        from surestream.apps.energy.ticks_publish import PublishError, ensure_topic, publish_lines
        from surestream.connectors.kafka.broker import BrokerError, resolve_bootstrap

        try:
            bootstrap = resolve_bootstrap(args.bootstrap, "--bootstrap")
            partitions = ensure_topic(bootstrap, args.topic)
        except BrokerError as e:
            print(f"simulate ticks: {e}", file=sys.stderr)
            return EXIT_USAGE
        if partitions != 1:
            print(f"simulate ticks: topic {args.topic} has {partitions} partitions; the "
                  "truth holds for one (give a new --topic)", file=sys.stderr)
            return EXIT_USAGE
        try:
            sent = publish_lines(bootstrap, args.topic, lines)
        except PublishError as e:
            print(f"simulate ticks: {e}", file=sys.stderr)
            return EXIT_FAILED
        where = f"{sent:,} lines to topic {args.topic} on {bootstrap}"
        write_feed(out, None, truth)
    else:
        write_feed(out, lines, truth)
        where = f"{len(lines):,} lines to {out / DATA_FILE}"
    print(f"simulated {args.minutes} min of {args.vendors} vendors x {args.symbols} symbols "
          f"(seed {args.seed}): {where} in {time.perf_counter() - started:.2f} s\n")
    print("\n".join(truth.table()))
    print(f"\ntruth: {out / TRUTH_FILE}")
    return EXIT_OK
