"""A deterministic simulator of the five ISOs' real-time 5-minute LMP feeds, with faults.

Every node of every ISO (``iso_nodes.py``) gets one price per 5-minute interval: a message
``{iso, node, interval_start, interval_end, event_timestamp, lmp, energy, congestion, loss,
message_id, event_version, published_at}``. Prices are whole cents, so ``lmp = energy +
congestion + loss`` holds exactly in the written decimals. The event time
``event_timestamp`` is the instant the price applies from (= ``interval_start``; every
version of a price keeps it); ``published_at`` is when the ISO sent that message.

The lines come in arrival order (one merged feed, as an ISO poller writes it), with faults
injected at seeded rates -- each one recorded so that ``iso_truth.py`` knows exactly what
a correct pipeline must produce:

- **re-sent duplicates**: the same line again (same ``message_id``) up to 2 minutes later;
- **late messages**: published 18-45 minutes after their normal time, so that the
  feed has moved on by more than the 10-minute watermark bound (and a 5-minute interval);
- **corrections**: a later message for the same iso/node/interval_start with a higher
  ``event_version``, a new price and a new ``message_id``, 1-4 minutes after the first
  (a few get a third version);
- **a silent ISO**: one ISO sends nothing for a while, then back-fills the missed
  intervals at once (the older ones are then late);
- **malformed lines**: cut-short JSON, messages missing fields (``event_timestamp``
  and one more), a non-numeric price.

Nothing reads the wall clock: the same seed and settings give the same bytes.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from surestream.apps.energy.iso_nodes import ISO_NODES, ISOS
from surestream.apps.energy.iso_time import (
    DAY_MS,
    HOUR_MS,
    INTERVAL_MS,
    MINUTE_MS,
    iso_utc,
    parse_utc,
)

DEFAULT_START = "2026-03-02T00:00:00Z"
MALFORMED_KINDS = ("bad_json", "missing_fields", "non_numeric_price")
#: no late message or correction is injected this close to the end of the feed: after the
#: last regular message nothing moves the watermark any more, so a delay there would not
#: make a message late (the truth would still be exact; the fault would just be no fault)
_QUIET_TAIL_MS = 30 * MINUTE_MS


@dataclass
class Line:
    """One line of the feed: when it arrives, its bytes, and what it is."""

    arrival_ms: int
    order: int  # ties in arrival: generation order
    data: bytes
    message: dict[str, Any] | None  # the parsed message (None: a malformed line)
    cause: str  # regular | resend | delayed | correction | backfill | malformed kind


@dataclass
class IsoSimulation:
    """Settings of one simulated feed; ``lines()`` makes it, ``write(folder)`` writes it."""

    hours: int = 24
    seed: int = 7
    start: str = DEFAULT_START
    isos: tuple[str, ...] = ISOS
    duplicate_rate: float = 0.02
    late_rate: float = 0.01
    correction_rate: float = 0.01
    malformed_rate: float = 0.005
    silent_iso: str | None = "MISO"
    silence_minutes: int = 40
    _start_ms: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.hours < 1:
            raise ValueError(f"hours must be at least 1, got {self.hours}")
        unknown = [i for i in self.isos if i not in ISO_NODES]
        if unknown or not self.isos:
            raise ValueError(f"unknown ISO {unknown[0] if unknown else '(none)'}; the ISOs "
                             f"are {', '.join(ISOS)}")
        for name in ("duplicate_rate", "late_rate", "correction_rate", "malformed_rate"):
            rate = getattr(self, name)
            if not 0 <= rate <= 0.5:
                raise ValueError(f"{name} must be between 0 and 0.5, got {rate}")
        if self.late_rate + self.correction_rate > 0.5:
            raise ValueError("late_rate + correction_rate must be at most 0.5")
        if self.silent_iso is not None and self.silent_iso not in self.isos:
            raise ValueError(f"silent_iso {self.silent_iso!r} is not one of the simulated "
                             f"ISOs ({', '.join(self.isos)})")
        if self.silence_minutes < 0:
            raise ValueError(f"silence_minutes must be >= 0, got {self.silence_minutes}")
        self._start_ms = parse_utc(self.start)
        if self._start_ms % INTERVAL_MS:
            raise ValueError(f"start {self.start} is not on a 5-minute boundary")

    # -- the feed ---------------------------------------------------------------------
    @property
    def start_ms(self) -> int:
        return self._start_ms

    @property
    def end_ms(self) -> int:
        return self._start_ms + self.hours * HOUR_MS

    def silence(self) -> tuple[int, int] | None:
        """``[from, to)`` of interval starts the silent ISO does not send on time: from a
        third of the span, ``silence_minutes`` long (at most a third of the span)."""
        if self.silent_iso is None or self.silence_minutes == 0:
            return None
        span = self.end_ms - self.start_ms
        begin = self.start_ms + (span // 3) // INTERVAL_MS * INTERVAL_MS
        length = min(self.silence_minutes * MINUTE_MS, span // 3) // INTERVAL_MS * INTERVAL_MS
        return (begin, begin + length) if length else None

    def lines(self) -> list[Line]:
        """Every line of the feed, in arrival order."""
        rng = random.Random(self.seed)
        out: list[Line] = []
        counters = dict.fromkeys(self.isos, 0)
        silence = self.silence()
        quiet_from = self.end_ms - _QUIET_TAIL_MS

        def message_id(iso: str) -> str:
            counters[iso] += 1
            return f"{iso.lower()}-{counters[iso]:07d}"

        def add(arrival: int, message: dict[str, Any] | None, data: bytes, cause: str) -> None:
            out.append(Line(arrival, len(out), data, message, cause))

        for t in range(self.start_ms, self.end_ms, INTERVAL_MS):
            for iso in self.isos:
                lag = rng.randint(20_000, 110_000)  # the ISO's publication delay
                energy = self._energy_cents(rng, iso, t)
                silent = (silence is not None and iso == self.silent_iso
                          and silence[0] <= t < silence[1])
                for node_index, node in enumerate(ISO_NODES[iso]):
                    congestion = self._congestion_cents(rng, node_index, node.base_price)
                    loss = rng.randint(-60, 90)
                    published = t + INTERVAL_MS + lag + node_index * 200
                    msg = _message(iso, node.name, t, energy, congestion, loss,
                                   message_id(iso), 1, published)
                    if silent:  # back-filled when the ISO speaks again (below)
                        resume = silence[1] + INTERVAL_MS + 60_000
                        back = _message(iso, node.name, t, energy, congestion, loss,
                                        msg["message_id"], 1, resume)
                        add(resume + (t - silence[0]) // 1000, back, _dumps(back), "backfill")
                        continue
                    fault = rng.random()
                    late = fault < self.late_rate and published < quiet_from
                    corrected = (self.late_rate <= fault < self.late_rate + self.correction_rate
                                 and published < quiet_from)
                    if late:
                        published += rng.randint(18 * MINUTE_MS, 45 * MINUTE_MS)
                        msg["published_at"] = iso_utc(published)
                    data = _dumps(msg)
                    add(published, msg, data, "delayed" if late else "regular")
                    if rng.random() < self.duplicate_rate:
                        add(published + rng.randint(5_000, 120_000), msg, data, "resend")
                    if rng.random() < self.malformed_rate:
                        kind = MALFORMED_KINDS[rng.randrange(len(MALFORMED_KINDS))]
                        add(published, None, _malformed(msg, kind, rng), kind)
                    if corrected:
                        versions = 3 if rng.random() < 0.15 else 2
                        at = published
                        for version in range(2, versions + 1):
                            at += rng.randint(60_000, 240_000)
                            congestion += rng.choice((-1, 1)) * rng.randint(100, 1500)
                            fix = _message(iso, node.name, t, energy, congestion, loss,
                                           message_id(iso), version, at)
                            add(at, fix, _dumps(fix), "correction")
        out.sort(key=lambda line: (line.arrival_ms, line.order))
        return out

    # -- prices -------------------------------------------------------------------------
    def _energy_cents(self, rng: random.Random, iso: str, t: int) -> int:
        """The ISO-wide system energy component: a daily shape, noise, rare spikes."""
        nodes = ISO_NODES[iso]
        base = sum(n.base_price for n in nodes) / len(nodes)
        hour = (t % DAY_MS) / HOUR_MS
        shape = 1 + 0.35 * math.sin(2 * math.pi * (hour - 9) / 24)
        price = base * shape + rng.gauss(0, 2.5)
        if rng.random() < 0.004:
            price += rng.uniform(80, 400)  # a scarcity spike
        return round(price * 100)

    @staticmethod
    def _congestion_cents(rng: random.Random, node_index: int, base_price: float) -> int:
        return round((base_price - 33.0) * 30 + rng.gauss(0, 150)) + node_index * 5

    # -- files --------------------------------------------------------------------------
    def write(self, folder: str | Path) -> dict[str, Any]:
        """``lmp.jsonl`` (the feed, in arrival order) and ``truth.json`` in ``folder``;
        returns the truth."""
        from surestream.apps.energy.iso_truth import build_truth, write_truth

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        lines = self.lines()
        with open(out / FEED_FILE, "wb") as f:
            for line in lines:
                f.write(line.data + b"\n")
        truth = build_truth(self, lines)
        write_truth(out, truth)
        return truth

    def settings(self) -> dict[str, Any]:
        return {"hours": self.hours, "seed": self.seed, "start": self.start,
                "isos": list(self.isos), "duplicate_rate": self.duplicate_rate,
                "late_rate": self.late_rate, "correction_rate": self.correction_rate,
                "malformed_rate": self.malformed_rate, "silent_iso": self.silent_iso,
                "silence_minutes": self.silence_minutes}


FEED_FILE = "lmp.jsonl"


def _message(iso: str, node: str, t: int, energy: int, congestion: int, loss: int,
             message_id: str, version: int, published: int) -> dict[str, Any]:
    return {"iso": iso, "node": node, "interval_start": iso_utc(t),
            "interval_end": iso_utc(t + INTERVAL_MS), "event_timestamp": iso_utc(t),
            "lmp": (energy + congestion + loss) / 100, "energy": energy / 100,
            "congestion": congestion / 100, "loss": loss / 100, "message_id": message_id,
            "event_version": version, "published_at": iso_utc(published)}


def _dumps(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)


def _malformed(message: dict[str, Any], kind: str, rng: random.Random) -> bytes:
    if kind == "bad_json":
        data = _dumps(message)
        return data[:rng.randint(10, len(data) - 10)]
    broken = dict(message)
    if kind == "missing_fields":
        del broken["event_timestamp"]
        del broken[rng.choice(("lmp", "published_at", "interval_end"))]
    else:
        broken["lmp"] = rng.choice(("N/A", "", "NaN?", "--"))
    return _dumps(broken)
