"""``surestream simulate --kafka``: the simulated market published to the ``raw.*`` topics.

Without ``--rate``: the whole simulated set (``--events`` lines, as ``simulate`` would
write them) is published and the command exits once every record is acknowledged, with
``truth.json`` in ``--out``. With ``--rate N``: a live market at N events/s whose event
time follows the wall clock (the session opens ``late_behind_ms`` before now, the events
are ``1000 / N`` ms apart), until Ctrl-C or SIGTERM -- then it flushes, prints what was
sent and exits 0 -- or until the simulated 6.5-hour session is over.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from surestream.apps.trading.kafka_topics import STREAM_TOPICS, create_topics
from surestream.apps.trading.publish import MarketPublisher, Sent
from surestream.apps.trading.sessions import SESSION_MS
from surestream.apps.trading.simulator import MarketSimulation
from surestream.apps.trading.truth import MarketTruth
from surestream.connectors.kafka.broker import BrokerError, resolve_bootstrap

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def live_simulation(rate: float, seed: int, knobs: dict[str, Any],
                    now_ms: int | None = None) -> MarketSimulation:
    """A one-session market paced at ``rate`` events/s whose event time keeps up with the
    wall clock: the first event is stamped now, the session holds as many events as fit."""
    spacing = 1000.0 / rate
    lead = max(knobs.get("late_behind_ms", (120_000, 600_000))[1],
               knobs.get("out_of_order_ms", 2_000))
    events = max(1, math.floor((SESSION_MS - lead) / spacing) - 1)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return MarketSimulation(events=events, seed=seed, event_spacing_ms=spacing,
                            base_ts_ms=now - lead, events_per_s=rate, **knobs)


def run_simulate_kafka(args: argparse.Namespace, knobs: dict[str, Any]) -> int:
    try:
        bootstrap = resolve_bootstrap(args.bootstrap, "--bootstrap")
    except BrokerError as e:
        print(f"simulate: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.rate is not None and args.rate <= 0:
        print(f"simulate: --rate must be > 0, got {args.rate:g}", file=sys.stderr)
        return EXIT_USAGE
    try:
        sim = (live_simulation(args.rate, args.seed, knobs) if args.rate else
               MarketSimulation(events=args.events, seed=args.seed, days=args.days, **knobs))
    except ValueError as e:
        print(f"simulate: {e}", file=sys.stderr)
        return EXIT_USAGE
    partitions = create_topics(bootstrap, list(STREAM_TOPICS.values()), args.topic_prefix,
                               existing_ok=True)
    shown = ", ".join(f"{t} ({n} partitions)" for t, n in partitions.items())
    if args.rate:
        print(f"publishing live at {args.rate:,.0f} events/s to {shown} on {bootstrap} "
              "(Ctrl-C or SIGTERM stops) ...", flush=True)
    else:
        print(f"publishing {args.events:,} events (seed {args.seed}) to {shown} on "
              f"{bootstrap} ...", flush=True)
    started = time.perf_counter()
    truth = MarketTruth()
    publisher = MarketPublisher(bootstrap, partitions, args.topic_prefix)
    stopped = _publish(publisher, sim, truth)
    sent = publisher.flush()
    elapsed = time.perf_counter() - started
    how = "stopped" if stopped else "done"
    print(f"{how}: {sent.total:,} records in {elapsed:.1f} s "
          f"({sent.total / max(elapsed, 1e-9):,.0f} records/s)")
    print("\n".join(sent.lines()))
    if not args.rate and not sent.failures:
        _write_truth(Path(args.out), truth)
    return _outcome(sent)


def _publish(publisher: MarketPublisher, sim: MarketSimulation, truth: MarketTruth) -> bool:
    """Send until the simulation ends (False) or a signal stops it (True)."""
    stop = False

    def on_term(*_: Any) -> None:
        nonlocal stop
        stop = True

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        for stream, line in sim.streams(truth):
            publisher.send(stream, line)
            if stop:
                return True
        return False
    except KeyboardInterrupt:
        return True
    finally:
        signal.signal(signal.SIGTERM, previous)


def _write_truth(out: Path, truth: MarketTruth) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "truth.json").write_bytes(
        orjson.dumps(truth.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    print()
    print("\n".join(truth.table()))
    print(f"\ntruth.json in {out} (streams published to the topics "
          f"{', '.join(STREAM_TOPICS.values())})")


def _outcome(sent: Sent) -> int:
    if sent.failures:
        print(f"simulate: {sent.failures:,} records were not delivered: "
              + "; ".join(sent.failed), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
