"""A payment network's event stream with the faults a payments team meets, and its truth.

``PaymentSimulation(seed=7, days=1, events=20_000).write("out/payments")`` writes
``payments.jsonl`` (one payment event a line, in the order a consumer would receive them)
and the truth beside it (``truth.py``). ``iter_lines()`` / ``iter_events()`` yield the
same stream without files (for Kafka producers).

Each event: ``transaction_id, sender_account, receiver_account, amount`` (a JSON number
with exactly two decimals: cents are the unit of every total), ``currency, merchant,
channel, event_time`` (ISO-8601 UTC, milliseconds, ``Z``). What is injected, exactly:

* **network-retry duplicates**: ``round(duplicate_rate * unique)`` extra events; a retried
  transaction is re-sent once (one in ten: twice) a little after the original, with the
  same transaction_id and content and an event_time a few seconds later -- or, one retry
  in four, a few seconds *earlier* (the earliest occurrence is the one to keep);
* **late events**: ``round(late_rate * unique)`` transactions delivered far behind the
  stream (70 min to 3 h): more than the 1 h watermark, so a correct pipeline quarantines
  them. Which events are late is decided by the watermark rule itself (``truth.py``),
  never by intent alone;
* **velocity fraud**: each day ``fraud_accounts`` accounts send ``burst_size`` payments
  within ``burst_span_s`` seconds (more than ``velocity_threshold`` in 10 minutes);
* **large amounts**: a ``large_rate`` share of payments between 5,000.01 and 50,000.

Everything comes from one ``numpy`` generator seeded with ``seed``: same settings, same
bytes. Event times start at ``start`` (UTC midnight), never at the wall clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from surestream.apps.payments.truth import PaymentTruth, build_truth

DAY_MS = 86_400_000
#: the watermark of the payment processor: events further behind are late
LATE_AFTER_MS = 3_600_000
CURRENCIES = ("USD", "EUR", "GBP")
CURRENCY_WEIGHTS = (0.6, 0.25, 0.15)
CHANNELS = ("web", "mobile", "pos", "api")
CHANNEL_WEIGHTS = (0.35, 0.4, 0.2, 0.05)
MERCHANTS = ("Acme Grocers", "Blue Bottle Cafe", "City Transit", "Delta Electronics",
             "Evergreen Pharmacy", "Fjord Books", "Granite Hardware", "Harbor Fuel",
             "Iris Fashion", "Juniper Travel", "Kestrel Telecom", "Lumen Utilities",
             "Maple Dining", "Nimbus Cloud", "Orchid Florist", "Pioneer Insurance")
DATA_FILE = "payments.jsonl"


@dataclass
class PaymentSimulation:
    """Settings of one simulated payment stream (see the module docstring)."""

    seed: int = 7
    days: int = 1
    #: unique transactions over all days (``tps`` given: ``tps`` x the span instead)
    events: int = 20_000
    tps: float | None = None
    #: the span of event time in hours (default: ``days`` x 24)
    hours: float | None = None
    start: str = "2026-03-02"
    duplicate_rate: float = 0.02
    late_rate: float = 0.001
    large_rate: float = 0.005
    fraud_accounts: int = 3
    burst_size: int = 8
    burst_span_s: int = 300
    velocity_threshold: int = 5
    #: sender accounts of ordinary traffic (default: one per 10 transactions a day, at
    #: least 1,000, so ordinary accounts stay far below the velocity threshold)
    accounts: int | None = None
    #: how far behind the stream an on-time event may arrive (ms)
    out_of_order_ms: int = 120_000

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if self.tps is not None and self.tps <= 0:
            raise ValueError("tps must be positive")
        if self.events < 1 and self.tps is None:
            raise ValueError("events must be at least 1")
        for name in ("duplicate_rate", "late_rate", "large_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.burst_size <= self.velocity_threshold and self.fraud_accounts:
            raise ValueError(f"burst_size ({self.burst_size}) must exceed velocity_threshold "
                             f"({self.velocity_threshold}) for a burst to be fraud")
        if self.hours is not None and self.hours <= 0:
            raise ValueError("hours must be positive")
        dt.date.fromisoformat(self.start)

    # -- sizes -------------------------------------------------------------------------
    @property
    def span_ms(self) -> int:
        return int((self.hours * 3_600_000) if self.hours is not None
                   else self.days * DAY_MS)

    @property
    def start_ms(self) -> int:
        day = dt.datetime.combine(dt.date.fromisoformat(self.start), dt.time(),
                                  tzinfo=dt.UTC)
        return int(day.timestamp() * 1000)

    @property
    def unique_transactions(self) -> int:
        if self.tps is not None:
            return max(1, round(self.tps * self.span_ms / 1000))
        return self.events

    # -- generation --------------------------------------------------------------------
    def generate(self) -> tuple[dict[str, np.ndarray], PaymentTruth]:
        """The stream as columns in delivery order, and its truth."""
        rng = np.random.default_rng(self.seed)
        n_days = -(-self.span_ms // DAY_MS)
        n = self.unique_transactions
        bursts = min(self.fraud_accounts * n_days, n // self.burst_size) \
            if self.burst_size else 0
        n_burst = bursts * self.burst_size
        n_plain = n - n_burst
        span, t0 = self.span_ms, self.start_ms

        ts = t0 + rng.integers(0, span, n_plain, dtype=np.int64)
        per_day = max(1, n * DAY_MS // max(span, 1))
        accounts = self.accounts or max(1000, per_day // 10)
        sender = rng.integers(0, accounts, n_plain, dtype=np.int64)
        # bursts: fraud accounts numbered after the ordinary ones
        b_ts, b_sender = [], []
        for b in range(bursts):
            day = b // self.fraud_accounts
            day_lo = t0 + day * DAY_MS
            day_hi = min(t0 + span, day_lo + DAY_MS) - self.burst_span_s * 1000 - 1
            begin = rng.integers(day_lo, max(day_lo + 1, day_hi))
            b_ts.append(np.sort(begin + rng.integers(0, self.burst_span_s * 1000,
                                                     self.burst_size)))
            b_sender.append(np.full(self.burst_size, accounts + b, dtype=np.int64))
        if b_ts:
            ts = np.concatenate([ts, *b_ts])
            sender = np.concatenate([sender, *b_sender])
        is_burst = np.zeros(n, dtype=bool)
        is_burst[n_plain:] = True
        order = np.argsort(ts, kind="stable")
        ts, sender, is_burst = ts[order], sender[order], is_burst[order]

        cents = np.round(np.exp(rng.normal(np.log(4_500), 1.3, n))).astype(np.int64)
        cents = np.clip(cents, 100, 500_000)  # 1.00 to 5,000.00
        large = rng.random(n) < self.large_rate
        cents[large] = rng.integers(500_001, 5_000_001, int(large.sum()))
        currency = rng.choice(len(CURRENCIES), n, p=CURRENCY_WEIGHTS)
        channel = rng.choice(len(CHANNELS), n, p=CHANNEL_WEIGHTS)
        merchant = rng.integers(0, len(MERCHANTS), n)
        receiver = rng.integers(0, 400, n)
        tx = np.arange(n, dtype=np.int64)

        # late transactions: ordinary ones, never retried
        n_late = round(self.late_rate * n)
        plain_idx = np.flatnonzero(~is_burst)
        late_idx = rng.choice(plain_idx, min(n_late, plain_idx.size), replace=False)
        delay = rng.integers(0, self.out_of_order_ms + 1, n, dtype=np.int64)
        delay[late_idx] = rng.integers(70 * 60_000, 180 * 60_000, late_idx.size)
        arrival = ts + delay

        # retries: round(rate * n) extra events; one retried transaction in ten twice
        n_dup = round(self.duplicate_rate * n)
        twice = n_dup // 10
        once = n_dup - 2 * twice
        candidates = np.setdiff1d(np.arange(n), late_idx)
        chosen = rng.choice(candidates, min(once + twice, candidates.size), replace=False)
        retried = np.concatenate([chosen, chosen[once:]])
        r_shift = rng.integers(1_000, 30_000, retried.size, dtype=np.int64)
        earlier = rng.random(retried.size) < 0.25
        r_ts = ts[retried] + np.where(earlier, -r_shift, r_shift)
        r_arrival = arrival[retried] + rng.integers(500, 30_000, retried.size)

        rows = np.concatenate([tx, retried])
        ev_ts = np.concatenate([ts, r_ts])
        ev_arrival = np.concatenate([arrival, r_arrival])
        deliver = np.lexsort((np.arange(rows.size), ev_arrival))
        cols = {
            "tx": rows[deliver], "event_ms": ev_ts[deliver],
            "sender": sender[rows[deliver]], "receiver": receiver[rows[deliver]],
            "cents": cents[rows[deliver]], "currency": currency[rows[deliver]],
            "merchant": merchant[rows[deliver]], "channel": channel[rows[deliver]],
        }
        truth = build_truth(cols, seed=self.seed, velocity_threshold=self.velocity_threshold,
                            late_after_ms=LATE_AFTER_MS, currencies=CURRENCIES,
                            settings=self.settings())
        return cols, truth

    def settings(self) -> dict[str, Any]:
        return {**asdict(self), "unique_transactions": self.unique_transactions}

    # -- output ------------------------------------------------------------------------
    def iter_lines(self, cols: dict[str, np.ndarray] | None = None) -> Iterator[bytes]:
        """The events as JSON lines (bytes, no newline), in delivery order."""
        if cols is None:
            cols, _ = self.generate()
        width = len(str(max(self.unique_transactions - 1, 1)))
        prefix = f"TX{self.seed:04d}"
        stamps = _iso_times(cols["event_ms"])
        for i in range(cols["tx"].size):
            c = int(cols["cents"][i])
            yield (f'{{"transaction_id":"{prefix}{int(cols["tx"][i]):0{width}d}",'
                   f'"sender_account":"ACC{int(cols["sender"][i]):07d}",'
                   f'"receiver_account":"MER{int(cols["receiver"][i]):05d}",'
                   f'"amount":{c // 100}.{c % 100:02d},'
                   f'"currency":"{CURRENCIES[cols["currency"][i]]}",'
                   f'"merchant":"{MERCHANTS[cols["merchant"][i]]}",'
                   f'"channel":"{CHANNELS[cols["channel"][i]]}",'
                   f'"event_time":"{stamps[i]}"}}').encode()

    def iter_events(self) -> Iterator[dict[str, Any]]:
        """The events as dicts (``amount`` a float with two decimals), in delivery order."""
        import orjson

        for line in self.iter_lines():
            yield orjson.loads(line)

    def write(self, folder: str | Path) -> PaymentTruth:
        """Write ``payments.jsonl`` and the truth (``truth.json``, ``truth_transactions
        .parquet``) into ``folder``; return the truth."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        cols, truth = self.generate()
        tmp = out / (DATA_FILE + ".tmp")
        with open(tmp, "wb") as f:
            chunk: list[bytes] = []
            for line in self.iter_lines(cols):
                chunk.append(line)
                if len(chunk) >= 65_536:
                    f.write(b"\n".join(chunk) + b"\n")
                    chunk.clear()
            if chunk:
                f.write(b"\n".join(chunk) + b"\n")
        tmp.replace(out / DATA_FILE)
        truth.write(out, transaction_id=self.transaction_ids)
        return truth

    def transaction_ids(self, tx: np.ndarray) -> list[str]:
        """The ``transaction_id`` of each transaction number."""
        width = len(str(max(self.unique_transactions - 1, 1)))
        prefix = f"TX{self.seed:04d}"
        return [f"{prefix}{int(t):0{width}d}" for t in tx]


def _iso_times(ms: np.ndarray) -> list[str]:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` for each epoch millisecond."""
    text = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms")
    return [t + "Z" for t in text.tolist()]
