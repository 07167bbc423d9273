"""``surestream simulate``: write the trading market's streams and the truth injected.

    surestream simulate --events 1000000 --seed 7 --out data/market
    surestream simulate --events 100000 --events-per-s 2000 --out data/live   # paced
    surestream simulate --events 500000 --days 5 --out data/week   # five trading days
    surestream simulate --kafka --events 100000        # to the raw.* topics, then exit
    surestream simulate --kafka --rate 2000            # live, until Ctrl-C / SIGTERM

Writes ``raw.trades.jsonl``, ``raw.marketdata.jsonl``, ``raw.orderbook.jsonl`` and
``truth.json`` into ``--out`` and prints the truth as a table: the numbers a pipeline run
over these files must reproduce. With ``--kafka`` the lines go to the plan's topics
instead (``raw.trades``, ``raw.market-data``, ``raw.orderbook``, keyed by symbol;
``apps/trading/publish.py``) and only ``truth.json`` is written; with ``--rate N`` as
well, a live market is published at N events/s, event time following the wall clock,
until stopped.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from dataclasses import fields
from typing import Any

from surestream.apps.trading.simulator import MarketSimulation

EXIT_OK, EXIT_USAGE = 0, 2
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(MarketSimulation)}
#: the other seed systems' simulators (``surestream simulate SYSTEM ...``): modules of
#: ``surestream.cli`` whose ``add_parser(subparsers)`` registers one SYSTEM
SYSTEM_MODULES: tuple[str, ...] = ("simulate_iso", "simulate_ticks", "simulate_payments",
                                   "simulate_medallion")
#: option -> (MarketSimulation field, type, help)
_KNOBS: dict[str, tuple[str, type, str]] = {
    "--duplicate-rate": ("duplicate_rate", float, "share of on-time trades re-sent"),
    "--late-rate": ("late_rate", float, "share of events sent 2-10 minutes behind"),
    "--malformed-rate": ("malformed_rate", float, "share of lines cut short (invalid JSON)"),
    "--unknown-status-rate": ("unknown_status_rate", float,
                              "share of trades with a status outside the five known"),
    "--out-of-order-ms": ("out_of_order_ms", int,
                          "how far behind the stream an on-time event may be"),
    "--jump-probability": ("jump_probability", float,
                           "chance that an event carries a price jump of 2-12 %%"),
}


def add_simulate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``simulate`` on the ``surestream`` command's subparsers."""
    p = subparsers.add_parser(
        "simulate", help="write simulated trades, ticks and order books with a known truth",
        description="Write the trading market's streams (trades, ticks, order books) with "
                    "injected duplicates, late events, malformed lines and unknown statuses, "
                    "and truth.json: exactly what was injected.")
    p.add_argument("--events", type=int, default=_DEFAULTS["events"],
                   help="lines over all streams (default %(default)s)")
    p.add_argument("--seed", type=int, default=_DEFAULTS["seed"],
                   help="same seed, same bytes (default %(default)s)")
    p.add_argument("--out", default="out/market", help="folder (default %(default)s)")
    p.add_argument("--days", type=int, default=_DEFAULTS["days"],
                   help="trading days the events are spread over, each inside its 6.5 h "
                        "session, weekends skipped (default %(default)s)")
    for option, (name, kind, text) in _KNOBS.items():
        p.add_argument(option, dest=name, type=kind, default=_DEFAULTS[name],
                       help=f"{text} (default %(default)s)")
    p.add_argument("--events-per-s", type=float, default=None,
                   help="pace the output in real time (default: as fast as possible)")
    p.add_argument("--kafka", action="store_true",
                   help="publish to the raw.* topics instead of writing the files, creating "
                        "missing topics with the planned partitions (default: files)")
    p.add_argument("--bootstrap", default=None, metavar="B",
                   help="--kafka: the cluster, host:port[,...] (default: $SURESTREAM_BOOTSTRAP, "
                        "else the running `surestream broker`)")
    p.add_argument("--topic-prefix", default="", metavar="P",
                   help="--kafka: P + the planned names are the topics "
                        "(default: none, the planned names)")
    p.add_argument("--rate", type=float, default=None, metavar="N",
                   help="--kafka: publish live at N events/s, event time following the wall "
                        "clock, until Ctrl-C or SIGTERM (default: publish --events at once)")
    p.set_defaults(func=run_simulate)
    systems = p.add_subparsers(dest="system", required=False, metavar="SYSTEM",
                               help="another seed system (`surestream simulate SYSTEM --help`)",
                               title="other seed systems (without SYSTEM: the trading "
                                     "market)")
    for module in SYSTEM_MODULES:
        importlib.import_module(f"surestream.cli.{module}").add_parser(systems)
    return p


def run_simulate(args: argparse.Namespace) -> int:
    """Simulate into ``args.out``; print the truth. Exit 0, or 2 on bad settings."""
    knobs = {name: getattr(args, name) for name, _, _ in _KNOBS.values()}
    if getattr(args, "kafka", False):
        from surestream.cli.simulate_kafka import run_simulate_kafka

        return run_simulate_kafka(args, knobs)
    if getattr(args, "rate", None) is not None:
        print("simulate: --rate publishes live to Kafka: give --kafka too (files are paced "
              "with --events-per-s)", file=sys.stderr)
        return EXIT_USAGE
    try:
        sim = MarketSimulation(events=args.events, seed=args.seed, days=args.days,
                               events_per_s=args.events_per_s, **knobs)
    except ValueError as e:
        print(f"simulate: {e}", file=sys.stderr)
        return EXIT_USAGE
    pace = f" at {args.events_per_s:,.0f} events/s" if args.events_per_s else ""
    days = f" over {args.days} trading days" if args.days > 1 else ""
    print(f"simulating {args.events:,} events{days} (seed {args.seed}){pace} "
          f"into {args.out} ...")
    started = time.perf_counter()
    truth = sim.write(args.out)
    elapsed = time.perf_counter() - started
    print(f"done in {elapsed:.2f} s ({truth.events / max(elapsed, 1e-9):,.0f} events/s)\n")
    print("\n".join(truth.table()))
    print(f"\nfiles: {', '.join(f'{s}.jsonl' for s in truth.streams)}, truth.json "
          f"(late = more than {truth.late_threshold_ms // 1000} s behind the stream)")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run ``simulate`` on its own (``python -m surestream.cli.simulate``)."""
    ap = argparse.ArgumentParser(prog="surestream")
    add_simulate_parser(ap.add_subparsers(dest="command", required=True))
    args = ap.parse_args(["simulate", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
