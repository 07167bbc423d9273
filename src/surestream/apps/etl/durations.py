"""The framework's durations and trigger modes, in surestream's milliseconds.

Spark writes intervals as words: ``"15 minutes"``, ``"30 seconds"``, ``"1 hour 30
minutes"`` (optionally after ``interval``); the framework also takes ``"10s"``-style
shorthands and integer milliseconds. Months and years have no fixed length in
milliseconds (an event-time window must), so they are refused, as are zero and negative
durations where a positive one is needed.

Trigger modes are ``processingtime=<duration>``, ``once``, ``availablenow`` and
``continuous`` (optionally ``continuous=<duration>``, Spark's checkpoint interval of a
continuous query), in any letter case, with ``:`` or ``=`` and spaces allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNIT_MS = {
    "ms": 1, "millisecond": 1, "milliseconds": 1, "milli": 1, "millis": 1,
    "s": 1_000, "sec": 1_000, "secs": 1_000, "second": 1_000, "seconds": 1_000,
    "m": 60_000, "min": 60_000, "mins": 60_000, "minute": 60_000, "minutes": 60_000,
    "h": 3_600_000, "hr": 3_600_000, "hrs": 3_600_000, "hour": 3_600_000,
    "hours": 3_600_000,
    "d": 86_400_000, "day": 86_400_000, "days": 86_400_000,
    "w": 7 * 86_400_000, "week": 7 * 86_400_000, "weeks": 7 * 86_400_000,
}
_VARIABLE = ("month", "months", "mon", "mons", "year", "years", "y", "yr", "yrs")
_PART = re.compile(r"(\d+)\s*([a-z]+)")


def parse_duration_ms(value: object, *, allow_zero: bool = False) -> int:
    """``"15 minutes"`` -> 900000; ``"1 hour 30 minutes"``, ``"30s"``, an integer
    (milliseconds) or a string of digits (milliseconds). Raises ValueError saying what
    is accepted."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int):
        total = value
    elif isinstance(value, str):
        total = _parse_words(value)
    else:
        raise ValueError(f"{value!r} is not a duration: give a string such as \"15 minutes\" "
                         "or an integer of milliseconds")
    if total < 0 or (total == 0 and not allow_zero):
        raise ValueError(f"{value!r}: the duration must be "
                         + ("zero or more" if allow_zero else "more than zero"))
    return total


def _parse_words(value: str) -> int:
    text = value.strip().lower()
    text = text.removeprefix("interval").strip()
    if text.isdigit():
        return int(text)
    parts = _PART.findall(text)
    if not parts or _PART.sub("", text).strip(" ,"):
        raise ValueError(f"{value!r} is not a duration: give a number and a unit, e.g. "
                         "\"15 minutes\", \"30 seconds\", \"1 hour 30 minutes\", \"500 ms\"")
    total = 0
    for number, unit in parts:
        if unit in _VARIABLE:
            raise ValueError(f"{value!r}: a {unit.rstrip('s')} has no fixed length in "
                             "milliseconds (event time needs one); give days or weeks")
        if unit not in _UNIT_MS:
            raise ValueError(f"{value!r}: unknown unit {unit!r} (milliseconds, seconds, "
                             "minutes, hours, days, weeks)")
        total += int(number) * _UNIT_MS[unit]
    return total


@dataclass(frozen=True)
class TriggerMode:
    """A parsed ``triggerMode``: ``kind`` is processing_time, once, available_now or
    continuous; ``interval_ms`` the processing-time interval, or a continuous query's
    checkpoint interval when one is written (``continuous=1 second``)."""

    kind: str
    interval_ms: int | None = None


_TRIGGER = re.compile(r"^\s*([a-z_ ]+?)\s*(?:[=:]\s*(.+?))?\s*$")
_TRIGGER_KINDS = {"processingtime": "processing_time", "once": "once",
                  "availablenow": "available_now", "continuous": "continuous"}


def parse_trigger_mode(value: str) -> TriggerMode:
    """``"processingtime=30 seconds"`` -> ``TriggerMode("processing_time", 30000)``."""
    found = _TRIGGER.match(value.lower())
    name = found.group(1).replace("_", "").replace(" ", "") if found else ""
    kind = _TRIGGER_KINDS.get(name)
    if kind is None:
        raise ValueError(f"{value!r} is not a trigger mode: give processingtime=<duration> "
                         "(e.g. \"processingtime=30 seconds\"), once, availablenow or "
                         "continuous (optionally continuous=<checkpoint interval>)")
    interval = found.group(2)
    if kind in ("once", "available_now") and interval:
        raise ValueError(f"{value!r}: {name} takes no duration")
    if kind == "processing_time" and not interval:
        raise ValueError(f"{value!r}: processingtime needs its interval, e.g. "
                         "\"processingtime=30 seconds\"")
    return TriggerMode(kind, parse_duration_ms(interval) if interval else None)
