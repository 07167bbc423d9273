"""Limits on event time and durations, so that no arithmetic on time can overflow.

Event time is an int64 of milliseconds (SEMANTICS §1), and operators add durations to it:
the watermark subtracts the out-of-orderness, windows add their size, slide, offset and
allowed lateness, dedup adds its window and TTL, the late step computes ``W - ts``. An
int64 holds about 292 million years, so these sums overflow only when an input timestamp
or a configured duration is absurd -- which a typo or a garbage record easily is (a
timestamp of int64 max, ``1e300``, a year-9999 placeholder).

Two limits keep every such sum far inside int64:

- a timestamp must lie in the watermark step's range (``min_timestamp`` ..
  ``max_timestamp``, default the years 1900 to 2500); other records go to the errors output;
- a duration or offset in a spec, and each end of that range, is at most
  ``MAX_DURATION_MS`` (10^15 ms, about 31,700 years) in absolute value.

Any sum of a timestamp and a few thousand such durations then fits in an int64.
"""

from __future__ import annotations

import datetime as dt

#: Largest duration, offset or |timestamp bound| a spec may configure (about 31,700 years).
MAX_DURATION_MS = 10**15

#: The default range of valid event times: the years 1900 to 2500, both included.
DEFAULT_MIN_TIMESTAMP = "1900-01-01T00:00:00Z"
DEFAULT_MAX_TIMESTAMP = "2500-12-31T23:59:59.999Z"

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)


def to_epoch_ms(value: int | str | dt.datetime) -> int:
    """A timestamp bound as epoch milliseconds: an int is taken as ms, a string must be
    ISO-8601 with a zone (``2500-12-31T23:59:59.999Z``), a datetime must be aware."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a timestamp (give epoch ms or ISO-8601 with a zone)")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 timestamp "
                             "(e.g. 2500-12-31T23:59:59.999Z)") from None
    if not isinstance(value, dt.datetime):
        raise ValueError(f"{value!r} is not a timestamp (give epoch ms or ISO-8601 with a zone)")
    if value.tzinfo is None:
        raise ValueError(f"{value.isoformat()!r} has no zone; add one (e.g. Z for UTC)")
    return (value - _EPOCH) // _MS


def format_epoch_ms(ms: int) -> str:
    """``ms`` as ISO-8601 UTC with milliseconds where a datetime can hold it, else the
    number itself (for messages)."""
    try:
        text = (_EPOCH + ms * _MS).isoformat(timespec="milliseconds")
    except OverflowError:
        return f"{ms} ms"
    return text.replace("+00:00", "Z")
