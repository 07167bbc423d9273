"""Where the Flink distribution is: the ``pyflink`` folder of the apache-flink package.

apache-flink 2.3.0 ships a whole Flink distribution (``bin/``, ``conf/``, ``lib/``) inside its
``pyflink`` package folder. It cannot share one pip environment with surestream's own
dependencies (apache-flink pins apache-beam <= 2.61, which pins pyarrow < 17 and numpy < 2.2;
surestream and pyiceberg need pyarrow >= 17/18), so ``scripts/flink-deps.sh`` installs it
into a virtual environment of its own. This module finds it without importing pyflink:
``FLINK_HOME`` first, then pyflink importable by this interpreter, then that virtual
environment (``SURESTREAM_FLINK_VENV``, default ``~/.cache/surestream/flink-venv``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

LOOPBACK = "127.0.0.1"  # every Flink listener we start binds here

DEFAULT_VENV = Path.home() / ".cache" / "surestream" / "flink-venv"

INSTALL_HINT = ("install Flink with scripts/flink-deps.sh (apache-flink==2.3.0 in a virtual "
                "environment of its own, and the Kafka connector jars), or set FLINK_HOME")


class FlinkNotInstalled(RuntimeError):
    """No Flink distribution was found; the message says how to install one."""


def flink_venv() -> Path:
    """The virtual environment scripts/flink-deps.sh creates."""
    return Path(os.environ.get("SURESTREAM_FLINK_VENV", DEFAULT_VENV))


def _has_pyflink(python: Path) -> Path | None:
    for site in sorted(python.parent.parent.glob("lib/python3*/site-packages")):
        if (site / "pyflink" / "bin" / "jobmanager.sh").is_file():
            return site / "pyflink"
    return None


def flink_home() -> Path:
    """The Flink distribution folder (holding bin/, conf/, lib/)."""
    env = os.environ.get("FLINK_HOME")
    if env:
        home = Path(env)
        if not (home / "bin" / "jobmanager.sh").is_file():
            raise FlinkNotInstalled(f"FLINK_HOME={env} has no bin/jobmanager.sh; {INSTALL_HINT}")
        return home
    spec = importlib.util.find_spec("pyflink")
    if spec is not None and spec.submodule_search_locations:
        home = Path(next(iter(spec.submodule_search_locations)))
        if (home / "bin" / "jobmanager.sh").is_file():
            return home
    found = _has_pyflink(flink_venv() / "bin" / "python")
    if found is not None:
        return found
    raise FlinkNotInstalled(f"no Flink distribution found; {INSTALL_HINT}")


def flink_python() -> str:
    """An interpreter that can import pyflink: for job drivers run as subprocesses.

    ``SURESTREAM_FLINK_PYTHON`` first, then the Flink virtual environment, then this
    interpreter when it has pyflink itself.
    """
    env = os.environ.get("SURESTREAM_FLINK_PYTHON")
    if env:
        return env
    venv_python = flink_venv() / "bin" / "python"
    if _has_pyflink(venv_python) is not None and venv_python.exists():
        return str(venv_python)
    spec = importlib.util.find_spec("pyflink")
    if spec is not None and spec.origin is not None:  # not a leftover namespace folder
        return sys.executable
    raise FlinkNotInstalled(f"no Python with pyflink found; {INSTALL_HINT}")
