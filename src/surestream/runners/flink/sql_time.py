"""SQL fragments for time: durations as Flink interval literals, and instants as epoch ms.

Flink SQL has no millisecond interval literal and cannot cast a TIMESTAMP_LTZ to a number,
so both go through ``DAY TO SECOND(3)`` intervals and ``TIMESTAMPDIFF`` (measured on 2.3.0).
"""

from __future__ import annotations

#: epoch ms of 1900-01-01T00:00:00Z: the base instants are measured from, so that the
#: whole seconds of every valid timestamp (our default range starts there) are positive
#: and TIMESTAMPDIFF's truncation is a floor
BASE_MS = -2_208_988_800_000
BASE_LTZ = f"TO_TIMESTAMP_LTZ({BASE_MS}, 3)"
BASE_TS = "TIMESTAMP '1900-01-01 00:00:00'"
#: DAY TO SECOND intervals hold up to 99 days (the default leading precision)
MAX_INTERVAL_MS = 100 * 86_400_000 - 1


def interval(ms: int) -> str:
    """``INTERVAL 'd hh:mm:ss.fff' DAY TO SECOND(3)`` for a non-negative duration."""
    if not 0 <= ms <= MAX_INTERVAL_MS:
        raise ValueError(f"{ms} ms is outside the Flink interval range 0..{MAX_INTERVAL_MS}")
    days, rest = divmod(ms, 86_400_000)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return (f"INTERVAL '{days} {hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}' "
            "DAY TO SECOND(3)")


def epoch_ms(expr: str, *, ltz: bool = True) -> str:
    """The epoch milliseconds of a TIMESTAMP_LTZ (or, ``ltz=False``, a UTC TIMESTAMP such as
    a window TVF's ``window_start``) as BIGINT; NULL stays NULL.

    TIMESTAMPDIFF returns an INT, so whole days are counted first (from the base, always
    positive) and the seconds within the day after them: no overflow for any valid time.
    EXTRACT(MILLISECOND) is the epoch ms' truncated remainder, negative before 1970
    (-500 for 1969-12-31 23:59:58.500; found by the differential suite: window starts
    before 1970 came out 1 s early), hence the floor modulo."""
    base = BASE_LTZ if ltz else BASE_TS
    days = f"TIMESTAMPDIFF(DAY, {base}, {expr})"
    seconds = f"TIMESTAMPDIFF(SECOND, TIMESTAMPADD(DAY, {days}, {base}), {expr})"
    millis = floor_mod(f"EXTRACT(MILLISECOND FROM {expr})", 1000)
    return (f"(CAST({days} AS BIGINT) * 86400000 + CAST({seconds} AS BIGINT) * 1000 "
            f"+ {millis} + ({BASE_MS}))")


def floor_mod(x: str, n: int) -> str:
    """``x`` mod ``n`` in [0, n) for negative ``x`` too (Flink's MOD keeps the sign of x)."""
    return f"MOD(MOD({x}, {n}) + {n}, {n})"
