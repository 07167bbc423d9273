"""`surestream simulate --kafka`: every simulated line lands in its raw.* topic, keyed by
its symbol, a symbol's events in one partition in the order of the simulator's file;
`--rate` publishes live until SIGTERM, then exits 0 having flushed what it counted."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from surestream.apps.trading.simulator import MarketSimulation

TOPICS = {"raw.trades": "raw.trades", "raw.marketdata": "raw.market-data",
          "raw.orderbook": "raw.orderbook"}


def read_all(bootstrap: str, topic: str, expected: int | None = None,
             ) -> list[tuple[int, int, bytes | None, bytes]]:
    """(partition, offset, key, value) of every record, by partition then offset.

    Read until every partition reported its end and then either ``expected`` records (the
    count the caller knows: everything was produced before) or nothing more for a second;
    more than expected stops at once (the caller's count check fails on it)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "t", "enable.auto.commit": False,
                  "enable.partition.eof": True, "fetch.wait.max.ms": 10})
    parts = sorted(c.list_topics(topic, timeout=30).topics[topic].partitions)
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out, ended, quiet_since = [], set(), time.monotonic()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        msgs = c.consume(10_000, 0.2)
        for m in msgs:
            if m.error():
                assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                ended.add(m.partition())
            else:
                out.append((m.partition(), m.offset(), m.key(), m.value()))
                quiet_since = time.monotonic()
        if len(ended) == len(parts) and (
                (expected is not None and len(out) >= expected)
                or time.monotonic() - quiet_since > 1.0):
            break
    c.close()
    return sorted(out)


def cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "surestream", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ), **kw)


def test_simulate_kafka_publishes_every_line_keyed_by_symbol_in_file_order(
        kafka_bootstrap, kafka_topic, tmp_path: Path) -> None:
    prefix = kafka_topic("sim") + "."
    proc = cli("simulate", "--kafka", "--bootstrap", kafka_bootstrap, "--topic-prefix", prefix,
               "--events", "6000", "--seed", "3", "--malformed-rate", "0.01",
               "--out", str(tmp_path / "truth"))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    # the same settings written as files: the lines the topics must hold
    MarketSimulation(events=6000, seed=3, malformed_rate=0.01).write(tmp_path / "files")
    truth = json.loads((tmp_path / "truth" / "truth.json").read_text())
    assert truth["events"] == 6000
    symbol = re.compile(rb'"symbol":"([^"]*)"')
    for stream, topic in TOPICS.items():
        lines = (tmp_path / "files" / f"{stream}.jsonl").read_bytes().splitlines()
        records = read_all(kafka_bootstrap, prefix + topic, expected=len(lines))
        assert len(records) == len(lines) == truth["streams"][stream]["events"]
        assert sorted(v for *_, v in records) == sorted(lines)  # content, duplicates included
        partitions = len({p for p, *_ in records})
        assert topic != "raw.trades" or partitions == 8  # the plan's 8 partitions, all used
        by_partition = defaultdict(list)
        key_partitions = defaultdict(set)
        for part, _, key, value in records:
            by_partition[part].append(value)
            found = symbol.search(value)
            if found:  # keyed by the symbol the line shows (a line cut before it: no key)
                assert key == found.group(1)
                key_partitions[key].add(part)
            else:
                assert key is None
        assert all(len(p) == 1 for p in key_partitions.values())  # a symbol: one partition
        # each partition holds its lines in the order of the simulator's file
        position = {}
        for i, line in enumerate(lines):
            position.setdefault(line, []).append(i)
        for values in by_partition.values():
            order = [position[v].pop(0) for v in values]
            assert order == sorted(order)


def test_symbol_partitions_are_the_ones_kafka_clients_choose(kafka_bootstrap,
                                                             kafka_topic) -> None:
    """Our placement (murmur2, as the Java client) is what librdkafka's murmur2
    partitioner picks for the same key: other producers keyed by symbol agree."""
    from surestream.apps.trading.kafka_topics import partition_for
    from surestream.apps.trading.reference import load_reference

    topic = kafka_topic("placement")
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 8, 1)])[topic].result(30)
    symbols = load_reference()["symbol"].to_list()[:200]
    chosen = {}
    p = Producer({"bootstrap.servers": kafka_bootstrap, "partitioner": "murmur2"})

    def report(err, msg):
        assert err is None
        chosen[msg.key().decode()] = msg.partition()

    for s in symbols:
        p.produce(topic, b"x", s.encode(), on_delivery=report)
    assert p.flush(30) == 0
    assert chosen == {s: partition_for(s.encode(), 8) for s in symbols}
    assert len(set(chosen.values())) == 8


def test_simulate_kafka_rate_runs_live_until_sigterm_then_flushes_and_exits_0(
        kafka_bootstrap, kafka_topic) -> None:
    prefix = kafka_topic("live") + "."
    proc = cli("simulate", "--kafka", "--bootstrap", kafka_bootstrap, "--topic-prefix", prefix,
               "--rate", "2000")
    try:
        first = proc.stdout.readline()
        assert "publishing live at 2,000 events/s" in first
        deadline = time.monotonic() + 60  # wait until records are flowing, then stop it
        c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "live",
                      "enable.auto.commit": False, "fetch.wait.max.ms": 10})
        c.assign([TopicPartition(prefix + "raw.trades", p, 0) for p in range(8)])
        seen = 0
        while seen < 500 and time.monotonic() < deadline:
            seen += sum(1 for m in c.consume(1000, 0.2) if not m.error())
        c.close()
        assert seen >= 500
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.startswith("stopped: ")
    sent = {m.group(1): int(m.group(2).replace(",", ""))
            for m in re.finditer(r"^\s+(\S+)\s+([\d,]+) sent", out, flags=re.MULTILINE)}
    assert set(sent) == {prefix + t for t in TOPICS.values()}
    for topic, n in sent.items():  # everything counted was flushed to the broker
        assert n > 0 and len(read_all(kafka_bootstrap, topic, expected=n)) == n
