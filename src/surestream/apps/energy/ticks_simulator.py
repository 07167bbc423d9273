"""A deterministic simulator of high-frequency price ticks from several market-data vendors.

Each vendor sends ticks (``vendor, symbol, tick_id, event_time, price, size, bid, ask,
published_at``; times ISO-8601 UTC with milliseconds) for the same symbols. The lines are
written in the order the vendors *published* them -- the order a consumer of the feed sees
-- with these faults injected, each counted exactly in ``truth.json``
(``ticks_truth.TicksTruth``):

* **duplicates**: an on-time tick re-sent 1-20 s after it was first published (same
  vendor, symbol, tick_id and event_time; a new ``published_at``): within the 1-minute
  dedup window, and never late (re-sent well inside the 30 s tolerance);
* **late ticks**: published 45-180 s after their event time, so they arrive more than 30 s
  behind the newest tick before them (the template's watermark quarantines them);
* **idle vendors**: a vendor silent for ``idle_minutes`` while the others go on;
* **malformed ticks**: extra lines that are cut short (not JSON), or whose ``event_time``
  is missing or unreadable.

The truth is not only what was injected: ``ticks_truth.classify`` replays the exact
watermark and dedup rules over the lines as written, and the simulator refuses settings
for which that classification differs from the injection (so the counts are exact by
construction *and* by rule). Same settings and seed, same bytes; no wall clock is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson

from surestream.apps.energy.ticks_settings import (
    DATA_FILE,
    DEFAULT_START,
    SYMBOLS,
    TRUTH_FILE,
    VENDORS,
    TickSettings,
    parse_start,
)
from surestream.apps.energy.ticks_truth import TicksTruth, build_truth

__all__ = ["DATA_FILE", "DEFAULT_START", "SYMBOLS", "TRUTH_FILE", "VENDORS", "TickSimulation",
           "parse_start", "write_feed"]


#: how long after its event time an on-time tick is published (ms)
ON_TIME_LATENCY_MS = (5, 1_500)
#: how long after its event time a late tick is published (ms)
LATE_LATENCY_MS = (45_000, 180_000)
#: how long after the first publication a duplicate is re-sent (ms)
RESEND_DELAY_MS = (1_000, 20_000)
MALFORMED_KINDS = ("cut_short", "missing_event_time", "bad_event_time")


def iso_ms(ms: np.ndarray) -> np.ndarray:
    """Epoch milliseconds as ISO-8601 UTC strings with milliseconds (``...T14:00:00.123Z``)."""
    text = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms")
    return np.char.add(text.astype(str), "Z")


class TickSimulation(TickSettings):
    """A simulated feed: the settings (``TickSettings``) and how the lines are made."""

    def generate(self) -> tuple[list[bytes], TicksTruth]:
        """The feed's lines in publication order, and its truth."""
        rng = np.random.default_rng(self.seed)
        start = parse_start(self.start)
        span = self.minutes * 60_000
        vendors = VENDORS[:self.vendors]
        symbols = list(SYMBOLS)[:self.symbols]
        idle = self._idle_windows(vendors, start, span)

        cols = self._ticks(rng, vendors, symbols, start, span, idle)
        n = len(cols["event_ms"])
        published = cols["event_ms"] + rng.integers(*ON_TIME_LATENCY_MS, n, endpoint=True)
        kind = np.zeros(n, dtype=np.int8)  # 0 on time, 1 late

        # late ticks: away from both ends, so the stream is always 30 s past them
        room = (cols["event_ms"] >= start + 120_000) \
            & (cols["event_ms"] <= start + span - LATE_LATENCY_MS[1] - 60_000)
        late = _pick(rng, np.flatnonzero(room), self.late_rate, n)
        published[late] = cols["event_ms"][late] + rng.integers(*LATE_LATENCY_MS, late.size,
                                                                  endpoint=True)
        kind[late] = 1
        # duplicates: copies of on-time ticks, re-sent a little later
        dup_of = _pick(rng, np.flatnonzero(kind == 0), self.duplicate_rate, n)
        resent = published[dup_of] + rng.integers(*RESEND_DELAY_MS, dup_of.size, endpoint=True)
        # malformed: corrupted copies of random ticks, published beside them
        bad_of = _pick(rng, np.flatnonzero(kind == 0), self.malformed_rate, n)
        bad_kind = rng.integers(0, len(MALFORMED_KINDS), bad_of.size)
        bad_at = published[bad_of] + rng.integers(0, 200, bad_of.size, endpoint=True)

        # rows of the feed: originals, then duplicates, then malformed; ordered by publication
        source = np.concatenate([np.arange(n), dup_of, bad_of])
        role = np.concatenate([kind, np.full(dup_of.size, 2, np.int8),
                               np.full(bad_of.size, 3, np.int8)])
        when = np.concatenate([published, resent, bad_at])
        malformed_kind = np.concatenate([np.full(n + dup_of.size, -1), bad_kind])
        order = np.lexsort((np.arange(source.size), when))
        source, role, when = source[order], role[order], when[order]
        malformed_kind = malformed_kind[order]

        lines = self._lines(cols, source, role, when, malformed_kind)
        truth = build_truth(self.settings(), cols, source, role, malformed_kind,
                            MALFORMED_KINDS, idle)
        return lines, truth

    def write(self, out: str | Path) -> TicksTruth:
        """Write ``ticks.jsonl`` and ``truth.json`` into the folder ``out``."""
        lines, truth = self.generate()
        write_feed(Path(out), lines, truth)
        return truth

    def _idle_windows(self, vendors: tuple[str, ...], start: int, span: int
                      ) -> list[tuple[str, int, int]]:
        """(vendor, from ms, to ms): the last ``idle_vendors`` vendors fall silent, one
        after the other, spread over the middle of the feed."""
        length = self.idle_minutes * 60_000
        found = []
        for i in range(self.idle_vendors):
            begin = start + (span - length) * (i + 1) // (self.idle_vendors + 1)
            begin -= begin % 60_000  # whole minutes: easy to see in the bars
            found.append((vendors[-1 - i], begin, begin + length))
        return found

    def _ticks(self, rng: np.random.Generator, vendors: tuple[str, ...], symbols: list[str],
               start: int, span: int, idle: list[tuple[str, int, int]]
               ) -> dict[str, np.ndarray]:
        """Every vendor's ticks (columns), by vendor then event time; tick ids count up per
        vendor."""
        seconds = span // 1000 + 1
        paths = {s: np.exp(np.cumsum(rng.normal(0, 0.0004, seconds))) * SYMBOLS[s]
                 for s in symbols}
        parts: dict[str, list[np.ndarray]] = {k: [] for k in (
            "vendor", "symbol", "tick_id", "event_ms", "price", "size", "bid", "ask")}
        for v, vendor in enumerate(vendors):
            count = int(round(self.ticks_per_s * span / 1000))
            event = np.sort(start + rng.integers(0, span, count))
            for who, begin, end in idle:
                if who == vendor:
                    event = event[(event < begin) | (event >= end)]
            k = event.size
            sym = rng.integers(0, len(symbols), k)
            mid = np.empty(k)
            for i, s in enumerate(symbols):
                at = sym == i
                mid[at] = paths[s][(event[at] - start) // 1000]
            mid *= 1 + rng.normal(0, 0.0001, k)  # each vendor sees it a little differently
            spread = np.maximum(mid * 0.0002, 0.0001)
            parts["vendor"].append(np.full(k, v))
            parts["symbol"].append(sym)
            parts["tick_id"].append(np.arange(1, k + 1) + 10_000_000 * (v + 1))
            parts["event_ms"].append(event)
            parts["price"].append(np.round(mid, 4))
            parts["size"].append(rng.integers(1, 50, k) * 100)
            parts["bid"].append(np.round(mid - spread, 4))
            parts["ask"].append(np.round(mid + spread, 4))
        cols = {k: np.concatenate(v) for k, v in parts.items()}
        cols["vendor_names"] = np.array(vendors)
        cols["symbol_names"] = np.array(symbols)
        return cols

    def _lines(self, cols: dict[str, np.ndarray], source: np.ndarray, role: np.ndarray,
               when: np.ndarray, bad_kind: np.ndarray) -> list[bytes]:
        event_text = iso_ms(cols["event_ms"][source])
        published_text = iso_ms(when)
        vendor = cols["vendor_names"][cols["vendor"][source]]
        symbol = cols["symbol_names"][cols["symbol"][source]]
        tick_id, price = cols["tick_id"][source], cols["price"][source]
        size, bid, ask = cols["size"][source], cols["bid"][source], cols["ask"][source]
        lines = []
        for i in range(source.size):
            record: dict[str, Any] = {
                "vendor": str(vendor[i]), "symbol": str(symbol[i]), "tick_id": int(tick_id[i]),
                "event_time": str(event_text[i]), "price": float(price[i]),
                "size": int(size[i]), "bid": float(bid[i]), "ask": float(ask[i]),
                "published_at": str(published_text[i])}
            if role[i] == 3:
                kind = MALFORMED_KINDS[bad_kind[i]]
                if kind == "missing_event_time":
                    del record["event_time"]
                elif kind == "bad_event_time":
                    record["event_time"] = "not-a-time"
            line = orjson.dumps(record)
            if role[i] == 3 and MALFORMED_KINDS[bad_kind[i]] == "cut_short":
                line = line[:len(line) // 2]
            lines.append(line)
        return lines


def write_feed(folder: Path, lines: list[bytes] | None, truth: TicksTruth) -> None:
    """``ticks.jsonl`` (unless ``lines`` is None: published elsewhere) and ``truth.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    if lines is not None:
        (folder / DATA_FILE).write_bytes(b"".join(line + b"\n" for line in lines))
    truth.write(folder / TRUTH_FILE)


def _pick(rng: np.random.Generator, candidates: np.ndarray, rate: float, total: int
          ) -> np.ndarray:
    """``rate * total`` of ``candidates`` (as many as there are at most), sorted."""
    want = min(int(round(rate * total)), candidates.size)
    return np.sort(rng.choice(candidates, want, replace=False)) if want else \
        np.empty(0, dtype=np.int64)
