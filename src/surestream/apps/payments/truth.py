"""The truth of a payment simulation: what a correct payment processor must produce.

Computed from the delivered stream itself with the processor's documented rules, in
``numpy``, independently of the pipeline's code:

* **late**: an event is late when its event time is more than ``late_after_ms`` behind
  the largest event time delivered before it (the 1 h watermark: ``ts <= max_before -
  late_after_ms - 1``). Late events are quarantined, in no table.
* **transactions**: the distinct ``transaction_id`` values among on-time events; each
  keeps its *earliest* on-time occurrence (its event time decides its UTC day).
* **duplicates**: on-time occurrences beyond the first (``occurrences - 1``);
  ``deduplication_audit`` holds one row per transaction with two or more occurrences:
  ``first_occurrence_time`` (the earliest) and ``duplicate_occurrences`` (all of them).
* **fraud**: ``velocity_count`` = the sender's transactions with event time in
  ``(t - 10 min, t]`` (itself included); ``velocity_flag`` when above the threshold;
  ``risk_level`` HIGH above 5,000.00, MEDIUM above 1,000.00, else LOW;
  ``fraud_score`` = 60 (HIGH) / 30 (MEDIUM) / 0 + 50 with the velocity flag, at most
  100; ``is_suspicious`` when the score is 50 or more.

``truth.json`` holds the per-day figures; ``truth_transactions.parquet`` one row per
expected transaction (with its fraud expectations and occurrences).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

VELOCITY_WINDOW_MS = 600_000
HIGH_ABOVE_CENTS = 500_000
MEDIUM_ABOVE_CENTS = 100_000
TRUTH_FILE = "truth.json"
TRANSACTIONS_FILE = "truth_transactions.parquet"
DAY_MS = 86_400_000


@dataclass
class DayTruth:
    """The expected figures of one UTC day (by the kept occurrence's event time)."""

    transactions: int = 0
    amount_cents: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    #: transactions with two or more on-time occurrences (``deduplication_audit`` rows)
    audit_rows: int = 0
    late: int = 0
    risk_levels: dict[str, int] = field(default_factory=dict)
    velocity_flagged: int = 0
    suspicious: int = 0

    @property
    def duplicate_rate(self) -> float:
        """Dropped duplicates per on-time event received, in percent."""
        received = self.transactions + self.duplicates
        return 100.0 * self.duplicates / received if received else 0.0


@dataclass
class PaymentTruth:
    """Per-day expectations plus totals and the simulation's settings."""

    seed: int = 0
    events: int = 0
    late_after_ms: int = 3_600_000
    velocity_threshold: int = 5
    days: dict[str, DayTruth] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    #: per expected transaction (columns; not in truth.json)
    transactions: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def unique(self) -> int:
        return sum(d.transactions for d in self.days.values())

    @property
    def duplicates(self) -> int:
        return sum(d.duplicates for d in self.days.values())

    @property
    def late(self) -> int:
        return sum(d.late for d in self.days.values())

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "events": self.events, "unique": self.unique,
                "duplicates": self.duplicates, "late": self.late,
                "late_after_ms": self.late_after_ms,
                "velocity_threshold": self.velocity_threshold,
                "days": {d: asdict(t) for d, t in self.days.items()},
                "settings": self.settings}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PaymentTruth:
        return cls(seed=data["seed"], events=data["events"],
                   late_after_ms=data["late_after_ms"],
                   velocity_threshold=data["velocity_threshold"],
                   days={d: DayTruth(**t) for d, t in data["days"].items()},
                   settings=data.get("settings", {}))

    @classmethod
    def read(cls, folder_or_file: str | Path) -> PaymentTruth:
        """Read ``truth.json`` (a folder holding it, or the file)."""
        import orjson

        path = Path(folder_or_file)
        if path.is_dir():
            path = path / TRUTH_FILE
        return cls.from_dict(orjson.loads(path.read_bytes()))

    def write(self, folder: Path,
              transaction_id: Callable[[np.ndarray], list[str]] | None = None) -> None:
        """``truth.json`` and ``truth_transactions.parquet`` into ``folder``."""
        import orjson
        import polars as pl

        (folder / TRUTH_FILE).write_bytes(
            orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
        cols = dict(self.transactions)
        if transaction_id is not None and "tx" in cols:
            cols = {"transaction_id": transaction_id(cols.pop("tx")), **cols}
        pl.DataFrame(cols).write_parquet(folder / TRANSACTIONS_FILE)

    def table(self) -> list[str]:
        """The per-day truth as printable lines."""
        lines = [f"{'day':<12}{'transactions':>13}{'duplicates':>11}{'dup %':>7}"
                 f"{'late':>6}{'velocity':>9}{'HIGH':>6}  amounts"]
        for day, t in self.days.items():
            amounts = ", ".join(f"{c} {format_cents(v)}" for c, v in t.amount_cents.items())
            lines.append(f"{day:<12}{t.transactions:>13,}{t.duplicates:>11,}"
                         f"{t.duplicate_rate:>7.2f}{t.late:>6,}{t.velocity_flagged:>9,}"
                         f"{t.risk_levels.get('HIGH', 0):>6,}  {amounts}")
        return lines


def format_cents(cents: int) -> str:
    """``1234567`` -> ``12,345.67`` (exact)."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(int(cents)), 100)
    return f"{sign}{whole:,}.{part:02d}"


def late_mask(event_ms: np.ndarray, late_after_ms: int) -> np.ndarray:
    """Which events are late: behind ``max(before) - late_after_ms - 1`` (SEMANTICS §3)."""
    before = np.maximum.accumulate(event_ms)
    before = np.concatenate([[np.iinfo(np.int64).min // 2], before[:-1]])
    return event_ms <= before - late_after_ms - 1


def velocity_counts(sender: np.ndarray, ts: np.ndarray, window_ms: int) -> np.ndarray:
    """Per transaction: its sender's transactions with event time in ``(ts - window, ts]``."""
    if ts.size == 0:
        return np.zeros(0, dtype=np.int64)
    base = ts.min() - window_ms - 1
    span = int(ts.max() - base + 1)
    key = sender.astype(np.int64) * span + (ts - base)
    ordered = np.sort(key)
    upper = np.searchsorted(ordered, key, side="right")
    lower = np.searchsorted(ordered, key - window_ms, side="right")
    return (upper - lower).astype(np.int64)


def build_truth(cols: dict[str, np.ndarray], *, seed: int, velocity_threshold: int,
                late_after_ms: int, currencies: tuple[str, ...],
                settings: dict[str, Any]) -> PaymentTruth:
    """The truth of the stream ``cols`` (columns in delivery order, see ``simulator``)."""
    tx, ts = cols["tx"], cols["event_ms"]
    late = late_mask(ts, late_after_ms)
    on = ~late
    # earliest on-time occurrence of each transaction, and its occurrence count
    order = np.lexsort((ts[on], tx[on]))
    on_idx = np.flatnonzero(on)[order]
    first = np.ones(on_idx.size, dtype=bool)
    first[1:] = tx[on_idx][1:] != tx[on_idx][:-1]
    kept = on_idx[first]
    starts = np.flatnonzero(first)
    occurrences = np.diff(np.append(starts, on_idx.size))

    k_ts = ts[kept]
    cents = cols["cents"][kept]
    velocity = velocity_counts(cols["sender"][kept], k_ts, VELOCITY_WINDOW_MS)
    v_flag = velocity > velocity_threshold
    risk = np.where(cents > HIGH_ABOVE_CENTS, 2, np.where(cents > MEDIUM_ABOVE_CENTS, 1, 0))
    score = np.minimum(100, np.array([0, 30, 60])[risk] + np.where(v_flag, 50, 0))
    day = (k_ts // DAY_MS) * DAY_MS
    truth = PaymentTruth(seed=seed, events=int(tx.size), late_after_ms=late_after_ms,
                         velocity_threshold=velocity_threshold, settings=settings)
    days = sorted(set(day.tolist()) | set(((ts[late] // DAY_MS) * DAY_MS).tolist()))
    levels = ("LOW", "MEDIUM", "HIGH")
    for d in days:
        label = str(np.datetime64(d, "ms").astype("datetime64[D]"))
        m = day == d
        t = DayTruth(transactions=int(m.sum()),
                     duplicates=int((occurrences[m] - 1).sum()),
                     audit_rows=int((occurrences[m] > 1).sum()),
                     late=int((late & (ts // DAY_MS * DAY_MS == d)).sum()),
                     velocity_flagged=int(v_flag[m].sum()),
                     suspicious=int((score[m] >= 50).sum()))
        for c, name in enumerate(currencies):
            total = int(cents[m & (cols["currency"][kept] == c)].sum())
            if m.any():
                t.amount_cents[name] = total
        t.risk_levels = {name: int((risk[m] == i).sum()) for i, name in enumerate(levels)}
        truth.days[label] = t
    truth.transactions = {
        "tx": tx[kept], "event_time_ms": k_ts, "amount_cents": cents,
        "currency": np.array(currencies)[cols["currency"][kept]],
        "sender": cols["sender"][kept],
        "occurrences": occurrences.astype(np.int64),
        "velocity_count": velocity, "velocity_flag": v_flag,
        "risk_level": np.array(levels)[risk], "fraud_score": score.astype(np.int64),
        "is_suspicious": score >= 50,
    }
    late_tx = tx[late]
    truth.settings = {**settings, "late_transactions": int(np.unique(late_tx).size)}
    return truth
