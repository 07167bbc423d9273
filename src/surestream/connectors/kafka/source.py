"""The Kafka source: each topic-partition is an input partition, read by a PartitionReader.

A reader's position is the partition's next offset. ``read(n)`` is the reader protocol's
exact read: ``n`` messages, fewer only at the partition's end (a bounded source: the end
offsets found at start, or the first message at or after ``stop_at.timestamp_ms``), so a
bounded Kafka source interleaves exactly like files and its results never depend on the
batch size. ``read_available(n)`` (live sources) takes only what has been fetched.

Values parse through the files' columnar paths: a block of values joined by newlines goes
to ``parse_json_block`` / ``parse_csv_block``. A value that cannot be a line of that block
(a line break in it, no value at all) or does not parse is an error record naming
topic, partition and offset, and costs only that record. ``format: raw`` gives the bytes in
a ``value`` column. ``metadata`` adds ``kafka_<name>`` columns.

Without a declared ``schema``, a column is typed from the first message that brings the
field (a schema cut there, as for files): the same message whatever the batch size or the
timing, so live runs replay identically. Declare ``schema`` for fields whose type varies.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any

import polars as pl

from surestream.connectors.kafka.broker import resolve_bootstrap
from surestream.connectors.kafka.feed import TP, KafkaFeed, consumer_config
from surestream.connectors.parsing import (
    BadLine,
    ParsedBlock,
    infer_csv_types,
    infer_json_types,
    parse_csv_block,
    parse_json_block,
)
from surestream.connectors.readers import Chunk
from surestream.connectors.source_schema import SourceSchema
from surestream.connectors.value_types import SCHEMA_TYPES
from surestream.model.spec import KafkaSource

#: an empty or whitespace-only value in a block of values joined by newlines
_BLANK_LINE = re.compile(rb"(?:^|\n)[ \t\f\v]*(?:\n|$)")

#: how long a bounded read waits per poll for more messages
POLL_S = 0.05
#: how many fetched messages of a partition a reader takes and parses at once: one block
#: parse serves many chunks (a turn of the interleaving is ~1,000 records; parsing each
#: alone costs a few polars calls per chunk)
PARSE_AHEAD = 65_536

METADATA_TYPES: dict[str, pl.DataType] = {
    "key": pl.String(), "topic": pl.String(), "partition": pl.Int64(), "offset": pl.Int64(),
    "timestamp": pl.Int64(), "headers": pl.String()}


def partition_name(tp: TP) -> str:
    """How a topic-partition is named in checkpoints, journals and error records."""
    return f"{tp[0]}[{tp[1]}]"


def default_group(pipeline: str) -> str:
    return f"surestream-{pipeline}"


def source_schema(spec: KafkaSource) -> SourceSchema:
    """The declared schema, or an empty one that each first message of a field widens."""
    if spec.schema_:
        return SourceSchema({c: SCHEMA_TYPES[t] for c, t in spec.schema_.items()},
                            declared=True, extra_fields=spec.extra_fields,
                            text_columns=frozenset(c for c, t in spec.schema_.items()
                                                   if t == "string"))
    if spec.format == "raw":
        return SourceSchema({"value": pl.Binary()}, declared=True)
    return SourceSchema({})


@dataclass
class KafkaInput:
    """A Kafka source opened: its feed and where each partition starts and ends."""

    feed: KafkaFeed
    spec: KafkaSource
    schema: SourceSchema
    #: partitions at start, in order, and the position each starts at (no checkpoint)
    start: dict[TP, int]
    #: bounded: the offset each partition ends before; live: None
    ends: dict[TP, int] | None

    def reader(self, tp: TP, start: int | None = None) -> KafkaPartitionReader:
        end = None if self.ends is None else self.ends.get(tp)
        reader = KafkaPartitionReader(self.feed, tp, self.spec, self.schema,
                                      self.start.get(tp, 0) if start is None else start, end)
        reader.origin = self
        return reader

    def new_partitions(self, known: set[TP]) -> list[TP]:
        """Partitions created since they were last listed (live sources only)."""
        if self.ends is not None:
            return []
        return [tp for tp in self.feed.topic_partitions(5.0, wait_for_all=False)
                if tp not in known]


def open_kafka(name: str, spec: KafkaSource, pipeline: str) -> KafkaInput:
    """Connect, list the partitions, resolve where each starts (``start``) and, for a
    bounded source, where each ends (``stop_at``). A restored checkpoint's positions
    replace the starts afterwards (``seek``)."""
    bootstrap = resolve_bootstrap(spec.bootstrap, f"source {name!r}: bootstrap")
    feed = KafkaFeed(name, spec.topics,
                     consumer_config(bootstrap, spec.group_id or default_group(pipeline),
                                     spec.options))
    tps = feed.topic_partitions(wait_for_all=not spec.live)
    start = resolve_start(feed, tps, spec.start)
    ends = None
    if spec.stop_at is not None:
        ends = feed.end_offsets(tps)
        if spec.stop_at != "end":
            ends = feed.first_at_or_after({tp: min(start[tp], ends[tp]) for tp in tps}, ends,
                                          spec.stop_at.timestamp_ms)
    return KafkaInput(feed, spec, source_schema(spec), start, ends)


def resolve_start(feed: KafkaFeed, tps: list[TP], start: Any) -> dict[TP, int]:
    """Where each partition starts with no checkpoint: concrete offsets, found once, so a
    journal of the run names exactly what was read."""
    if start == "earliest":
        return {tp: feed.watermarks(tp)[0] for tp in tps}
    if start == "latest":
        return feed.end_offsets(tps)
    if start == "committed":
        got = feed.committed(tps)
        return {tp: got[tp] if got.get(tp, -1) >= 0 else feed.watermarks(tp)[0]
                for tp in tps}
    ends = feed.end_offsets(tps)
    hint = feed.time_hint(tps, start.timestamp_ms)
    lows = {tp: feed.watermarks(tp)[0] for tp in tps}
    begin = {tp: min(max(hint.get(tp, -1), lows[tp]) if hint.get(tp, -1) >= 0 else lows[tp],
                     ends[tp]) for tp in tps}
    return feed.first_at_or_after(begin, ends, start.timestamp_ms)


class KafkaPartitionReader:
    """One topic-partition: position = next offset; ``end`` None for a live source."""

    restartable = True
    origin: KafkaInput | None = None  # the opened source, for new partitions

    def __init__(self, feed: KafkaFeed, tp: TP, spec: KafkaSource, schema: SourceSchema,
                 position: int, end: int | None) -> None:
        self.feed, self.tp, self.spec, self.schema = feed, tp, spec, schema
        self.end = end
        self.name = partition_name(tp)
        #: messages this reader has served (records and bad records alike), this process
        self.consumed = 0
        self._header = (",".join(spec.csv_header) + "\n").encode() if spec.csv_header else b""
        self.seek(position)

    @property
    def live(self) -> bool:
        return self.end is None

    def seek(self, position: Any) -> None:
        self.position = int(position)
        self.feed.place(self.tp, self.position)
        self._held: list[Any] = []  # messages taken from the feed, not yet in a chunk
        self._parsed: ParsedBlock | None = None  # ``_held``'s parse
        self._parsed_with: pl.Schema | None = None  # the schema it was parsed with
        self._cursor = 0  # ``_held[:_cursor]`` went into chunks already

    def _holding(self) -> int:
        return len(self._held) - self._cursor

    def _ended(self) -> bool:
        if self.end is None:
            return False
        if self.position >= self.end:
            return True
        # past the last data record only transaction markers may remain
        return not self._holding() and not self.feed.buffered(self.tp) \
            and self.feed.eof.get(self.tp, -1) >= self.end

    def read(self, n: int) -> Chunk:
        """Exactly ``n`` messages, fewer only at the end (bounded); waits for them."""
        while True:
            if self._holding() < n:
                self._hold(max(n, PARSE_AHEAD) - self._holding())
            if self._holding() >= n or self._ended_after():
                break
            self.feed.poll(POLL_S)
        return self._serve(n)

    def available(self) -> int:
        """Messages fetched and not yet served (held here, or in the feed's buffer)."""
        return self._holding() + self.feed.buffered(self.tp)

    def read_available(self, n: int) -> Chunk:
        """Up to ``n`` messages already fetched (a live source's step never waits on one
        partition)."""
        if self._holding() < n:
            self._hold(max(n, PARSE_AHEAD) - self._holding())
        return self._serve(n)

    def _ended_after(self) -> bool:
        if self.end is None:
            return False
        nxt = self._held[-1].offset() + 1 if self._holding() else self.position
        if nxt >= self.end:
            return True
        return not self.feed.buffered(self.tp) and self.feed.eof.get(self.tp, -1) >= self.end

    def _hold(self, n: int) -> None:
        """Take up to ``n`` more fetched messages; what is held is parsed again, as one
        block, when a chunk is next served (a block is parsed at most once per take)."""
        more = self.feed.take(self.tp, n, self.end)
        if more:
            self._held = self._held[self._cursor:] + more
            self._cursor = 0
            self._parsed = None

    def _serve(self, n: int) -> Chunk:
        """The next ``n`` held messages (fewer if fewer are held, or the schema widens
        within them) as a chunk: a slice of the held messages' parse. A message parses the
        same whatever block it is in (as for files, whatever the batch size), so chunks
        of one parse equal chunks parsed one by one."""
        if not self._holding():
            return Chunk(pl.DataFrame(schema=self.schema.polars()), 0,
                         exhausted=self._ended())
        if self._parsed is None or self._parsed_with is not self.schema.polars():
            self._held, self._cursor = self._held[self._cursor:], 0
            self._parsed_with = self.schema.polars()
            self._parsed = self._parse(self._held)
        parsed, lo = self._parsed, self._cursor
        hi = min(len(self._held), lo + n)
        cut = parsed.used < len(self._held) and parsed.used < hi
        if cut:
            hi = parsed.used
        rows, frame = parsed.rows_from, parsed.frame
        if rows is None:
            chunk_frame, rows_from = frame.slice(lo, hi - lo), None
        else:
            a, b = bisect.bisect_left(rows, lo), bisect.bisect_left(rows, hi)
            chunk_frame = frame.slice(a, b - a)
            rows_from = None if b - a == hi - lo else [r - lo for r in rows[a:b]]
        bad = [dataclasses.replace(x, index=x.index - lo) for x in parsed.bad
               if lo <= x.index < hi]
        self._cursor = hi
        if hi > lo:
            self.position = self._held[hi - 1].offset() + 1
            self.consumed += hi - lo
        if cut:
            self._widen(parsed.new_fields, self._held[hi])
        if self._cursor == len(self._held):
            self._held, self._cursor, self._parsed = [], 0, None
        ended = not cut and hi - lo < n and self._ended()
        return Chunk(chunk_frame, hi - lo, rows_from, bad, exhausted=ended, cut=cut)

    # -- values ----------------------------------------------------------------------------
    def _parse(self, msgs: list[Any]) -> ParsedBlock:
        """The parse of ``msgs`` (``used``: how many of them it covers, short of all at a
        field the schema lacks), metadata columns added. Values that cannot be a line are
        bad records at once; the others parse as one block."""
        parsed = self._parse_values(msgs)
        frame = parsed.frame
        if self.spec.metadata and frame.height:
            rows = parsed.rows_from if parsed.rows_from is not None else range(frame.height)
            frame = frame.with_columns(self._metadata([msgs[i] for i in rows]))
            parsed = ParsedBlock(frame, parsed.rows_from, parsed.bad, parsed.used,
                                 parsed.new_fields)
        return parsed

    def _parse_values(self, msgs: list[Any]) -> ParsedBlock:
        if self.spec.format == "raw":
            frame = pl.DataFrame({"value": [m.value() or b"" for m in msgs]},
                                 schema={"value": pl.Binary()})
            return ParsedBlock(frame, None, [], len(msgs))
        values = [m.value() for m in msgs]
        if None not in values:  # the usual case: every value one line, checked in C
            block = b"\n".join(values)
            if (block.count(b"\n") == len(values) - 1 and b"\r" not in block
                    and _BLANK_LINE.search(block) is None):
                parsed = self._parse_block(block + b"\n", len(values))
                if parsed.bad:
                    parsed.bad = [BadLine(b.index, b.raw, self._where(msgs[b.index], b.message),
                                          b.exception) for b in parsed.bad]
                return parsed
        lines: list[bytes] = []
        index: list[int] = []  # message index of each line
        bad: list[BadLine] = []
        for i, (m, v) in enumerate(zip(msgs, values, strict=True)):
            if v is None:
                bad.append(BadLine(i, "", self._where(m, "the message has no value "
                                                         "(a tombstone)")))
            elif not v.strip():
                # the line parsers skip a blank line (no record): here it is a message,
                # so it costs its record in errors rather than vanishing
                bad.append(BadLine(i, v.decode("utf-8", "replace"),
                                   self._where(m, "the value is empty (no record in it)")))
            elif b"\n" in v or b"\r" in v:
                bad.append(BadLine(i, v.decode("utf-8", "replace"),
                                   self._where(m, "the value holds a line break, so it "
                                                  "cannot be read as one record")))
            else:
                lines.append(v)
                index.append(i)
        if not lines:
            parsed = ParsedBlock(pl.DataFrame(schema=self.schema.polars()), [], [], 0)
        else:
            parsed = self._parse_block(b"\n".join(lines) + b"\n", len(lines))
        used = len(msgs) if parsed.used == len(lines) else index[parsed.used]
        rows = parsed.rows_from if parsed.rows_from is not None else range(parsed.frame.height)
        bad += [BadLine(index[b.index], b.raw, self._where(msgs[index[b.index]], b.message),
                        b.exception) for b in parsed.bad]
        bad = sorted((b for b in bad if b.index < used), key=lambda b: b.index)
        return ParsedBlock(parsed.frame, [index[r] for r in rows], bad, used,
                           parsed.new_fields)

    def _parse_block(self, block: bytes, n_lines: int) -> ParsedBlock:
        if self.spec.format == "json":
            return parse_json_block(block, n_lines, self.schema)
        return parse_csv_block(block, n_lines, self.schema, self._header)

    @staticmethod
    def _where(msg: Any, reason: str) -> str:
        return f"topic {msg.topic()} partition {msg.partition()} offset {msg.offset()}: " \
               f"{reason}"

    def _widen(self, fields: list[str], msg: Any) -> None:
        """Type the new fields from the message that brings them (see the module doc)."""
        line = msg.value() or b""
        if self.spec.format == "json":
            found = infer_json_types([line], fields)
        else:
            found = infer_csv_types(self._header, line + b"\n", fields)
        self.schema.widen({f: found.get(f, pl.Null()) for f in fields})

    def _metadata(self, msgs: list[Any]) -> list[pl.Series]:
        cols: list[pl.Series] = []
        for name in self.spec.metadata:
            if name == "key":
                values: list[Any] = [None if m.key() is None
                                     else m.key().decode("utf-8", "replace") for m in msgs]
            elif name == "topic":
                values = [m.topic() for m in msgs]
            elif name == "partition":
                values = [m.partition() for m in msgs]
            elif name == "offset":
                values = [m.offset() for m in msgs]
            elif name == "timestamp":
                values = [m.timestamp()[1] for m in msgs]
            else:
                values = [json.dumps([[k, None if v is None else v.decode("utf-8", "replace")]
                                      for k, v in (m.headers() or [])]) for m in msgs]
            cols.append(pl.Series(f"kafka_{name}", values, dtype=METADATA_TYPES[name]))
        return cols

    # -- telemetry ---------------------------------------------------------------------------
    def telemetry(self) -> dict[str, Any]:
        """Where this partition stands, for the run's snapshot (``runners/local/telemetry``,
        built in the runner's thread a few times a second: nothing here asks the broker).

        ``end_offset``: a bounded source's own end (``stop_at``), else the end the consumer
        knows (``KafkaFeed.known_end``: on tansu short by up to a batch until the feed
        reaches it). ``lag`` = end_offset - position, in offsets (a transaction marker
        counts as one until the feed sees past it); 0 once the feed has reached the end and
        holds nothing more. Both None until the first fetch answers."""
        end = self.end if self.end is not None else self.feed.known_end(self.tp)
        lag = None
        if end is not None:
            end = max(end, self.position)
            caught_up = not self._holding() and not self.feed.buffered(self.tp) \
                and self.feed.eof.get(self.tp, -1) >= end
            lag = 0 if caught_up else end - self.position
        return {"topic": self.tp[0], "partition": self.tp[1], "group": self.feed.group,
                "position": self.position, "end_offset": end, "lag": lag,
                "consumed": self.consumed}

    # -- checkpoints -------------------------------------------------------------------------
    def checkpoint_state(self) -> None:
        return None

    def verify(self, state: dict[str, Any], ended: bool) -> None:
        return None

    def close(self) -> None:
        self.feed.close()
