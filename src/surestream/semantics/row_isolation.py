"""Find the records a vectorized step fails on, so that one bad value costs one record.

A columnar step (a SQL expression, a user's ``map_batches`` function) runs over a whole
batch at once; when one value does not fit (``CAST('abc' AS INT)``), the whole call fails.
Sending the whole batch to errors would make the cost of a bad value depend on the batch
size -- 1 record at ``batch_size: 1``, 65,536 at the default -- and make the results depend
on it too. Instead the failing range is bisected until each failure stands alone:

- a good batch costs one call (the fast path is untouched);
- ``k`` bad records in ``n`` cost about ``2 k log2(n / k)`` more calls, each on a slice;
- a record fails if and only if it fails alone, whatever the batch size, as long as the
  step treats rows independently (SQL expressions do; a user function that looks at other
  rows of its batch cannot be batch-size independent anyway).

The parsers use the same idea for lines that do not parse (``connectors/parsing.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

#: Below this many rows a failing range is tried row by row instead of halved again: it
#: saves the calls on the inner nodes of the bisection when most rows are bad.
ROW_BY_ROW_BELOW = 8


@dataclass(slots=True)
class Isolated(Generic[T]):
    """The outcome over rows ``0..n-1``: the results of the ranges that succeeded and the
    rows that failed alone, each in row order."""

    results: list[tuple[int, int, T]] = field(default_factory=list)  # (lo, hi, result)
    failures: list[tuple[int, Exception]] = field(default_factory=list)  # (row, exception)


def isolate_failures(n: int, attempt: Callable[[int, int], T],
                     whole_failed: bool = False) -> Isolated[T]:
    """Apply ``attempt(lo, hi)`` to rows ``[0, n)``, bisecting every range that raises.

    ``whole_failed``: the caller already tried ``[0, n)`` and it raised (it is not tried
    again). A row's reported exception always comes from ``attempt(row, row + 1)`` called
    at one place, so its message and traceback are the same at every batch size.
    """
    out: Isolated[T] = Isolated()

    def alone(row: int) -> None:
        try:
            out.results.append((row, row + 1, attempt(row, row + 1)))
        except Exception as e:  # noqa: BLE001 - the row does not fit the step
            out.failures.append((row, e))

    def run(lo: int, hi: int, failed: bool) -> None:
        if not failed and hi - lo > 1:
            try:
                out.results.append((lo, hi, attempt(lo, hi)))
                return
            except Exception:  # noqa: BLE001 - some rows do not fit: look closer
                pass
        if hi - lo < ROW_BY_ROW_BELOW:
            for row in range(lo, hi):
                alone(row)
        else:
            mid = (lo + hi) // 2
            run(lo, mid, failed=False)
            run(mid, hi, failed=False)

    if n:
        run(0, n, whole_failed)
    return out
