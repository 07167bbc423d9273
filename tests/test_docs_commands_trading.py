"""The commands of docs/trading.md (the longest page: the demo, simulate, verify, the
queries) run as written from a fresh copy of the repo (tests/docs_commands.py), and the
demo report's "next:" lines name a real spec and its input."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from docs_commands import doc_runs_fixture

doc_runs = pytest.fixture(scope="module")(doc_runs_fixture)


def test_every_command_of_the_trading_page_runs(doc_runs):
    result = doc_runs("docs/trading.md")
    assert result.ran, "docs/trading.md: no command was run"
    assert result.failures == [], "\n\n".join(result.failures)


def test_the_demos_next_commands_name_a_real_spec_and_its_input(doc_runs):
    """The report's "next:" lines run as printed (verify is validated, not run: it takes
    minutes on the demo's market)."""
    result = doc_runs("docs/trading.md")
    report = (result.work / "out" / "demo" / "report.txt").read_text()
    next_lines = report.split("\nnext:\n", 1)[1].strip().splitlines()
    assert not any("<" in line for line in next_lines), next_lines
    verify = [shlex.split(line) for line in next_lines if " verify " in line]
    assert len(verify) == 1
    words = verify[0]
    assert Path(words[2]).is_file()
    source = words[words.index("--set") + 1].removeprefix("source.path=")
    assert Path(source).is_file() and Path(source).stat().st_size > 0
    for line in next_lines:
        command = line.strip().replace(" verify ", " validate ").split(" --crash-points")[0]
        r = subprocess.run(["bash", "-c", command], cwd=result.work, env=result.env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, (command, r.stderr[-1000:])
