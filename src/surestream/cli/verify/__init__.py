"""``surestream verify SPEC``: prove the exactly-once promises on a pipeline's bounded input.

With ``--journal DIR``, a live run instead: its journal replayed (``live``).

Every run is a real ``surestream run`` child process with its own output and checkpoint
folders under a work folder (``runs``). The checks (``command``): replay identity, crash
recovery with seeded SIGKILLs, no duplicate keys (``duplicates``), the late path counted
(``late_paths``). When runs differ, ``diagnosis`` says why -- non-deterministic,
batch-size dependent or stateful user code (``user_state`` probes it), or recovery -- and
``outputs`` shows the first differing record of each run.
"""

from surestream.cli.verify.command import verify
from surestream.cli.verify.runs import DEFAULT_TIMEOUT_S

__all__ = ["DEFAULT_TIMEOUT_S", "verify"]
