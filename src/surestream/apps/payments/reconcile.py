"""Reconciliation of the payments tables, the way an auditor asks for it.

Per UTC day of ``payment_transactions``: ``COUNT(DISTINCT transaction_id)``, ``COUNT(*)``
and the total amount per currency (exact, in cents): **PASS** when the two counts are
equal, else **FAIL - DUPLICATES DETECTED**. Beside it the day's health: duplicates dropped
(from ``deduplication_audit``: occurrences beyond the first, on the day of the first),
late payments quarantined (``quarantine_late_payments``, by their event time) and the
duplicate rate = duplicates / (unique + duplicates), in the seed's bands
(``duplicate_band``). Given the simulator's truth, every figure is compared with it
(transactions, amounts, duplicates, late, audit rows, velocity flags, risk levels,
suspicious payments): a day passes only if they are all equal.

With the run's checkpoint folder, the dedup operator's state (keys per checkpoint, from
``run-history.jsonl``) is shown over time and judged *bounded*: its peak may not exceed
the transactions of any ``state_window_ms`` stretch of event time (state TTL + watermark +
dedup window: 3 h with the defaults) -- what a state that forgets expired keys holds at
most, far below everything seen once a run spans more than that.

Tables are read from PostgreSQL (a ``postgresql://`` DSN) or a DuckDB file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from surestream.apps.payments.template import TABLES
from surestream.apps.payments.truth import PaymentTruth, format_cents

DAY_MS = 86_400_000
PASS = "PASS"
FAIL_DUPLICATES = "FAIL - DUPLICATES DETECTED"
DEDUP_OPERATOR = "dedup_by_transaction_id"
#: the seed's duplicate-rate bands (percent): upper bound (exclusive) -> verdict
BANDS = ((1.0, "excellent"), (5.0, "normal"),
         (10.0, "elevated: check the senders' retry settings"),
         (float("inf"), "investigate"))


def duplicate_band(rate_pct: float) -> str:
    """The seed's band of a duplicate rate: 0-1 % excellent, 1-5 % normal, 5-10 %
    elevated, above 10 % investigate."""
    return next(name for upper, name in BANDS if rate_pct < upper or
                (upper == 10.0 and rate_pct == 10.0))


class Tables:
    """Read-only SQL over the payments tables: PostgreSQL (DSN) or a DuckDB file."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.postgres = target.startswith(("postgresql://", "postgres://")) \
            or ("=" in target and not Path(target).exists())
        if self.postgres:
            import psycopg

            self._con: Any = psycopg.connect(target, autocommit=True)
        else:
            import duckdb

            if not Path(target).exists():
                raise FileNotFoundError(f"{target}: no such DuckDB file (the processor's "
                                        "duckdb_path, default <out_dir>/payments.duckdb)")
            self._con = duckdb.connect(target, read_only=True)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return list(self._con.execute(sql).fetchall())

    def has(self, table: str) -> bool:
        if self.postgres:
            return bool(self.rows(f"SELECT to_regclass('{table}') IS NOT NULL")[0][0])
        return bool(self.rows("SELECT count(*) FROM information_schema.tables "
                              f"WHERE table_name = '{table}'")[0][0])

    def close(self) -> None:
        self._con.close()


@dataclass
class DayReport:
    """One day's figures, as found in the tables (and the truth's, when given)."""

    day: str
    distinct: int = 0
    rows: int = 0
    amount_cents: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    audit_rows: int = 0
    late: int = 0
    velocity_flagged: int = 0
    risk_levels: dict[str, int] = field(default_factory=dict)
    suspicious: int = 0
    fraud_rows: int = 0
    #: figure -> (table, truth) for each figure that differs from the truth
    mismatches: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    compared: bool = False

    @property
    def status(self) -> str:
        return PASS if self.distinct == self.rows else FAIL_DUPLICATES

    @property
    def duplicate_rate(self) -> float:
        received = self.distinct + self.duplicates
        return 100.0 * self.duplicates / received if received else 0.0

    @property
    def ok(self) -> bool:
        return self.status == PASS and not self.mismatches


