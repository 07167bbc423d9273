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
window after its last payment.

``process_runs`` does the same for all the senders of a batch at once (the operator's
columnar form): every sender's earlier event times are put before its released payments,
everything is sorted by (sender, event time) as one composite int64 key, and two
``np.searchsorted`` give every count; scoring is one polars expression over the batch. So
a payment costs a few microseconds whatever the number of senders; ``process_run`` (one
sender) stays as the reference it must equal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from surestream.semantics.key_runs import KeyRun, KeyRuns, RunResult, RunsResult

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

    def process_runs(self, runs: KeyRuns) -> RunsResult:
        window = int(self.p["window_ms"])
        counts, states, expires = velocity(runs.starts, runs.ts, runs.states, window)
        rows = score(runs.rows.with_columns(velocity_count=pl.Series(counts, dtype=pl.Int64)),
                     self.p)
        return RunsResult(states, expires, rows)


def velocity(starts: np.ndarray, ts: np.ndarray, states: list[list[int] | None],
             window: int) -> tuple[np.ndarray, list[list[int]], list[int]]:
    """For runs ``starts[i]:starts[i + 1]`` of ``ts`` with the earlier event times
    ``states[i]``: each row's count of its run's and state's times in ``(t - window, t]``,
    each run's new state (times after its newest minus ``window``, ascending) and expiry
    (newest + ``window``) -- what ``process_run`` gives run by run."""
    ts = np.asarray(ts, dtype=np.int64)
    n_runs = len(starts) - 1
    lengths = np.diff(starts)
    group = np.repeat(np.arange(n_runs, dtype=np.int64), lengths)
    held = [(i, s) for i, s in enumerate(states) if s]
    if held:
        held_ts = np.fromiter((t for _, s in held for t in s), dtype=np.int64)
        held_group = np.repeat(np.array([i for i, _ in held], dtype=np.int64),
                               [len(s) for _, s in held])
        every_ts, every_group = np.concatenate([held_ts, ts]), np.concatenate([held_group,
                                                                              group])
    else:
        every_ts, every_group = ts, group
    # composite key: group * (distinct times + 1) + rank of the time (exact, no overflow)
    times = np.unique(every_ts)
    width = len(times) + 1
    composite = np.sort(every_group * width + np.searchsorted(times, every_ts))
    base = group * width - 1  # just below the group's first slot
    upper = np.searchsorted(composite, base + np.searchsorted(times, ts, side="right"),
                            side="right")
    lower = np.searchsorted(composite, base + np.searchsorted(times, ts - window,
                                                              side="right"), side="right")
    counts = upper - lower
    # per run: its sorted times are composite[first:end]; keep those after newest - window
    ends = np.searchsorted(composite, np.arange(1, n_runs + 1, dtype=np.int64) * width - 1,
                           side="left")
    sorted_ts = times[composite % width]
    newest = sorted_ts[ends - 1]
    sorted_group = composite // width
    keep = sorted_ts > newest[sorted_group] - window
    kept_ts, kept_group = sorted_ts[keep], sorted_group[keep]
    bounds = np.searchsorted(kept_group, np.arange(n_runs + 1, dtype=np.int64), side="left")
    flat = kept_ts.tolist()
    new_states = [flat[a:b] for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(),
                                            strict=True)]
    return counts, new_states, (newest + window).tolist()


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
