"""One Kafka consumer per source: fetches every assigned topic-partition into buffers.

The source's partition readers (``kafka/source.py``) take messages from these buffers;
the feed itself decides nothing about which records make a micro-batch. It assigns
partitions itself (``assign()``, never ``subscribe()``: no group rebalance, no half a
session timeout to join on tansu), never commits on its own (``enable.auto.commit=false``:
offsets live in surestream's checkpoints, and are committed to the group only after a
checkpoint, for lag tools), and reads ``read_committed``.

End offsets are found by reading, not from the reported high watermark: tansu reports the
last *batch's* base offset + 1, which can be short of the true end. The feed reads from
``high watermark - 1`` to the partition's end (librdkafka's end-of-partition event carries
the true next offset, past any transaction markers).

Connection trouble (a broker restart) is librdkafka's to handle: it reconnects, and the
feed keeps waiting; only a fatal error stops the run.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from surestream.connectors.kafka.client_config import client_logger

log = logging.getLogger(__name__)

TP = tuple[str, int]  # (topic, partition)

#: how many messages one consume() call may return
CONSUME_BATCH = 10_000
#: a partition with this many messages buffered is paused until it is down to half: the
#: buffers stay bounded when one partition waits for its turn, or the run falls behind
MAX_BUFFERED = 50_000
#: librdkafka's fetching, sized for throughput: larger fetches per partition and a deeper
#: prefetch queue (measured on the embedded broker, 1M trades over 4 partitions: a bare
#: consumer reads them in 3.8 s instead of 6.4 s with librdkafka's defaults). A partition
#: whose prefetch queue is full waits ``fetch.queue.backoff.ms`` before its next fetch:
#: librdkafka's 1,000 ms default stalled a consumer that had caught up with its queue for
#: up to a second (a bare read of the same 1M: 0.8-3.0 s, in steps of 1 s; with 20 ms:
#: 1.0-1.1 s every time)
FETCH_DEFAULTS: dict[str, Any] = {"max.partition.fetch.bytes": 8 << 20,
                                  "fetch.max.bytes": 64 << 20,
                                  "queued.min.messages": 200_000,
                                  "fetch.queue.backoff.ms": 20}
#: how long start-up queries (metadata, watermarks, end offsets) may take before failing
QUERY_TIMEOUT_S = 30.0


def _offset(msg: Any) -> int:
    return msg.offset()


class FeedError(Exception):
    """A topic is missing, or the broker answered with a fatal error."""


def consumer_config(bootstrap: str, group_id: str, options: dict[str, Any]) -> dict[str, Any]:
    """The consumer settings every Kafka source uses; ``options`` (librdkafka names) last,
    so a user can change any of them."""
    return {"bootstrap.servers": bootstrap, "group.id": group_id,
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "isolation.level": "read_committed", "enable.partition.eof": True,
            "auto.offset.reset": "earliest", "fetch.wait.max.ms": 10,
            "logger": client_logger(),
            **FETCH_DEFAULTS, **{k: v for k, v in options.items()}}


class KafkaFeed:
    """The consumer of one source, with a buffer of fetched messages per topic-partition."""

    def __init__(self, source: str, topics: list[str], config: dict[str, Any]) -> None:
        self.source = source
        self.topics = list(topics)
        #: the consumer group (offsets are committed to it after checkpoints, for lag tools)
        self.group: str | None = config.get("group.id")
        self.consumer = Consumer(config)
        #: fetched messages of each partition, as runs (lists) in offset order
        self.buffers: dict[TP, deque[list[Any]]] = {}
        #: how many messages each partition's buffer holds
        self.counts: dict[TP, int] = {}
        #: where fetching (re)starts for each assigned partition
        self.fetch_from: dict[TP, int] = {}
        #: the next offset of each partition librdkafka last reported reaching the end at
        self.eof: dict[TP, int] = {}
        self._reassign = False
        self.closed = False
        self._warned: list[str] = []
        self._paused: set[TP] = set()
        #: the last end offset ``known_end`` found per partition (kept past ``close``)
        self._known_ends: dict[TP, int] = {}

    # -- metadata --------------------------------------------------------------------------
    def topic_partitions(self, timeout_s: float = QUERY_TIMEOUT_S,
                         wait_for_all: bool = True) -> list[TP]:
        """Every partition of the source's topics: topics in spec order, partitions in
        number order. A missing topic is an error naming it -- unless ``wait_for_all`` is
        off (a live source: a topic created later is picked up then, as new partitions)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                md = self.consumer.list_topics(timeout=max(1.0, deadline - time.monotonic()))
            except KafkaException as e:
                if time.monotonic() >= deadline:
                    raise FeedError(f"cannot read the topics' metadata: {e}") from e
                continue
            found: list[TP] = []
            missing = []
            for topic in self.topics:
                t = md.topics.get(topic)
                if t is None or t.error is not None or not t.partitions:
                    missing.append(topic)
                    continue
                found.extend((topic, p) for p in sorted(t.partitions))
            if not missing:
                return found
            if not wait_for_all and len(missing) < len(self.topics):
                if missing != self._warned:
                    log.warning("source %r: topic(s) %s do not exist yet; their partitions "
                                "are read once they are created", self.source,
                                ", ".join(missing))
                    self._warned = missing
                return found
            if time.monotonic() >= deadline:
                raise FeedError(f"topic(s) {', '.join(map(repr, missing))} do not exist; "
                                "create them first (`surestream topics apply`)")
            time.sleep(0.2)

    def watermarks(self, tp: TP) -> tuple[int, int]:
        lo, hi = self.consumer.get_watermark_offsets(TopicPartition(*tp),
                                                      timeout=QUERY_TIMEOUT_S)
        return int(lo), int(hi)

    def end_offsets(self, tps: Iterable[TP]) -> dict[TP, int]:
        """The true next offset at the end of each partition, now: read from the reported
        high watermark - 1 to the end-of-partition event (see the module docstring)."""
        ends: dict[TP, int] = {}
        scan: dict[TP, int] = {}
        for tp in tps:
            lo, hi = self.watermarks(tp)
            if hi <= lo:
                ends[tp] = lo
            else:
                scan[tp] = max(lo, hi - 1)
        if scan:
            self._scan(scan, lambda tp, msg: False, ends)
        return ends

    def first_at_or_after(self, start: dict[TP, int], ends: dict[TP, int],
                          timestamp_ms: int) -> dict[TP, int]:
        """For each partition, the offset of the first message (from ``start``, before
        ``ends``) whose timestamp is at or after ``timestamp_ms``; its end if none."""
        found: dict[TP, int] = {}
        todo = {tp: off for tp, off in start.items() if off < ends[tp]}
        for tp in start:
            if tp not in todo:
                found[tp] = ends[tp]
        if todo:
            def hit(tp: TP, msg: Any) -> bool:
                return msg.offset() >= ends[tp] or msg.timestamp()[1] >= timestamp_ms
            self._scan(todo, hit, found, ends)
        return found

    def time_hint(self, tps: Iterable[TP], timestamp_ms: int) -> dict[TP, int]:
        """The broker's answer to "first offset at or after this time" (a lower bound to
        scan from: tansu answers with an earlier offset than the true one)."""
        asked = [TopicPartition(t, p, timestamp_ms) for t, p in tps]
        out: dict[TP, int] = {}
        for tp in self.consumer.offsets_for_times(asked, timeout=QUERY_TIMEOUT_S):
            out[(tp.topic, tp.partition)] = tp.offset
        return out

    def _scan(self, start: dict[TP, int], stop: Any, found: dict[TP, int],
              ends: dict[TP, int] | None = None) -> None:
        """Read each partition from ``start`` until ``stop(tp, msg)`` (found: that message's
        offset) or its end (found: the end event's offset, or ``ends``)."""
        left = dict(start)
        self.consumer.assign([TopicPartition(t, p, off) for (t, p), off in left.items()])
        deadline = time.monotonic() + QUERY_TIMEOUT_S
        while left:
            if time.monotonic() > deadline:
                raise FeedError("reading the end of partitions "
                                f"{sorted(left)} took more than {QUERY_TIMEOUT_S:g} s")
            # a short wait: consume() returns only when its batch is full or the wait
            # ends, and a scan needs a few messages (0.2 s here cost every start 0.2 s)
            for msg in self.consumer.consume(CONSUME_BATCH, 0.01):
                tp = (msg.topic(), msg.partition())
                if tp not in left:
                    continue
                err = msg.error()
                if err is None:
                    if stop(tp, msg):
                        found[tp] = msg.offset()
                        del left[tp]
                elif err.code() == KafkaError._PARTITION_EOF:
                    found[tp] = msg.offset() if ends is None else ends[tp]
                    del left[tp]
                else:
                    self._check(err)
        self.consumer.unassign()
        self._reassign = True

    # -- fetching ----------------------------------------------------------------------------
    def place(self, tp: TP, offset: int) -> None:
        """Fetch ``tp`` from ``offset`` on (a start, a seek, a new partition)."""
        self.fetch_from[tp] = int(offset)
        self.buffers[tp] = deque()
        self.counts[tp] = 0
        self.eof.pop(tp, None)
        self._reassign = True

    def poll(self, timeout_s: float) -> int:
        """Fetch what arrives within ``timeout_s`` into the buffers; the count.

        A consume() batch holds runs of consecutive messages of one partition, in offset
        order; each run goes to its buffer as one list (a slice of the batch), so the work
        per message is a few C calls in list comprehensions, not a Python loop body."""
        if self._reassign:
            self._assign()
        msgs = self.consumer.consume(CONSUME_BATCH, timeout_s)
        if not msgs:
            self._flow()
            return 0
        errors = [m.error() for m in msgs]
        if any(errors):
            msgs = self._events(msgs, errors)
            if not msgs:
                self._flow()
                return 0
        parts = [m.partition() for m in msgs]
        if len(self.topics) > 1:
            topics = [m.topic() for m in msgs]
            keys = list(zip(topics, parts, strict=True))
            cuts = [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]]
        else:
            topic = self.topics[0]
            diff = np.flatnonzero(np.diff(np.asarray(parts, dtype=np.int64)))
            cuts = (diff + 1).tolist()
            keys = None
        got = 0
        start = 0
        for end in [*cuts, len(msgs)]:
            tp = keys[start] if keys is not None else (topic, parts[start])
            got += self._add_run(tp, msgs[start:end])
            start = end
        self._flow()
        return got

    def _add_run(self, tp: TP, run: list[Any]) -> int:
        """Buffer a run of one partition's messages (offsets ascending), leaving out any
        before where fetching was placed (a stale fetch after a seek)."""
        buf = self.buffers.get(tp)
        if buf is None:
            return 0
        fetch_from = self.fetch_from[tp]
        if run[0].offset() < fetch_from:
            run = run[bisect.bisect_left(run, fetch_from, key=_offset):]
            if not run:
                return 0
        buf.append(run)
        self.counts[tp] = self.counts.get(tp, 0) + len(run)
        self.fetch_from[tp] = run[-1].offset() + 1
        return len(run)

    def _events(self, msgs: list[Any], errors: list[Any]) -> list[Any]:
        """Handle a batch's events (end of partition, errors, in order); its messages."""
        for msg, err in zip(msgs, errors, strict=True):
            if err is None:
                continue
            if err.code() == KafkaError._PARTITION_EOF:
                tp = (msg.topic(), msg.partition())
                if tp in self.buffers:
                    self.eof[tp] = msg.offset()
            else:
                self._check(err)
        return [m for m, err in zip(msgs, errors, strict=True) if err is None]

    def _assign(self) -> None:
        """Assign every placed partition, each from the offset after what is buffered."""
        self.consumer.assign([TopicPartition(t, p, off if off >= 0 else OFFSET_BEGINNING)
                              for (t, p), off in self.fetch_from.items()])
        self._reassign = False
        self._paused.clear()
        self._flow()

    def _flow(self) -> None:
        """Pause partitions whose buffer is full, resume those drained to half."""
        counts = self.counts
        full = [tp for tp in self.buffers
                if counts.get(tp, 0) >= MAX_BUFFERED and tp not in self._paused]
        drained = [tp for tp in self._paused if counts.get(tp, 0) <= MAX_BUFFERED // 2]
        if full:
            self.consumer.pause([TopicPartition(*tp) for tp in full])
            self._paused.update(full)
        if drained:
            self.consumer.resume([TopicPartition(*tp) for tp in drained])
            self._paused.difference_update(drained)

    def _check(self, err: KafkaError) -> None:
        """A fatal error stops the run; anything else (the broker away for a while, a
        timeout) is librdkafka's to recover from: we go on waiting."""
        if err.fatal():
            raise FeedError(f"source {self.source!r}: {err.str()}")
        log.info("source %r: %s (waiting for the broker)", self.source, err.str())

    def buffered(self, tp: TP) -> int:
        return self.counts.get(tp, 0)

    def known_end(self, tp: TP) -> int | None:
        """The partition's end as far as this consumer knows, without a broker round trip
        (for telemetry, up to a few times a second): the high watermark of its last fetch
        response (librdkafka's cached value, ~1 us to read), or the end-of-partition
        event's offset where that is further. None before the first fetch.

        On tansu a fetch response's high watermark can stop at the last *batch's* base
        offset + 1 (the module docstring), so the end read here may fall short of the true
        end by up to a batch until the feed reaches it (then the end-of-partition event
        gives the true end)."""
        if self.closed:
            return self._known_ends.get(tp)
        try:
            _, hi = self.consumer.get_watermark_offsets(TopicPartition(*tp), cached=True)
        except (KafkaException, RuntimeError):
            hi = -1
        end = max(int(hi), self.eof.get(tp, -1), self._known_ends.get(tp, -1))
        if end < 0:
            return None
        self._known_ends[tp] = end
        return end

    def take(self, tp: TP, n: int, before: int | None = None) -> list[Any]:
        """Up to ``n`` buffered messages of ``tp`` (only offsets below ``before``)."""
        buf = self.buffers[tp]
        out: list[Any] = []
        while buf and len(out) < n:
            run = buf[0]
            want = n - len(out)
            part = run[:want]
            if before is not None and part[-1].offset() >= before:
                part = part[:bisect.bisect_left(part, before, key=_offset)]
                if not part:
                    break
            out += part
            if len(part) == len(run):
                buf.popleft()
            else:
                buf[0] = run[len(part):]
                if len(part) < want:  # stopped at ``before``
                    break
        self.counts[tp] = self.counts.get(tp, 0) - len(out)
        return out

    def give_back(self, tp: TP, msgs: list[Any]) -> None:
        """Messages taken but not used (a schema cut): first in line again."""
        if msgs:
            self.buffers[tp].appendleft(list(msgs))
            self.counts[tp] = self.counts.get(tp, 0) + len(msgs)

    # -- after a checkpoint ------------------------------------------------------------------
    def commit(self, positions: dict[TP, int]) -> None:
        """Commit the checkpoint's positions to the group, for lag tools. Best effort: the
        checkpoint is what a restart reads, so a failure here is only logged."""
        if not positions:
            return
        try:
            self.consumer.commit(offsets=[TopicPartition(t, p, off)
                                          for (t, p), off in positions.items()],
                                 asynchronous=False)
        except KafkaException as e:
            log.warning("source %r: offsets not committed to the group (%s); the "
                        "checkpoint holds them", self.source, e)

    def committed(self, tps: list[TP]) -> dict[TP, int]:
        """The group's committed offsets (-1 where it has none)."""
        got = self.consumer.committed([TopicPartition(*tp) for tp in tps],
                                      timeout=QUERY_TIMEOUT_S)
        return {(tp.topic, tp.partition): tp.offset for tp in got}

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.consumer.close()
