"""``surestream broker``: a Kafka-protocol broker on 127.0.0.1 for local development.

It runs in the foreground until Ctrl-C (or SIGTERM), and while it runs, specs and commands
that give no ``bootstrap`` use it (``connectors/kafka/broker.resolve_bootstrap``)."""

from __future__ import annotations

import argparse
import signal
import time
from typing import Any

from surestream.connectors.kafka.broker import (
    BrokerError,
    EmbeddedBroker,
    note_running,
    running_broker_file,
)


def add_broker_parser(sub: Any) -> None:
    p = sub.add_parser("broker", help="a Kafka-protocol broker on 127.0.0.1, in the foreground",
                       description="Run the embedded Kafka-protocol broker (tansu) on "
                                   "127.0.0.1 until Ctrl-C. While it runs, specs without "
                                   "`bootstrap` connect to it. Its records live in memory "
                                   "unless --storage says otherwise.")
    p.add_argument("--port", type=int, default=9092, metavar="N",
                   help="the port (default %(default)s; 0: a free one)")
    p.add_argument("--storage", default="memory", metavar="URL",
                   help="tansu's storage engine: memory (records gone when it stops) or "
                        "s3://tansu/ with AWS_ENDPOINT set (default: %(default)s)")
    p.set_defaults(func=_cmd_broker)


def _cmd_broker(args: argparse.Namespace) -> int:
    storage = "memory://tansu/" if args.storage == "memory" else args.storage
    broker = EmbeddedBroker(args.port or None, storage=storage)
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    try:
        broker.start()
    except BrokerError as e:
        print(f"surestream broker: {e}")
        return 1
    note = note_running(broker)
    print(f"Kafka-protocol broker listening on {broker.bootstrap} (Ctrl-C stops it)",
          flush=True)
    try:
        while not stopping and broker.running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
        if running_broker_file() == note:
            note.unlink(missing_ok=True)
    print("broker stopped")
    return 0
