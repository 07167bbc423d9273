"""The trading plan's Kafka topics, how the demo's records are placed in them, and a small
function that creates them.

The topics are the shipped topic map's, ``src/surestream/data/topics/trading.yaml`` (the
one `surestream topics apply trading` applies): its names (the plan's: ``raw.trades``,
``raw.market-data``, ``raw.orderbook``, ``processed.trades.*``, ``enriched.trades``,
``analytics.*``, ``alerts.price-movement``, ``quarantine.*``, ``dlq.*``), partition counts
and settings (retention, cleanup policy, ...). That file is the one truth; this module adds
only what a topic map does not hold -- what each topic's messages are keyed by -- and
creates the topics with replication 1 (``TopicConfig.with_replication``: the embedded broker
has one node, and the demo's topics are its own scratch topics on any cluster).

Placement is explicit, not left to a client's partitioner: a record keyed by ``symbol``
goes to ``murmur2(symbol) % partitions`` -- the partition Kafka's Java clients (and
librdkafka's ``murmur2`` partitioner) choose for that key -- so every client agrees, a
symbol's events stay in one partition in the order they were sent, and the demo can compute
each partition's content (and so the watermark the jobs see) without asking the broker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from surestream.apps.trading.injection import STREAMS
from surestream.model.topics import TopicConfig, load_topics, shipped_topics_file


@dataclass(frozen=True)
class PlannedTopic:
    name: str
    partitions: int
    key: str  # what the messages are keyed by (documentation and read-back checks)


#: what each topic's messages are keyed by (a topic map holds no keys); "" : no key
TOPIC_KEYS: dict[str, str] = {
    "raw.trades": "symbol", "raw.market-data": "symbol", "raw.orderbook": "symbol",
    "processed.trades.new": "order_id", "processed.trades.filled": "order_id",
    "processed.trades.cancelled": "order_id", "processed.trades.rejected": "order_id",
    "enriched.trades": "order_id", "analytics.trade-aggregates": "symbol",
    "analytics.orderbook-metrics": "symbol", "alerts.price-movement": "symbol",
    "dlq.trades.unroutable": "trade_id",
}


def trading_topic_map() -> dict[str, TopicConfig]:
    """The shipped trading topic map (``topics apply trading``), topic name -> config."""
    return {c.name: c for c in load_topics(shipped_topics_file("trading"))}


#: name -> planned topic: every topic of the shipped map, with its partitions from there
PLANNED_TOPICS: dict[str, PlannedTopic] = {
    name: PlannedTopic(name, config.partitions, TOPIC_KEYS.get(name, ""))
    for name, config in trading_topic_map().items()}

#: the simulator's stream (file) name -> the plan's topic
STREAM_TOPICS: dict[str, str] = dict(zip(
    STREAMS, ("raw.trades", "raw.market-data", "raw.orderbook"), strict=True))


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (``org.apache.kafka.common.utils.Utils.murmur2``), as a
    signed 32-bit value."""
    m, r, mask = 0x5BD1E995, 24, 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    end = length - length % 4
    for i in range(0, end, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    tail = length % 4
    if tail == 3:
        h ^= data[end + 2] << 16
    if tail >= 2:
        h ^= data[end + 1] << 8
    if tail >= 1:
        h ^= data[end]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a keyed record:
    ``toPositive(murmur2(key)) % partitions``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def create_topics(bootstrap: str, names: list[str], prefix: str = "", *,
                  existing_ok: bool = False, timeout_s: float = 30.0) -> dict[str, int]:
    """Create ``prefix + name`` for each planned topic in ``names`` as the shipped map
    says (partitions and settings; replication 1: the embedded broker has one node, see
    the module docstring); returns topic -> its
    partitions on the cluster. A topic that exists already is kept as it is with
    ``existing_ok`` (``simulate --kafka`` appends to it), else refused: the demo reconciles
    exact counts, so it needs topics of its own."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic_map = trading_topic_map()
    configs = {prefix + n: topic_map[n].with_replication(1).renamed(prefix) for n in names}
    wanted = {t: c.partitions for t, c in configs.items()}
    existing = admin.list_topics(timeout=timeout_s).topics
    clash = sorted(set(wanted) & set(existing))
    if clash and not existing_ok:
        raise TopicsExist(clash, bootstrap)
    new = {t: n for t, n in wanted.items() if t not in existing}
    if new:
        futures = admin.create_topics([NewTopic(t, n, 1, config=configs[t].kafka_configs())
                                       for t, n in new.items()],
                                      request_timeout=timeout_s)
        for future in futures.values():
            future.result(timeout_s)
    return _wait_visible(admin, list(wanted), new, timeout_s)


def _wait_visible(admin: Any, topics: list[str], created: dict[str, int],
                  timeout_s: float) -> dict[str, int]:
    """topic -> partitions once the metadata shows every topic, those just created with
    all their partitions (creation is asynchronous on some brokers)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = admin.list_topics(timeout=timeout_s).topics
        if all(t in found for t in topics) and all(
                len(found[t].partitions) == n for t, n in created.items()):
            return {t: len(found[t].partitions) for t in topics}
        if time.monotonic() > deadline:
            missing = sorted(t for t in topics if t not in found)
            raise TimeoutError(f"topics not visible after {timeout_s:g} s: {missing}")
        time.sleep(0.1)


class TopicsExist(Exception):
    """The demo's topics are on the cluster already."""

    def __init__(self, topics: list[str], bootstrap: str) -> None:
        self.topics = topics
        super().__init__(
            f"these topics exist on {bootstrap} already: {', '.join(topics)}. The demo "
            "counts every record it reads back, so it needs topics of its own: delete "
            "them, or give --topic-prefix P to use P + the planned names")
