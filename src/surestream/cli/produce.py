"""``surestream produce FILE --topic T``: send a file's lines to a Kafka topic.

One line, one record (JSON lines; any text when no key is asked for), sent as it is
without its line end; blank lines are not records and are skipped. With ``--key-field F``
each line is parsed as a JSON object and its field ``F`` is the key (a string as it is,
another value as JSON); a line that is not an object with ``F`` fails, naming its line
number, and is not sent. Every record's delivery report is awaited: the command prints how
many lines were acknowledged and each failure, and exits 0 only if every record was.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from surestream.connectors.kafka.broker import BrokerError, resolve_bootstrap
from surestream.connectors.kafka.client_config import PRODUCER_PRESETS, producer_config

if TYPE_CHECKING:  # confluent-kafka is imported when the command runs, not for --help
    from surestream.connectors.kafka.delivery import DeliveringProducer, Delivery

#: lines sent before waiting for their reports (bounds the memory a large file takes)
CHUNK_LINES = 20_000
#: failures printed one by one; the rest are counted
SHOWN_FAILURES = 20


def add_produce_parser(sub: Any) -> None:
    p = sub.add_parser("produce", help="send a file's lines to a Kafka topic",
                       description="Send a file's lines to a Kafka topic, one record per "
                                   "line (blank lines skipped), and wait for every "
                                   "acknowledgement. Prints how many were sent and each "
                                   "failure; exit 0 only if every line was acknowledged, "
                                   "1 otherwise, 2 on a usage error.")
    p.add_argument("file", metavar="FILE", help="the file to send (JSON lines); - for stdin")
    p.add_argument("--topic", required=True, metavar="T", help="the topic to send to")
    p.add_argument("--bootstrap", metavar="B",
                   help="the Kafka cluster, host:port[,...] (default: $SURESTREAM_BOOTSTRAP, "
                        "else the broker `surestream broker` runs)")
    p.add_argument("--key-field", metavar="F",
                   help="parse each line as a JSON object and key its record by field F "
                        "(default: no key)")
    p.add_argument("--preset", default="reliability", choices=sorted(PRODUCER_PRESETS),
                   help="producer settings: reliability (acks=all, idempotent) or "
                        "throughput (acks=1, batched) (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long a record may wait for its acknowledgement "
                        "(default: %(default)s)")
    p.set_defaults(func=_cmd_produce)


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its end) of every non-blank line."""
    for number, raw in enumerate(stream, start=1):
        line = raw.rstrip(b"\r\n")
        if line.strip():
            yield number, line


def key_of(line: bytes, field: str) -> bytes:
    """The key of ``line`` from its JSON field ``field``; ValueError saying why not."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e}); --key-field needs JSON lines") from None
    if not isinstance(record, dict) or record.get(field) is None:
        raise ValueError(f"has no field {field!r} to key the record by")
    value = record[field]
    return value.encode() if isinstance(value, str) else orjson.dumps(value)


def _cmd_produce(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException

    from surestream.connectors.kafka.delivery import DeliveringProducer

    try:
        bootstrap = resolve_bootstrap(args.bootstrap, "--bootstrap")
    except BrokerError as e:
        print(f"produce: {e}", file=sys.stderr)
        return 2
    if args.file != "-" and not Path(args.file).is_file():
        print(f"produce: {args.file}: no such file", file=sys.stderr)
        return 2
    config = producer_config(bootstrap, args.preset,
                             {"delivery.timeout.ms": int(args.timeout * 1000)})
    try:
        producer = DeliveringProducer(config)
    except KafkaException as e:  # settings librdkafka refuses (e.g. a --timeout too short)
        print(f"produce: the producer cannot start: {e.args[0].str()}", file=sys.stderr)
        return 2
    sent, failures = 0, []
    stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    try:
        chunk: list[tuple[int, Delivery]] = []
        for number, line in _lines(stream):
            key = None
            if args.key_field:
                try:
                    key = key_of(line, args.key_field)
                except ValueError as e:
                    failures.append((number, str(e)))
                    continue
            chunk.append((number, producer.send(args.topic, line, key)))
            if len(chunk) >= CHUNK_LINES:
                sent += _settle(producer, chunk, failures)
                chunk = []
        sent += _settle(producer, chunk, failures)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
        producer.close(args.timeout)
    print(f"sent {sent:,} of {sent + len(failures):,} lines to {args.topic} ({bootstrap})")
    for number, reason in sorted(failures)[:SHOWN_FAILURES]:
        print(f"line {number}: {reason}", file=sys.stderr)
    if len(failures) > SHOWN_FAILURES:
        print(f"... and {len(failures) - SHOWN_FAILURES:,} more failed lines", file=sys.stderr)
    if failures:
        print(f"{len(failures):,} lines were not acknowledged", file=sys.stderr)
        return 1
    return 0


def _settle(producer: DeliveringProducer, chunk: list[tuple[int, Delivery]],
            failures: list[tuple[int, str]]) -> int:
    """Wait for the chunk's reports; the number acknowledged (failures noted)."""
    producer.wait([d for _, d in chunk])
    failures += [(number, d.error or "not acknowledged") for number, d in chunk if not d.ok]
    return sum(d.ok for _, d in chunk)
