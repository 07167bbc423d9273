"""Publishing the simulated market to the plan's ``raw.*`` topics.

Each line goes to its stream's topic (``kafka_topics.STREAM_TOPICS``) as it is, keyed by
the ``symbol`` it shows, in the partition Kafka's default partitioner gives that key
(``kafka_topics.partition_for``): a symbol's events stay in one partition in the order
they were sent (the producer is idempotent, so a retry never reorders or repeats). A line
cut short before its symbol (a malformed one) has no key; it goes to the partition its
bytes hash to, so the placement is still a function of the data.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from surestream.apps.trading.kafka_topics import STREAM_TOPICS, partition_for

_SYMBOL = re.compile(rb'"symbol":"([^"]*)"')
#: sends between polls of the producer (delivery reports, queue space)
_POLL_EVERY = 2_000


def place(line: bytes, partitions: int, cache: dict[bytes, int] | None = None
          ) -> tuple[bytes | None, int]:
    """``(key, partition)`` of one line: its symbol and the symbol's partition, or no key
    and the partition of the line's own bytes when no symbol can be read."""
    found = _SYMBOL.search(line)
    if found is None:
        return None, partition_for(line, partitions)
    key = found.group(1)
    if cache is None:
        return key, partition_for(key, partitions)
    part = cache.get(key)
    if part is None:
        part = cache[key] = partition_for(key, partitions)
    return key, part


@dataclass
class Sent:
    """What was handed to the broker and acknowledged, per topic and partition."""

    sent: Counter[str] = field(default_factory=Counter)
    acked: Counter[tuple[str, int]] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)  # the first few reasons
    failures: int = 0

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def lines(self) -> list[str]:
        """One line per topic: records sent and acknowledged."""
        acked = Counter[str]()
        for (topic, _), n in self.acked.items():
            acked[topic] += n
        return [f"  {topic:<28}{n:>12,} sent, {acked[topic]:,} acknowledged"
                for topic, n in sorted(self.sent.items())]


class MarketPublisher:
    """An idempotent producer that sends simulator lines to the ``raw.*`` topics.

    ``partitions``: topic -> its partition count (as created or found on the cluster);
    topic names are ``prefix`` + the planned name."""

    def __init__(self, bootstrap: str, partitions: dict[str, int], prefix: str = "",
                 options: dict[str, Any] | None = None) -> None:
        from confluent_kafka import Producer

        self.prefix, self.partitions = prefix, partitions
        self.result = Sent()
        self._cache: dict[str, dict[bytes, int]] = {}
        self._since_poll = 0
        self._producer = Producer({
            "bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
            "linger.ms": 5, "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000, **(options or {})})

    def send(self, stream: str, line: bytes) -> None:
        """Queue one line of simulator stream ``stream`` (``raw.marketdata``, ...)."""
        topic = self.prefix + STREAM_TOPICS[stream]
        key, part = place(line, self.partitions[topic], self._cache.setdefault(topic, {}))
        while True:
            try:
                self._producer.produce(topic, line, key, part, on_delivery=self._delivered)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                self._producer.poll(0.05)
        self.result.sent[topic] += 1
        self._since_poll += 1
        if self._since_poll >= _POLL_EVERY:
            self._producer.poll(0)
            self._since_poll = 0

    def send_all(self, lines: Iterable[tuple[str, bytes]]) -> None:
        for stream, line in lines:
            self.send(stream, line)

    def send_files(self, folder: Path) -> None:
        """Every line of ``<stream>.jsonl`` in ``folder`` (as ``simulate`` writes them), in
        file order."""
        for stream in STREAM_TOPICS:
            with open(folder / f"{stream}.jsonl", "rb") as f:
                for line in f:
                    self.send(stream, line.rstrip(b"\n"))

    def flush(self, timeout_s: float = 60.0) -> Sent:
        """Wait until every queued line is acknowledged (or failed); the tally."""
        left = self._producer.flush(timeout_s)
        if left:
            self.result.failures += left
            self.result.failed.append(f"{left} records not acknowledged in {timeout_s:g} s")
        return self.result

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.result.failures += 1
            if len(self.result.failed) < 10:
                self.result.failed.append(f"{msg.topic()}: {err}")
            return
        self.result.acked[(msg.topic(), msg.partition())] += 1

    def __enter__(self) -> MarketPublisher:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.flush()


def topic_partitions(bootstrap: str, topics: list[str], timeout_s: float = 30.0
                     ) -> dict[str, int]:
    """topic -> partitions, for the topics that exist on the cluster."""
    from confluent_kafka.admin import AdminClient

    found = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=timeout_s).topics
    return {t: len(found[t].partitions) for t in topics if t in found}
