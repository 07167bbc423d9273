"""The ground truth of a simulated vendor-tick feed: what a correct ``vendor_ticks`` run
must produce, exactly.

``build_truth`` classifies every line of the feed with the template's rules, applied to
the lines in the order they were written (one stream, as a single file or a one-partition
topic delivers them):

* a line that is not JSON, or has no readable ``event_time``, is **malformed** (errors);
* a tick is **late** when its event time is at or behind the watermark before it:
  ``event_ms <= max(event_ms before it) - 30000 - 1`` (SEMANTICS §2-3, 30 s bounded
  out-of-orderness); the late output carries that watermark and ``lateness_ms``;
* an on-time tick whose ``(vendor, symbol, tick_id)`` was already kept less than a minute
  (event time) before is a **duplicate** (dropped and counted);
* everything else is **curated**, and the curated ticks make the per-symbol one-minute
  **bars** (open/close by event time, ties by arrival; high, low, volume, ticks).

The classification must equal what the simulator injected (``check_injection``): the
truth is exact by construction and by rule.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

#: the template's bounded out-of-orderness: ticks further behind are late
LATE_THRESHOLD_MS = 30_000
DEDUP_WINDOW_MS = 60_000
BAR_MS = 60_000


@dataclass
class TicksTruth:
    """Exact counts of a simulated feed and what a correct pipeline produces from it."""

    settings: dict[str, Any] = field(default_factory=dict)
    lines: int = 0
    ticks: int = 0  # lines that are ticks (late and duplicates included)
    curated: int = 0
    duplicates: int = 0
    late: int = 0
    malformed: int = 0
    malformed_kinds: dict[str, int] = field(default_factory=dict)
    late_threshold_ms: int = LATE_THRESHOLD_MS
    per_vendor: dict[str, dict[str, int]] = field(default_factory=dict)
    #: each idle period: vendor, from_ms, to_ms, and the others' curated ticks meanwhile
    idle: list[dict[str, Any]] = field(default_factory=list)
    #: sha256 of the sorted curated keys, one ``vendor<TAB>symbol<TAB>tick_id`` a line
    curated_keys_sha256: str = ""
    #: every late tick: vendor, symbol, tick_id, event_ms, watermark_ms, lateness_ms
    late_ticks: list[dict[str, Any]] = field(default_factory=list)
    #: every bar: symbol, window_start_ms, ticks, volume, open, high, low, close
    bars: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> TicksTruth:
        return cls(**doc)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> TicksTruth:
        """A ``truth.json`` (or the folder holding it)."""
        p = Path(path)
        return cls.from_dict(json.loads((p / "truth.json" if p.is_dir() else p).read_text()))

    def table(self) -> list[str]:
        """The counts as aligned text lines."""
        rows = [("lines", self.lines), ("ticks (well-formed)", self.ticks),
                ("curated (unique, on time)", self.curated),
                ("duplicates (re-sent < 1 min)", self.duplicates),
                (f"late (> {self.late_threshold_ms // 1000} s behind)", self.late),
                ("malformed", self.malformed), ("1-minute bars", len(self.bars))]
        out = [f"  {name:<32}{n:>10,}" for name, n in rows]
        out += [f"  idle: {p['vendor']} silent {_hm(p['from_ms'])}-{_hm(p['to_ms'])} UTC; "
                f"the others' curated ticks meanwhile: {p['others_curated']:,}"
                for p in self.idle]
        return out


def _hm(ms: int) -> str:
    return str(np.datetime64(ms, "ms").astype("datetime64[m]")).split("T")[1]


def build_truth(settings: dict[str, Any], cols: dict[str, np.ndarray], source: np.ndarray,
                role: np.ndarray, malformed_kind: np.ndarray, kinds: tuple[str, ...],
                idle: list[tuple[str, int, int]]) -> TicksTruth:
    """The truth of the lines ``cols[...][source]`` in this order; ``role``: what the
    simulator injected per line (0 on time, 1 late, 2 duplicate, 3 malformed)."""
    valid = role != 3
    rows = np.flatnonzero(valid)
    ts = cols["event_ms"][source[rows]]
    seen = np.maximum.accumulate(ts)
    before = np.concatenate([[np.iinfo(np.int64).min // 2], seen[:-1]])
    watermark = before - LATE_THRESHOLD_MS - 1
    late = ts <= watermark
    on_time = rows[~late]
    # keep-first dedup over on-time ticks: a key's later copies (same event time) are dups
    vendor, tick = cols["vendor"][source[on_time]], cols["tick_id"][source[on_time]]
    key = vendor.astype(np.int64) * 10**12 + tick
    _, first = np.unique(key, return_index=True)
    kept = np.zeros(on_time.size, dtype=bool)
    kept[first] = True
    check_injection(role, rows[late], on_time[~kept], source)

    curated = on_time[kept]
    vnames, snames = cols["vendor_names"], cols["symbol_names"]
    truth = TicksTruth(settings=settings, lines=int(role.size), ticks=int(rows.size),
                       curated=int(curated.size), duplicates=int((~kept).sum()),
                       late=int(late.sum()), malformed=int((~valid).sum()))
    truth.malformed_kinds = {k: int((malformed_kind == i).sum()) for i, k in enumerate(kinds)}
    frame = pl.DataFrame({
        "row": curated, "vendor": vnames[cols["vendor"][source[curated]]],
        "symbol": snames[cols["symbol"][source[curated]]],
        "tick_id": cols["tick_id"][source[curated]],
        "event_ms": cols["event_ms"][source[curated]],
        "price": cols["price"][source[curated]], "size": cols["size"][source[curated]]})
    late_rows = rows[late]
    for v, name in enumerate(vnames):
        truth.per_vendor[str(name)] = {
            "curated": int((frame["vendor"] == name).sum()),
            "late": int((cols["vendor"][source[late_rows]] == v).sum()),
            "duplicates": int((cols["vendor"][source[on_time[~kept]]] == v).sum())}
    keys = sorted(f"{r[0]}\t{r[1]}\t{r[2]}" for r in frame.select(
        "vendor", "symbol", "tick_id").iter_rows())
    truth.curated_keys_sha256 = keys_digest(keys)
    truth.late_ticks = [
        {"vendor": str(vnames[cols["vendor"][s]]), "symbol": str(snames[cols["symbol"][s]]),
         "tick_id": int(cols["tick_id"][s]), "event_ms": int(t), "watermark_ms": int(w),
         "lateness_ms": int(w - t)}
        for s, t, w in zip(source[late_rows], ts[late], watermark[late], strict=True)]
    truth.bars = bars_of(frame)
    for who, begin, end in idle:
        inside = frame.filter((pl.col("event_ms") >= begin) & (pl.col("event_ms") < end))
        truth.idle.append({
            "vendor": who, "from_ms": begin, "to_ms": end,
            "own_ticks": int((inside["vendor"] == who).sum()),
            "others_curated": int((inside["vendor"] != who).sum())})
    return truth


def keys_digest(keys: list[str]) -> str:
    """sha256 of sorted ``vendor<TAB>symbol<TAB>tick_id`` lines (each ending in a newline)."""
    return hashlib.sha256("".join(k + "\n" for k in keys).encode()).hexdigest()


def bars_of(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Per symbol and minute: ticks, volume, open/close (by event time, ties by arrival
    ``row``), high, low -- sorted by symbol and window start."""
    bars = (frame.with_columns(window_start_ms=pl.col("event_ms") - pl.col("event_ms") % BAR_MS)
            .sort("event_ms", "row")
            .group_by("symbol", "window_start_ms", maintain_order=True)
            .agg(ticks=pl.len(), volume=pl.col("size").sum(), open=pl.col("price").first(),
                 high=pl.col("price").max(), low=pl.col("price").min(),
                 close=pl.col("price").last())
            .sort("symbol", "window_start_ms"))
    return [{k: (int(v) if isinstance(v, (int, np.integer)) else v) for k, v in r.items()}
            for r in bars.iter_rows(named=True)]


def check_injection(role: np.ndarray, late_rows: np.ndarray, duplicate_rows: np.ndarray,
                    source: np.ndarray) -> None:
    """Refuse a feed whose rule-based classification differs from what was injected."""
    injected_late = np.flatnonzero(role == 1)
    injected_dups = np.flatnonzero(role == 2)
    if not np.array_equal(np.sort(late_rows), injected_late):
        raise ValueError(f"the settings make {late_rows.size} ticks late by the 30 s rule, "
                         f"but {injected_late.size} were injected late: raise ticks_per_s "
                         "or lower late_rate")
    if not np.array_equal(np.sort(duplicate_rows), injected_dups):
        raise ValueError(f"{duplicate_rows.size} duplicates by the dedup rule, but "
                         f"{injected_dups.size} were injected: lower duplicate_rate")