@dataclass
class StateReport:
    """The dedup operator's state over the run's checkpoints."""

    keys: list[int] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)
    bound: int = 0
    window_ms: int = 0

    @property
    def peak(self) -> int:
        return max(self.keys, default=0)

    @property
    def bounded(self) -> bool:
        return self.peak <= self.bound


@dataclass
class Reconciliation:
    days: list[DayReport]
    state: StateReport | None = None
    truth_given: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.days) and all(d.ok for d in self.days) and \
            (self.state is None or self.state.bounded)

    def lines(self) -> list[str]:
        """The printed report."""
        out = [f"{'day':<12}{'distinct':>10}{'rows':>10}{'dups':>7}{'dup %':>7}  "
               f"{'band':<10}{'late':>6}  {'status':<28}amounts"]
        for d in self.days:
            amounts = ", ".join(f"{c} {format_cents(v)}" for c, v in d.amount_cents.items())
            status = d.status if not d.mismatches else f"{d.status} (TRUTH DIFFERS)"
            out.append(f"{d.day:<12}{d.distinct:>10,}{d.rows:>10,}{d.duplicates:>7,}"
                       f"{d.duplicate_rate:>7.2f}  {duplicate_band(d.duplicate_rate)[:9]:<10}"
                       f"{d.late:>6,}  {status:<28}{amounts}")
        for d in self.days:
            for figure, (found, want) in d.mismatches.items():
                out.append(f"  {d.day} {figure}: table {found} != truth {want}")
        if self.truth_given and all(not d.mismatches for d in self.days):
            out.append("truth: every figure equal (transactions, amounts, duplicates, audit "
                       "rows, late, velocity flags, risk levels, suspicious)")
        fraud = [f"{d.day}: velocity {d.velocity_flagged}, HIGH "
                 f"{d.risk_levels.get('HIGH', 0)}, MEDIUM {d.risk_levels.get('MEDIUM', 0)}, "
                 f"suspicious {d.suspicious}" for d in self.days]
        out.append("fraud: " + "; ".join(fraud))
        if self.state is not None:
            s = self.state
            out.append(f"dedup state over {len(s.keys)} checkpoints (keys): "
                       f"{sparkline(s.keys)} peak {s.peak:,}, last "
                       f"{s.keys[-1] if s.keys else 0:,}; bound {s.bound:,} (transactions in "
                       f"{s.window_ms // 60_000} min of event time): "
                       f"{'BOUNDED' if s.bounded else 'NOT BOUNDED'}")
        out.append("RECONCILIATION " + ("PASS" if self.ok else "FAIL"))
        return out


