"""Ctrl-C during ``surestream run``: the first one stops cleanly, a second one at once.

The first SIGINT only asks the runner to stop (``LocalRunner.request_stop``): it finishes
the batch in hand, takes a checkpoint a rerun resumes from, and returns; the command then
prints one line and exits 130 (128 + SIGINT, as shells report it). The handler is then
back to Python's default, so a second Ctrl-C raises ``KeyboardInterrupt`` wherever the
run is -- a source that blocks, a huge batch -- and the command exits 130 at once, without
the final checkpoint (the latest periodic one, if any, is where a rerun resumes).

SIGTERM (a service manager stopping a live run) asks for the same clean stop as the first
Ctrl-C; a second SIGTERM also stops at once. A live run stopped either way exits 0: it was
asked to stop, and did so with everything committed.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: the exit code of a run stopped by Ctrl-C (128 + SIGINT)
EXIT_INTERRUPTED = 128 + signal.SIGINT


@contextmanager
def stop_on_ctrl_c(request_stop: Callable[[], None]) -> Iterator[None]:
    """Inside this block the first Ctrl-C calls ``request_stop`` (which must only set a
    flag); a second one raises ``KeyboardInterrupt``. Outside the main thread, where no
    signal handler can be set, Ctrl-C keeps Python's default."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def first(signum: int, frame: object) -> None:  # noqa: ARG001 - the handler's signature
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _at_once)
        request_stop()

    previous = signal.signal(signal.SIGINT, first)
    previous_term = signal.signal(signal.SIGTERM, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)


def _at_once(signum: int, frame: object) -> None:  # noqa: ARG001 - the handler's signature
    """A second SIGTERM: stop now, as a second Ctrl-C does."""
    raise KeyboardInterrupt
