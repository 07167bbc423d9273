"""``surestream simulate payments --kafka``: the simulated payment events published to a
Kafka topic instead of ``payments.jsonl`` (``apps/payments/kafka_publish.py``).

    surestream simulate payments --kafka --events 100000            # all at once, then exit
    surestream simulate payments --kafka --tps 10000 --hours 0.1    # live: 10,000/s for 6 min

Without ``--tps`` the whole stream is sent as fast as the broker takes it. With ``--tps
N`` the stream holds N transactions a second of event time and is paced at N events/s of
wall time (a live feed), until it ends or Ctrl-C / SIGTERM stops it. The truth goes to
``--out`` either way (the events are the same bytes the files variant writes).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_kafka_options(p: argparse.ArgumentParser) -> None:
    """The Kafka options of ``surestream simulate payments``."""
    p.add_argument("--kafka", action="store_true",
                   help="publish the events to a Kafka topic instead of payments.jsonl; "
                        "with --tps paced at that many events/s (default: files)")
    p.add_argument("--bootstrap", default=None, metavar="B",
                   help="--kafka: the cluster, host:port[,...] (default: "
                        "$KAFKA_BOOTSTRAP_SERVERS, else $SURESTREAM_BOOTSTRAP, else the "
                        "running `surestream broker`)")
    p.add_argument("--topic", default=None, metavar="T",
                   help="--kafka: the topic, created when missing (default: "
                        "$KAFKA_TOPIC_PAYMENTS, else payments)")
    p.add_argument("--partitions", type=int, default=1,
                   help="--kafka: partitions of a topic created here (default: 1)")
    p.add_argument("--key", choices=["transaction_id", "sender_account"],
                   default="transaction_id",
                   help="--kafka: the message key (default: transaction_id)")


def run_payments_kafka(args: argparse.Namespace, sim: Any) -> int:
    """Publish ``sim``'s stream (paced at ``args.tps`` when given); write its truth."""
    import os

    from surestream.apps.payments.kafka_publish import PaymentPublisher, ensure_topic
    from surestream.apps.payments.kafka_source import (
        BOOTSTRAP_ENV,
        DEFAULT_TOPIC,
        TOPIC_ENV,
    )
    from surestream.connectors.kafka.broker import BrokerError, resolve_bootstrap

    try:
        bootstrap = resolve_bootstrap(args.bootstrap or os.environ.get(BOOTSTRAP_ENV),
                                      "--bootstrap")
    except BrokerError as e:
        print(f"simulate payments: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.partitions < 1:
        print("simulate payments: --partitions must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    topic = args.topic or os.environ.get(TOPIC_ENV) or DEFAULT_TOPIC
    partitions = ensure_topic(bootstrap, topic, args.partitions)
    cols, truth = sim.generate()
    how = f"live at {args.tps:,.0f} events/s" if args.tps else "at once"
    print(f"publishing {truth.events:,} payment events (seed {args.seed}) {how} to {topic} "
          f"({partitions} partitions) on {bootstrap}, keyed by {args.key} ...", flush=True)
    stopped = False

    def stop_now(*_: Any) -> None:
        nonlocal stopped
        stopped = True

    previous = signal.signal(signal.SIGTERM, stop_now)
    publisher = PaymentPublisher(bootstrap, topic, args.key)
    try:
        sent = publisher.publish(sim.iter_lines(cols), args.tps, lambda: stopped)
    except KeyboardInterrupt:
        stopped = True
        sent = publisher.flush()
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"{'stopped' if stopped else 'done'}: {sent.sent:,} sent, {sent.acked:,} "
          f"acknowledged in {sent.seconds:.1f} s "
          f"({sent.sent / max(sent.seconds, 1e-9):,.0f} events/s)")
    if not sent.ok:
        print(f"simulate payments: {sent.failures:,} records were not delivered: "
              + "; ".join(sent.failed), file=sys.stderr)
        return EXIT_FAILED
    if not stopped:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        truth.write(Path(args.out), transaction_id=sim.transaction_ids)
        print()
        print("\n".join(truth.table()))
        print(f"\ntruth.json in {args.out} (events published to {topic})")
    return EXIT_OK
