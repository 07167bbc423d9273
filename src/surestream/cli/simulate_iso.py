"""``surestream simulate iso``: real-time 5-minute LMP feeds of five ISOs, with faults and
their exact truth.

    surestream simulate iso --out data/iso                 # a day: lmp.jsonl + truth.json
    surestream simulate iso --days 3 --seed 11 --isos CAISO,PJM
    surestream simulate iso --kafka --topic iso.rt_lmp      # to a topic (truth.json in --out)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: option -> (IsoSimulation field, type, help)
_KNOBS: dict[str, tuple[str, type, str, Any]] = {
    "--duplicate-rate": ("duplicate_rate", float, "share of messages re-sent (same "
                         "message_id)", 0.02),
    "--late-rate": ("late_rate", float, "share of messages published 18-45 min late", 0.01),
    "--correction-rate": ("correction_rate", float, "share of prices corrected later (new "
                          "event_version, price and message_id)", 0.01),
    "--malformed-rate": ("malformed_rate", float, "share of messages followed by a broken "
                         "line (bad JSON, missing fields, non-numeric price)", 0.005),
    "--silence-minutes": ("silence_minutes", int, "how long the silent ISO sends nothing "
                          "(it back-fills afterwards; 0: none)", 40),
}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "iso", help="real-time LMP feeds of CAISO, MISO, PJM, ERCOT, NYISO with a known truth",
        description="Write real-time 5-minute LMP messages for the ISOs' hubs, zones and load "
                    "points in arrival order (lmp.jsonl) with injected re-sends, late "
                    "messages, corrections, a silent ISO and malformed lines, and truth.json: "
                    "exactly what a correct pipeline must produce.")
    p.add_argument("--hours", type=int, default=None,
                   help="hours of feed (default: 24 x --days)")
    p.add_argument("--days", type=int, default=1, help="days of feed (default %(default)s)")
    p.add_argument("--start", default="2026-03-02T00:00:00Z",
                   help="the first interval, UTC, on a 5-minute boundary (default %(default)s)")
    p.add_argument("--seed", type=int, default=7, help="same seed, same bytes "
                   "(default %(default)s)")
    p.add_argument("--out", default="out/iso", help="folder (default %(default)s)")
    p.add_argument("--isos", default="CAISO,MISO,PJM,ERCOT,NYISO",
                   help="comma-separated ISOs (default %(default)s)")
    p.add_argument("--silent-iso", default=None,
                   help="the ISO that goes silent for a while; 'none' for none "
                        "(default: MISO when simulated, else none)")
    for option, (name, kind, text, default) in _KNOBS.items():
        p.add_argument(option, dest=name, type=kind, default=default,
                       help=f"{text} (default %(default)s)")
    p.add_argument("--kafka", action="store_true",
                   help="publish the feed to --topic instead of writing lmp.jsonl "
                        "(default: files)")
    p.add_argument("--bootstrap", default=None, metavar="B",
                   help="--kafka: the cluster, host:port[,...] (default: $SURESTREAM_BOOTSTRAP, "
                        "else the running `surestream broker`)")
    p.add_argument("--topic", default="iso.rt_lmp",
                   help="--kafka: the topic, created with one partition if missing "
                        "(default %(default)s)")
    p.set_defaults(func=run_simulate_iso)
    return p


def run_simulate_iso(args: argparse.Namespace) -> int:
    from surestream.apps.energy.iso_simulator import FEED_FILE, IsoSimulation
    from surestream.apps.energy.iso_truth import build_truth, truth_table, write_truth

    isos = tuple(i.strip().upper() for i in args.isos.split(",") if i.strip())
    if args.silent_iso is None:
        silent = "MISO" if "MISO" in isos else None
    else:
        silent = None if args.silent_iso.lower() == "none" else args.silent_iso.upper()
    try:
        sim = IsoSimulation(
            hours=args.hours if args.hours is not None else 24 * args.days, seed=args.seed,
            start=args.start, isos=isos, silent_iso=silent,
            **{name: getattr(args, name) for name, *_ in _KNOBS.values()})
    except ValueError as e:
        print(f"simulate iso: {e}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    started = time.perf_counter()
    if not args.kafka:
        truth = sim.write(out)
        print(f"simulated {sim.hours} h of {', '.join(sim.isos)} (seed {sim.seed}) in "
              f"{time.perf_counter() - started:.2f} s\n")
        print("\n".join(truth_table(truth)))
        print(f"\nfiles: {out / FEED_FILE}, {out / 'truth.json'}")
        return EXIT_OK
    return _to_kafka(args, sim, out, build_truth, write_truth, truth_table)


def _to_kafka(args: argparse.Namespace, sim: Any, out: Path, build_truth: Any,
              write_truth: Any, truth_table: Any) -> int:
    from surestream.apps.energy.iso_publish import ensure_topic, publish_lines
    from surestream.connectors.kafka.broker import BrokerError, resolve_bootstrap

    try:
        bootstrap = resolve_bootstrap(args.bootstrap, "--bootstrap")
    except BrokerError as e:
        print(f"simulate iso: {e}", file=sys.stderr)
        return EXIT_USAGE
    lines = sim.lines()
    partitions = ensure_topic(bootstrap, args.topic)
    if partitions != 1:
        print(f"simulate iso: note: {args.topic} has {partitions} partitions; truth.json's "
              "late count assumes the feed's order, which one partition keeps",
              file=sys.stderr)
    acked, failures = publish_lines(bootstrap, args.topic, [line.data for line in lines])
    if failures:
        print(f"simulate iso: {len(lines) - acked:,} lines not delivered: "
              + "; ".join(failures), file=sys.stderr)
        return EXIT_FAILED
    out.mkdir(parents=True, exist_ok=True)
    truth = build_truth(sim, lines)
    write_truth(out, truth)
    print(f"published {acked:,} lines to {args.topic} on {bootstrap}\n")
    print("\n".join(truth_table(truth)))
    print(f"\ntruth: {out / 'truth.json'}")
    return EXIT_OK
