"""A child process that dies with the process that started it (Linux ``PR_SET_PDEATHSIG``).

Stdlib only: the job driver imports it too (``submit.DRIVER_MODULES``). Two links use it, so
a ``surestream run --runner flink`` killed by SIGKILL (an OOM killer, a dying machine's
supervisor, ``kill -9``) takes its whole Flink side with it at once:

- ``session.DriverProcess``: the command -> the job driver;
- ``driver.tie_gateway_to_driver``: the driver -> PyFlink's gateway JVM (the mini-cluster).
  Without it the JVM ends only once it notices its stdin closed and has run its shutdown
  hooks: measured 0.4-0.75 s after the driver died, time in which it still writes part
  files and checkpoints into folders the next run already owns.

The kernel sends the signal when the *thread* that forked the child ends: both children are
started from their parent's main thread. A parent that dies between the fork and the
``prctl`` is caught by comparing the parent pid afterwards.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent(*, new_group: bool = False,
                    then: Callable[[], None] | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` (it runs in the child between fork and exec): SIGKILL the child when
    the process calling this dies; ``new_group`` first puts the child in a session (and
    process group) of its own; ``then`` runs last (a caller's own preexec_fn)."""
    parent = os.getpid()

    def preexec() -> None:
        if new_group:
            os.setsid()
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # not Linux: the child outlives a killed parent
            pass
        else:
            if os.getppid() != parent:  # the parent died before the prctl took effect
                os.kill(os.getpid(), signal.SIGKILL)
        if then is not None:
            then()

    return preexec