def sparkline(values: Sequence[int], width: int = 24) -> str:
    """A one-line chart of ``values`` (sampled down to ``width`` points)."""
    if not values:
        return ""
    marks = "▁▂▃▄▅▆▇█"
    idx = np.linspace(0, len(values) - 1, min(width, len(values))).round().astype(int)
    picked = np.asarray(values)[idx]
    top = max(int(picked.max()), 1)
    return "".join(marks[min(7, int(v) * 8 // (top + 1))] for v in picked)


def _day(day_number: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=int(day_number))).isoformat()


def reconcile(target: str, truth: PaymentTruth | None = None,
              checkpoint_dir: str | Path | None = None,
              state_window_ms: int = 3 * 3_600_000) -> Reconciliation:
    """Reconcile the tables at ``target`` (a DSN or a DuckDB file); see the module."""
    db = Tables(target)
    try:
        days = _figures(db)
        if truth is not None:
            _compare(days, truth)
        state = None
        if checkpoint_dir is not None:
            state = state_over_time(checkpoint_dir, _event_times(db), state_window_ms)
    finally:
        db.close()
    return Reconciliation(sorted(days.values(), key=lambda d: d.day), state,
                          truth_given=truth is not None)


def _figures(db: Tables) -> dict[str, DayReport]:
    t, fraud, audit, late = (TABLES[k] for k in ("transactions", "fraud", "audit",
                                                 "late_payments"))
    days: dict[str, DayReport] = {}

    def day(name: str) -> DayReport:
        return days.setdefault(name, DayReport(name))

    if not db.has(t):
        raise LookupError(f"table {t} is missing at {db.target}: has the payments pipeline "
                          "run (and committed a checkpoint) into it?")
    for d, distinct, rows in db.rows(
            f"SELECT event_date, COUNT(DISTINCT transaction_id), COUNT(*) FROM {t} "
            "GROUP BY event_date"):
        day(d).distinct, day(d).rows = int(distinct), int(rows)
    for d, currency, cents in db.rows(
            f"SELECT event_date, currency, SUM(amount_cents) FROM {t} "
            "GROUP BY event_date, currency ORDER BY currency"):
        day(d).amount_cents[currency] = int(cents)
    day_of = "CAST(FLOOR({} / 86400000.0) AS BIGINT)"
    if db.has(audit):
        for n, rows, extra in db.rows(
                f"SELECT {day_of.format('first_occurrence_time')}, COUNT(*), "
                f"SUM(duplicate_occurrences - 1) FROM {audit} GROUP BY 1"):
            day(_day(n)).audit_rows, day(_day(n)).duplicates = int(rows), int(extra)
    if db.has(late):
        for n, count in db.rows(f"SELECT {day_of.format('original_timestamp')}, COUNT(*) "
                                f"FROM {late} GROUP BY 1"):
            day(_day(n)).late = int(count)
    if db.has(fraud):
        for d, rows, velocity, suspicious in db.rows(
                f"SELECT event_date, COUNT(*), "
                f"SUM(CASE WHEN velocity_flag THEN 1 ELSE 0 END), "
                f"SUM(CASE WHEN is_suspicious THEN 1 ELSE 0 END) FROM {fraud} "
                "GROUP BY event_date"):
            r = day(d)
            r.fraud_rows, r.velocity_flagged, r.suspicious = int(rows), int(velocity), \
                int(suspicious)
        for d, level, count in db.rows(f"SELECT event_date, risk_level, COUNT(*) FROM {fraud} "
                                       "GROUP BY event_date, risk_level"):
            day(d).risk_levels[level] = int(count)
    return days


def _compare(days: dict[str, DayReport], truth: PaymentTruth) -> None:
    for name in truth.days:
        days.setdefault(name, DayReport(name))
    for name, got in days.items():
        want = truth.days.get(name)
        got.compared = True
        if want is None:
            got.mismatches["day"] = ("present", "absent")
            continue
        levels = {k: v for k, v in want.risk_levels.items() if v}
        figures = {
            "transactions (distinct)": (got.distinct, want.transactions),
            "rows": (got.rows, want.transactions),
            "amount_cents": (got.amount_cents, {c: v for c, v in want.amount_cents.items()
                                                if v or c in got.amount_cents}),
            "duplicates": (got.duplicates, want.duplicates),
            "audit rows": (got.audit_rows, want.audit_rows),
            "late": (got.late, want.late),
            "fraud rows": (got.fraud_rows, want.transactions),
            "velocity flagged": (got.velocity_flagged, want.velocity_flagged),
            "risk levels": (got.risk_levels, levels),
            "suspicious": (got.suspicious, want.suspicious),
        }
        for figure, (found, expected) in figures.items():
            if found != expected:
                got.mismatches[figure] = (found, expected)


def _event_times(db: Tables) -> np.ndarray:
    rows = db.rows(f"SELECT event_time_ms FROM {TABLES['transactions']} ORDER BY 1")
    return np.asarray([r[0] for r in rows], dtype=np.int64)


def state_over_time(checkpoint_dir: str | Path, event_ms: np.ndarray,
                    window_ms: int) -> StateReport:
    """The dedup operator's state keys/bytes at each checkpoint of the run's history, and
    the bound: the most transactions within any ``window_ms`` of event time."""
    from surestream.runners.local.telemetry import read_history

    report = StateReport(window_ms=window_ms)
    for line in read_history(Path(checkpoint_dir)):
        if line.get("kind") != "checkpoint":
            continue
        state = line.get("operators", {}).get(DEDUP_OPERATOR, {}).get("state")
        if state:
            report.keys.append(int(state.get("keys", 0)))
            report.bytes.append(int(state.get("bytes", 0)))
    if event_ms.size:
        ends = np.searchsorted(event_ms, event_ms + window_ms, side="left")
        report.bound = int((ends - np.arange(event_ms.size)).max())
    return report
