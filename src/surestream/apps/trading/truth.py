"""The ground truth of a market simulation: what a pipeline's counters must equal.

Counts are per stream and cover exactly the lines produced (a run cut short by
``events`` counts only what was written). Definitions (see ``injection``):

* ``events``: lines in the stream; ``unique``: well-formed primary records (for
  ``raw.trades``: distinct ``trade_id`` values among decodable lines);
* ``duplicates``: extra byte-identical copies of on-time trades (lines = unique +
  duplicates + malformed);
* ``late``: records more than ``late_threshold_ms`` behind the largest well-formed
  timestamp before them in the stream -- late for any watermark delay of at most that;
* ``malformed``: lines that are not valid JSON;
* ``unknown_status``: trades whose status is not one of the five known ones;
* ``statuses``: unique well-formed trades per status value (unknown values by name) --
  what the router, which routes late trades too (flagged), sends to each route;
  ``on_time_statuses``: the same without late trades -- what a pipeline that quarantines
  late data before routing by status would send.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from surestream.apps.trading.injection import LATE_THRESHOLD_MS, STREAMS


@dataclass
class StreamTruth:
    """Injected counts for one stream."""

    events: int = 0
    unique: int = 0
    duplicates: int = 0
    late: int = 0
    malformed: int = 0
    unknown_status: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    on_time_statuses: dict[str, int] = field(default_factory=dict)

    def add_statuses(self, counts: dict[str, int], on_time: dict[str, int]) -> None:
        """Add per-status counts (zeros are not stored)."""
        for target, source in ((self.statuses, counts), (self.on_time_statuses, on_time)):
            for status, n in source.items():
                if n:
                    target[status] = target.get(status, 0) + n


@dataclass
class MarketTruth:
    """What a ``MarketSimulation`` injected, per stream, plus its settings."""

    seed: int = 0
    events: int = 0
    late_threshold_ms: int = LATE_THRESHOLD_MS
    streams: dict[str, StreamTruth] = field(
        default_factory=lambda: {name: StreamTruth() for name in STREAMS})
    symbols: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def trades(self) -> StreamTruth:
        return self.streams["raw.trades"]

    @property
    def marketdata(self) -> StreamTruth:
        return self.streams["raw.marketdata"]

    @property
    def orderbook(self) -> StreamTruth:
        return self.streams["raw.orderbook"]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with sorted status maps (so ``truth.json`` is stable)."""
        doc = asdict(self)
        for stream in doc["streams"].values():
            stream["statuses"] = dict(sorted(stream["statuses"].items()))
            stream["on_time_statuses"] = dict(sorted(stream["on_time_statuses"].items()))
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> MarketTruth:
        """Read back what ``to_dict`` wrote (e.g. a ``truth.json``)."""
        streams = {name: StreamTruth(**s) for name, s in doc["streams"].items()}
        return cls(**{**doc, "streams": streams})

    def table(self) -> list[str]:
        """The counts as aligned text lines, one row per stream."""
        cols = ("events", "unique", "duplicates", "late", "malformed", "unknown_status")
        lines = [f"{'stream':<16}" + "".join(f"{c:>16}" for c in cols)]
        for name, s in self.streams.items():
            lines.append(f"{name:<16}" + "".join(f"{getattr(s, c):>16,}" for c in cols))
        lines.append(f"{'total':<16}{self.events:>16,}")
        if self.trades.statuses:
            lines.append("trades by status (unique, well-formed; on time in brackets):")
            lines += [f"  {k:<18}{v:>12,}  ({self.trades.on_time_statuses.get(k, 0):,})"
                      for k, v in sorted(self.trades.statuses.items(), key=lambda kv: -kv[1])]
        return lines
