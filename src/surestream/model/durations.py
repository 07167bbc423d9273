"""Durations written for people: ``7d``, ``90d``, ``2y``, ``500ms``, ``30 seconds`` -> ms.

Topic retentions are long (a week, ninety days, seven years); written in milliseconds they
are unreadable and easy to get wrong by a factor of 1000. A setting that takes a duration
accepts an integer (milliseconds, as Kafka takes it) or a number with one unit. A year is
365 days and a month is not offered: both would be ambiguous, and Kafka stores
milliseconds.
"""

from __future__ import annotations

import re

UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "min": 60_000, "h": 3_600_000,
           "d": 86_400_000, "w": 7 * 86_400_000, "y": 365 * 86_400_000}
#: units spelled out, as configurations written for Spark do (``"30 seconds"``,
#: ``"15 minutes"``): each is one of the short units above
UNIT_WORDS = {"millisecond": "ms", "milliseconds": "ms", "msec": "ms", "msecs": "ms",
              "second": "s", "seconds": "s", "sec": "s", "secs": "s",
              "minute": "m", "minutes": "m", "mins": "m", "hour": "h", "hours": "h",
              "day": "d", "days": "d", "week": "w", "weeks": "w", "year": "y", "years": "y"}
_DURATION = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$")
#: words Kafka spells -1 with: "keep for ever"
FOREVER = ("-1", "forever", "infinite", "unlimited")


def parse_duration_ms(value: object, *, allow_forever: bool = False) -> int:
    """``value`` in milliseconds: an int (or a string of digits) is taken as milliseconds,
    ``"<n><unit>"`` with a unit of ms, s, m/min, h, d, w, y (365 days). With
    ``allow_forever``, -1 and the words in ``FOREVER`` give -1 (Kafka's "no limit").
    Raises ValueError saying what is accepted."""
    if isinstance(value, bool):  # a YAML `yes` is not a duration
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int):
        if value == -1 and allow_forever:
            return -1
        if value < 0:
            raise ValueError(f"{value} is negative" + (" (-1 means forever)"
                                                       if allow_forever else ""))
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if allow_forever and text in FOREVER:
            return -1
        if text.isdigit():
            return int(text)
        found = _DURATION.match(text)
        if found:
            unit = UNIT_WORDS.get(found.group(2), found.group(2))
            if unit in UNIT_MS:
                return int(found.group(1)) * UNIT_MS[unit]
    hint = "; -1 or `forever` for no limit" if allow_forever else ""
    raise ValueError(f"{value!r} is not a duration: give milliseconds (604800000) or a "
                     f"number and a unit: ms, s, m, h, d, w, y (e.g. 7d, 90d, 2y; or spelled out: "
                     f"30 seconds, 15 minutes){hint}")
