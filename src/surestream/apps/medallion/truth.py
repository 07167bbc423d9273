"""The truth of a medallion simulation: what each layer must hold, counted by the simulator
as it injects the faults (never by the pipeline's code).

* ``received``: every line delivered, per feed -- bronze holds exactly these;
* ``valid_unique``: the distinct valid events -- silver.events holds exactly these, one row
  per event_id;
* ``invalid``: the schema-invalid lines, by reason and by ``reason:field`` -- the DLQ
  (``silver.dlq_events`` and ``dlq-events``) holds exactly these;
* ``duplicates``: the re-sent copies of valid events -- counted by silver's dedup, in no
  table;
* ``gold``: per 5-minute window (UTC, epoch-aligned), event type and source, the count of
  valid unique events and the sum of their measure (a transaction's amount, a metric's
  value; a user action has none: null) -- gold.event_metrics_5m holds exactly these.

``received == valid_unique + invalid + duplicates``: every line ends in exactly one place.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from surestream.apps.medallion.schemas import FEED_TOPICS, event_type_of

TRUTH_FILE = "truth.json"
WINDOW_MS = 300_000


def measure_of(feed: str, event: dict[str, Any]) -> float | None:
    """The number gold sums: a transaction's amount, a metric's value, none for a user
    action."""
    if feed == "transaction":
        return float(event["amount"])
    if feed == "metric":
        return float(event["value"])
    return None


@dataclass
class MedallionTruth:
    seed: int
    events: int
    minutes: int
    start: str
    received: dict[str, int]
    valid_unique: dict[str, int]
    invalid: dict[str, int]
    invalid_by_reason: dict[str, int]
    invalid_by_field: dict[str, int]
    duplicates: dict[str, int]
    #: "event_type|source" -> {"count", "measure_sum"}
    by_type_source: dict[str, dict[str, Any]]
    #: "window_start_ms|event_type|source" -> {"count", "measure_sum"}
    gold: dict[str, dict[str, Any]]
    feeds: dict[str, str] = field(default_factory=lambda: dict(FEED_TOPICS))

    @property
    def total_received(self) -> int:
        return sum(self.received.values())

    @property
    def total_valid_unique(self) -> int:
        return sum(self.valid_unique.values())

    @property
    def total_invalid(self) -> int:
        return sum(self.invalid.values())

    @property
    def total_duplicates(self) -> int:
        return sum(self.duplicates.values())

    def write(self, folder: str | Path) -> Path:
        path = Path(folder) / TRUTH_FILE
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def read(cls, folder: str | Path) -> MedallionTruth:
        return cls(**json.loads((Path(folder) / TRUTH_FILE).read_text()))

    def lines(self) -> list[str]:
        """The truth as a few lines for the demo's report."""
        out = [f"{'feed':<12} {'received':>9} {'valid':>7} {'invalid':>8} {'resent':>7}"]
        for feed in FEED_TOPICS:
            out.append(f"{feed:<12} {self.received[feed]:>9,} {self.valid_unique[feed]:>7,} "
                       f"{self.invalid[feed]:>8,} {self.duplicates[feed]:>7,}")
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.invalid_by_reason.items()))
        out.append(f"invalid by reason: {reasons or 'none'}")
        return out


class TruthBuilder:
    """Counts what the simulator makes, event by event."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        self.received: Counter[str] = Counter({f: 0 for f in FEED_TOPICS})
        self.valid_unique: Counter[str] = Counter({f: 0 for f in FEED_TOPICS})
        self.invalid_count: Counter[str] = Counter({f: 0 for f in FEED_TOPICS})
        self.duplicates: Counter[str] = Counter({f: 0 for f in FEED_TOPICS})
        self.by_reason: Counter[str] = Counter()
        self.by_field: Counter[str] = Counter()
        self._type_source: dict[str, list[Any]] = defaultdict(lambda: [0, []])
        self._gold: dict[str, list[Any]] = defaultdict(lambda: [0, []])

    def valid(self, feed: str, event: dict[str, Any]) -> None:
        self.received[feed] += 1
        self.valid_unique[feed] += 1
        ts_ms = _epoch_ms(event["timestamp"])
        event_type = event_type_of(feed, event.get("event_type"))
        measure = measure_of(feed, event)
        for table, key in ((self._type_source, f"{event_type}|{event['source']}"),
                           (self._gold, f"{ts_ms - ts_ms % WINDOW_MS}|{event_type}|"
                                        f"{event['source']}")):
            table[key][0] += 1
            if measure is not None:
                table[key][1].append(measure)

    def invalid(self, feed: str, reason: str, field_name: str | None) -> None:
        self.received[feed] += 1
        self.invalid_count[feed] += 1
        self.by_reason[reason] += 1
        self.by_field[f"{reason}:{field_name}" if field_name else reason] += 1

    def duplicate(self, feed: str) -> None:
        self.received[feed] += 1
        self.duplicates[feed] += 1

    def build(self) -> MedallionTruth:
        s = self.sim
        return MedallionTruth(
            seed=s.seed, events=s.events, minutes=s.minutes, start=s.start,
            received=dict(self.received), valid_unique=dict(self.valid_unique),
            invalid=dict(self.invalid_count),
            invalid_by_reason=dict(sorted(self.by_reason.items())),
            invalid_by_field=dict(sorted(self.by_field.items())),
            duplicates=dict(self.duplicates),
            by_type_source=_sums(self._type_source), gold=_sums(self._gold))


def _sums(table: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    return {key: {"count": n, "measure_sum": math.fsum(values) if values else None}
            for key, (n, values) in sorted(table.items())}


def _epoch_ms(stamp: str) -> int:
    from datetime import datetime

    return round(datetime.fromisoformat(stamp).timestamp() * 1000)
