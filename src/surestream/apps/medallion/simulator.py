"""Raw platform events with the faults a landing zone meets, and their truth.

``MedallionSimulation(seed=7, events=6_000).write("out/medallion/data")`` writes one JSON-lines
file per feed, named after its topic (``raw-events.jsonl``, ``raw-transactions.jsonl``,
``raw-metrics.jsonl``: ``schemas.FEED_TOPICS``), each in the order a consumer receives it,
and ``truth.json`` beside them (``truth.py``). ``feed_lines()`` gives the same lines without
files (for the Kafka producer).

``events`` unique events are made over ``minutes`` of event time from ``start`` (UTC):
70 % user actions, 20 % transactions, 10 % metrics, each feed in event-time order. What is
injected, exactly (counts fixed by the settings, positions by the seed):

* **schema-invalid events**: ``round(invalid_rate * events)`` of the events carry one fault
  each, spread over the kinds: ``malformed_json`` (the line cut short: not JSON),
  ``missing_field`` (a required field left out), ``wrong_type`` (a string where a number
  belongs, a number for a string, epoch milliseconds for the ISO timestamp, text for
  ``properties``), ``unknown_event_type`` (a user action whose event_type is not one of
  ``USER_EVENT_TYPES``). Each is still delivered once;
* **re-sends**: ``round(duplicate_rate * valid)`` valid events are delivered a second time,
  byte for byte (same event_id), 1 to 20 lines after the original in the same feed.

Everything comes from one ``random.Random(seed)``: same settings, same bytes. Event times
start at ``start``, never at the wall clock.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surestream.apps.medallion.schemas import (
    APP_SOURCES,
    CURRENCIES,
    FEED_FIELDS,
    FEED_TOPICS,
    METRIC_NAMES,
    METRIC_SOURCES,
    TRANSACTION_STATUSES,
    USER_EVENT_TYPES,
)
from surestream.apps.medallion.truth import MedallionTruth, TruthBuilder

FEED_SHARES = {"user_action": 0.7, "transaction": 0.2, "metric": 0.1}
#: wrong-type values by the type the field should have
_WRONG_VALUES: dict[str, Any] = {"string": 12345, "number": "12.50",
                                 "timestamp": 1772323200000, "object": "n/a"}
_UNKNOWN_EVENT_TYPES = ("hover", "PageView", "scroll_x")
MAX_RESEND_DELAY_LINES = 20


def feed_file(feed: str) -> str:
    """The landing file of ``feed`` (``raw-events.jsonl`` ...)."""
    return f"{FEED_TOPICS[feed]}.jsonl"


@dataclass
class MedallionSimulation:
    """Settings of one simulated landing of raw events (see the module docstring)."""

    seed: int = 7
    events: int = 6_000
    minutes: int = 60
    start: str = "2026-03-02T00:00:00Z"
    invalid_rate: float = 0.03
    duplicate_rate: float = 0.03

    def __post_init__(self) -> None:
        if self.events < 1:
            raise ValueError(f"events must be at least 1, got {self.events}")
        if self.minutes < 1:
            raise ValueError(f"minutes must be at least 1, got {self.minutes}")
        for name in ("invalid_rate", "duplicate_rate"):
            rate = getattr(self, name)
            if not 0 <= rate <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {rate}")

        try:
            self.start_ms  # noqa: B018 - parsed here so a bad start is refused at once
        except ValueError as e:
            raise ValueError(f"start must be an ISO-8601 time such as 2026-03-02T00:00:00Z "
                             f"(UTC when it has no zone), got {self.start!r}: {e}") from None

    @property
    def start_ms(self) -> int:
        """``start`` in epoch ms; a time without a zone is UTC."""
        start = dt.datetime.fromisoformat(self.start)
        if start.tzinfo is None:
            start = start.replace(tzinfo=dt.UTC)
        return int(start.timestamp() * 1000)

    @property
    def span_ms(self) -> int:
        return self.minutes * 60_000

    # -- the stream ----------------------------------------------------------------------
    def feed_lines(self) -> tuple[dict[str, list[str]], MedallionTruth]:
        """feed -> its lines in delivery order, and the truth of them all."""
        rng = random.Random(self.seed)
        offsets = sorted(rng.randrange(self.span_ms) for _ in range(self.events))
        feeds = rng.choices(list(FEED_SHARES), weights=list(FEED_SHARES.values()),
                            k=self.events)
        invalid = set(rng.sample(range(self.events), round(self.invalid_rate * self.events)))
        truth = TruthBuilder(self)
        # (position in feed, order among lines at that position) -> line, per feed
        placed: dict[str, list[tuple[int, int, str]]] = {f: [] for f in FEED_SHARES}
        valid_lines: list[tuple[str, int, str]] = []
        for i, (offset, feed) in enumerate(zip(offsets, feeds, strict=True)):
            event = self._event(rng, feed, self.start_ms + offset)
            position = len(placed[feed])
            if i in invalid:
                line, reason, field = self._break(rng, feed, event)
                truth.invalid(feed, reason, field)
            else:
                line = _dumps(event)
                truth.valid(feed, event)
                valid_lines.append((feed, position, line))
            placed[feed].append((position, 0, line))
        resent = rng.sample(range(len(valid_lines)),
                            round(self.duplicate_rate * len(valid_lines)))
        for n, k in enumerate(sorted(resent)):
            feed, position, line = valid_lines[k]
            delay = rng.randint(1, MAX_RESEND_DELAY_LINES)
            placed[feed].append((position + delay, 1 + n, line))
            truth.duplicate(feed)
        lines = {feed: [line for _, _, line in sorted(rows)] for feed, rows in placed.items()}
        return lines, truth.build()

    def write(self, folder: str | Path) -> MedallionTruth:
        """Write the three landing files and ``truth.json`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        lines, truth = self.feed_lines()
        for feed, feed_lines in lines.items():
            with open(folder / feed_file(feed), "w", encoding="utf-8", newline="\n") as f:
                f.writelines(line + "\n" for line in feed_lines)
        truth.write(folder)
        return truth

    # -- one event -----------------------------------------------------------------------
    def _event(self, rng: random.Random, feed: str, ts_ms: int) -> dict[str, Any]:
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        stamp = _iso(ts_ms)
        user = f"u{rng.randrange(1, 500):04d}"
        if feed == "user_action":
            event_type = rng.choices(USER_EVENT_TYPES, weights=(50, 25, 10, 5, 10))[0]
            properties: dict[str, Any] = {"page": f"/p/{rng.randrange(1, 200)}"}
            if event_type == "purchase":
                properties["order_total"] = rng.randrange(100, 50_000) / 100
            return {"event_id": event_id, "event_type": event_type, "user_id": user,
                    "session_id": f"s{rng.randrange(1, 2_000):05d}",
                    "source": rng.choice(APP_SOURCES), "timestamp": stamp,
                    "properties": properties}
        if feed == "transaction":
            return {"event_id": event_id, "transaction_id": f"tx-{rng.getrandbits(48):012x}",
                    "user_id": user, "amount": rng.randrange(100, 100_000) / 100,
                    "currency": rng.choice(CURRENCIES),
                    "status": rng.choice(TRANSACTION_STATUSES), "timestamp": stamp,
                    "source": rng.choice(APP_SOURCES)}
        name = rng.choice(METRIC_NAMES)
        return {"event_id": event_id, "metric_name": name,
                "value": rng.randrange(0, 1_000_000) / 1000,
                "host": f"host-{rng.randrange(1, 9)}", "timestamp": stamp,
                "source": rng.choice(METRIC_SOURCES)}

    @staticmethod
    def _break(rng: random.Random, feed: str, event: dict[str, Any],
               ) -> tuple[str, str, str | None]:
        """``event`` with one schema fault: (its line, the reason, the field or None)."""
        kinds = ["malformed_json", "missing_field", "wrong_type"]
        if feed == "user_action":
            kinds.append("unknown_event_type")
        reason = rng.choice(kinds)
        fields = FEED_FIELDS[feed]
        if reason == "malformed_json":
            line = _dumps(event)
            return line[:rng.randrange(1, len(line) - 1)], reason, None
        if reason == "unknown_event_type":
            event["event_type"] = rng.choice(_UNKNOWN_EVENT_TYPES)
            return _dumps(event), reason, "event_type"
        field = rng.choice(list(fields))
        if reason == "missing_field":
            del event[field]
        else:
            event[field] = _WRONG_VALUES[fields[field]]
        return _dumps(event), reason, field


def _dumps(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))


def _iso(ts_ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds and ``Z``."""
    stamp = dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


def iter_feed_records(lines: dict[str, list[str]]) -> Iterator[tuple[str, str]]:
    """``(topic, line)`` for every line of every feed, feed by feed (for a producer)."""
    for feed, feed_lines in lines.items():
        for line in feed_lines:
            yield FEED_TOPICS[feed], line
