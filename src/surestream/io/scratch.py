"""Temporary folders for state that must not outlive the process.

A pipeline whose outputs are all in memory (a test, a notebook) loses them when the
process ends; checkpoints consistent with those outputs must go with them. Left in the
current folder, they would litter the working tree and -- worse -- let the next run of the
same pipeline resume from them with none of the records written before the checkpoint.
So such pipelines checkpoint into a fresh temporary folder, removed at the latest when the
process exits (callers that know when the run ends remove it sooner).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile


def scratch_dir(prefix: str = "surestream-") -> str:
    """A new empty folder under the system's temporary folder, removed at process exit."""
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def remove_scratch_dir(path: str) -> None:
    """Remove a folder made by ``scratch_dir`` now (the run it served has ended)."""
    shutil.rmtree(path, ignore_errors=True)
