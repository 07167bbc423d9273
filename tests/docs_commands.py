"""Running the commands of README.md and docs/*.md as written, from a fresh copy of the repo
(tests/test_docs_commands.py; docs/trading.md's in tests/test_docs_commands_trading.py, the
longest page, apart so that two workers run them).

The commands are the lines of the ```bash blocks (``&&`` chains split, a trailing ``\\``
joining lines) and the ``$ `` lines of the ```console blocks, run in the order they appear,
each Markdown file in its own fresh copy of the repository (README.md, pyproject.toml,
docs/, src/, benchmarks/, scripts/, monitoring/), with ``surestream``, ``python`` and
``python3`` meaning this checkout's code. Each must exit 0; later commands see what earlier
ones wrote, as a reader following the page would.

The only departures from "as written", and why:

- ``surestream demo`` runs with ``--events 5000`` instead of its documented size (the
  default 1,000,000 takes 37 s; ``tests/apps/test_demo.py`` checks the demo's results): the
  same command on a smaller market (5,000 events still inject every kind of damage the
  demo reconciles, and the pages run it five times).
  The other seed systems' demos likewise run smaller (``demo iso --hours 2``, ``demo ticks
  --minutes 10``, ``demo payments --events 3000``); their tests under tests/energy and
  tests/payments check their results.
- ``pip install ...`` is not run: the copy runs from its source tree, as an editable install
  does.
- ``python3 -m pytest`` is not run: it is the suite this test belongs to.
- a benchmark script (``python benchmarks/...``) runs with ``--help`` only: a benchmark is
  minutes of timing runs, and timings never go into pass/fail tests (docs/benchmarks.md).

Kafka commands that give no ``--bootstrap`` find the test session's broker through
``$SURESTREAM_BOOTSTRAP``, as a reader's would find the ``surestream broker`` they started
(docs/kafka.md, "The embedded broker").
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COPIED = ("README.md", "pyproject.toml", "docs", "src", "benchmarks", "scripts", "monitoring")
DEMO_EVENTS = "5000"
#: the other seed systems' demos, each on a smaller input: option, value
SMALLER_SYSTEM_DEMOS: dict[str, tuple[str, str]] = {
    "iso": ("--hours", "2"), "ticks": ("--minutes", "10"), "payments": ("--events", "3000")}
#: files that must have runnable commands (so a broken extraction cannot pass quietly)
MUST_HAVE_COMMANDS = {"README.md", "docs/trading.md", "docs/exactly-once.md",
                      "docs/benchmarks.md"}

_FENCE = re.compile(r"^```\s*([\w-]*)\s*$")


def commands_of(path: Path) -> list[str]:
    """The commands of one Markdown file, in order (see the module docstring)."""
    commands: list[str] = []
    language: str | None = None
    pending = ""
    for line in path.read_text().splitlines():
        fence = _FENCE.match(line)
        if fence:
            language = fence.group(1) if language is None else None
            continue
        if language == "bash":
            text = pending + line
            if text.rstrip().endswith("\\"):
                pending = text.rstrip()[:-1] + " "
                continue
            pending = ""
            if text.strip() and not text.strip().startswith("#"):
                commands.extend(part.strip() for part in text.split("&&"))
        elif language == "console" and line.startswith("$ "):
            commands.append(line[2:].strip())
    return commands


@dataclass(frozen=True)
class Plan:
    written: str  # the command in the docs
    run: str | None  # what the test runs (None: not run)
    why: str = ""  # why it differs from what is written


def _surestream_args(words: list[str]) -> list[str] | None:
    """The arguments after ``surestream`` / ``python -m surestream``, or None."""
    if words[:1] == ["surestream"]:
        return words[1:]
    if words[:3] in (["python", "-m", "surestream"], ["python3", "-m", "surestream"]):
        return words[3:]
    return None


def plan(command: str) -> Plan:
    words = shlex.split(command, comments=True)
    if "pip" in words[:3] and "install" in words[:4]:
        return Plan(command, None, "installs the package; the copy runs from its source")
    if words[:3] in (["python3", "-m", "pytest"], ["python", "-m", "pytest"]):
        return Plan(command, None, "the test suite this test belongs to")
    if words[0] in ("python", "python3") and words[1:2] and \
            words[1].startswith("benchmarks/"):
        return Plan(command, f"{words[0]} {words[1]} --help", "a benchmark: --help only")
    args = _surestream_args(words)
    if args and args[0] == "demo" and args[1:2] and args[1] in SMALLER_SYSTEM_DEMOS:
        option, value = SMALLER_SYSTEM_DEMOS[args[1]]
        if option in args:
            args[args.index(option) + 1] = value
        else:
            args += [option, value]
        return Plan(command, shlex.join(["surestream", *args]), "the demo, smaller")
    if args and args[0] == "demo":
        if "--events" in args:
            args[args.index("--events") + 1] = DEMO_EVENTS
        else:
            args += ["--events", DEMO_EVENTS]
        return Plan(command, shlex.join(["surestream", *args]), "the demo, smaller")
    return Plan(command, command)


def fresh_copy(root: Path, bootstrap: str) -> tuple[Path, dict[str, str]]:
    """A copy of the repository and the environment its commands run in."""
    work = root / "repo"
    work.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=ignore)
        else:
            shutil.copy2(source, work / name)
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for name, target in (("surestream", f'"{sys.executable}" -m surestream'),
                         ("python", f'"{sys.executable}"'), ("python3", f'"{sys.executable}"')):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec {target} "$@"\n')
        script.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(work / "src"), "SURESTREAM_BOOTSTRAP": bootstrap}
    return work, env


@dataclass
class DocRun:
    work: Path
    env: dict[str, str]
    failures: list[str]
    ran: list[str]


def run_doc(relative: str, root: Path, bootstrap: str) -> DocRun:
    """Run one file's commands in order in a fresh copy (once per session)."""
    work, env = fresh_copy(root, bootstrap)
    failures, ran = [], []
    for command in commands_of(REPO / relative):
        step = plan(command)
        if step.run is None:
            continue
        r = subprocess.run(["bash", "-c", step.run], cwd=work, env=env, capture_output=True,
                           text=True, timeout=600)
        ran.append(step.run)
        if r.returncode != 0:
            failures.append(f"{step.run!r} exited {r.returncode}:\n{r.stderr[-2000:]}")
    return DocRun(work, env, failures, ran)


def documented() -> dict[str, list[str]]:
    return {str(p.relative_to(REPO)): commands_of(p) for p in DOCS if commands_of(p)}


def doc_runs_fixture(tmp_path_factory, kafka_bootstrap):
    """``doc_runs(relative)``: that file's run, done once for the module."""
    done: dict[str, DocRun] = {}

    def get(relative: str) -> DocRun:
        if relative not in done:
            done[relative] = run_doc(relative,
                                     tmp_path_factory.mktemp(relative.replace("/", "_")),
                                     kafka_bootstrap)
        return done[relative]

    return get
