"""How big an operator's state is, cheaply: the figures behind the ``state_gauges`` methods.

The people watching a run want to see state grow (keys, pending windows, timers, bytes)
without the watching costing the run anything: a gauge is read at most a few times a
second, in the runner's thread, between steps. So no gauge walks the state: counts are
lengths the operators keep anyway, and bytes are an *estimate* -- the exact size of the
numpy arrays and polars frames (``nbytes``, ``estimated_size``) plus, for state held in
Python dicts, heaps and objects, a fixed cost per entry. The per-entry costs below were
measured with ``sys.getsizeof`` on 64-bit CPython 3.11 (a key tuple of one short string,
timestamps beyond the small-int cache); user values of a process function are counted at
``USER_VALUE_BYTES`` each, whatever they hold.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: one dict entry (hash, key and value pointers, amortized over the table's spare room)
DICT_ENTRY_BYTES = 56
#: a key tuple of one short string (the tuple and the string)
KEY_BYTES = 104
#: a heap entry: a list slot and a tuple of two or three large ints
HEAP_ENTRY_BYTES = 128
#: a slotted dataclass of six to nine fields (a keep-last window, a session) and its ints
WINDOW_OBJECT_BYTES = 256
#: a set entry (a window's membership in the frame it points into)
SET_ENTRY_BYTES = 40
#: a value a process function keeps in its state, whatever it is
USER_VALUE_BYTES = 64


def arrays_bytes(*arrays: np.ndarray) -> int:
    """The bytes of numpy arrays' buffers."""
    return int(sum(a.nbytes for a in arrays))


def accumulators_bytes(aggregates: Any) -> int:
    """The numpy arrays of a window operator's accumulators (``AggregateSet.accs``), plus
    a pointer and ``USER_VALUE_BYTES`` per object in the lists and object arrays of
    accumulators that keep Python values (user functions, ``first``/``last`` of strings)."""
    total = 0
    for acc in aggregates.accs:
        for value in vars(acc).values():
            if isinstance(value, np.ndarray):
                total += value.nbytes
                if value.dtype == object:
                    total += value.size * USER_VALUE_BYTES
            elif isinstance(value, list):
                total += len(value) * (8 + USER_VALUE_BYTES)
    return total
