"""Fraud indicators of each deduplicated payment: velocity per sender account, risk by
amount, and a combined score -- a keyed ``process`` step over runs (keyed by
``sender_account``), with its thresholds as the step's ``params``.

* ``velocity_count``: the sender's payments with event time in ``(t - window_ms, t]``
  (itself included; 10 minutes by default); ``velocity_flag`` when it is above
  ``velocity_threshold`` (N, default 5);
* ``risk_level``: ``HIGH`` when ``amount`` > ``high_above`` (5,000), ``MEDIUM`` when >
  ``medium_above`` (1,000), else ``LOW`` (compared in cents, exactly);
* ``fraud_score``: ``high_points`` (60) / ``medium_points`` (30) / 0, plus
  ``velocity_points`` (50) with the velocity flag, at most 100; ``is_suspicious`` when
  the score reaches ``suspicious_from`` (50).

The step holds each payment until the watermark reaches its event time and gets each
sender's payments in event-time order (``semantics/key_runs.py``), so the counts do not
depend on arrival order, batch size or a crash. A sender's state is the event times of
its payments in the last window (at most N + a few for an honest account), forgotten a
window after its last payment. Counting and scoring are numpy/polars over the run; only
the emitted records are Python dicts (the step's output form).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from surestream.semantics.key_runs import KeyRun, RunResult

DEFAULTS: dict[str, Any] = {
    "window_ms": 600_000,
    "velocity_threshold": 5,
    "high_above": 5000,
    "medium_above": 1000,
    "high_points": 60,
    "medium_points": 30,
    "velocity_points": 50,
    "suspicious_from": 50,
}


class FraudIndicators:
    """Velocity, risk level and score of each payment of one sender (see the module)."""

    def open(self, params: dict[str, Any]) -> None:
        self.p = {**DEFAULTS, **(params or {})}

    def process_run(self, run: KeyRun, state: list[int] | None) -> RunResult:
        window = int(self.p["window_ms"])
        before = np.asarray(state or [], dtype=np.int64)
        every = np.sort(np.concatenate([before, run.ts]))
        counts = (np.searchsorted(every, run.ts, side="right")
                  - np.searchsorted(every, run.ts - window, side="right"))
        rows = score(run.rows.with_columns(velocity_count=pl.Series(counts, dtype=pl.Int64)),
                     self.p)
        newest = int(every[-1])
        kept = every[every > newest - window].tolist()
        return RunResult(kept, list(enumerate(rows.to_dicts())), newest + window)


def score(frame: pl.DataFrame, params: dict[str, Any]) -> pl.DataFrame:
    """Add ``velocity_flag``, ``risk_level``, ``fraud_score`` and ``is_suspicious`` to a
    frame holding ``amount_cents`` and ``velocity_count`` (vectorized)."""
    p = {**DEFAULTS, **params}
    cents = pl.col("amount_cents")
    high, medium = round(p["high_above"] * 100), round(p["medium_above"] * 100)
    risk = (pl.when(cents > high).then(pl.lit("HIGH"))
            .when(cents > medium).then(pl.lit("MEDIUM")).otherwise(pl.lit("LOW")))
    points = (pl.when(cents > high).then(p["high_points"])
              .when(cents > medium).then(p["medium_points"]).otherwise(0))
    flag = pl.col("velocity_count") > int(p["velocity_threshold"])
    total = pl.min_horizontal(points + pl.when(flag).then(p["velocity_points"]).otherwise(0),
                              pl.lit(100)).cast(pl.Int64)
    return frame.with_columns(velocity_flag=flag, risk_level=risk, fraud_score=total) \
        .with_columns(is_suspicious=pl.col("fraud_score") >= int(p["suspicious_from"]))
