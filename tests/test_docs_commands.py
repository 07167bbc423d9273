"""Every command in README.md and docs/*.md runs as written, from a fresh copy of the repo
(tests/docs_commands.py says how, and the only departures from "as written"); the commands
of docs/trading.md run in tests/test_docs_commands_trading.py. Also: the docs have the
commands they must, the README's pipeline is the example it copies, relative links stay in
the repository."""

from __future__ import annotations

import re

import pytest
import yaml
from docs_commands import (
    DOCS,
    MUST_HAVE_COMMANDS,
    REPO,
    doc_runs_fixture,
    documented,
    plan,
)

#: run by tests/test_docs_commands_trading.py
TRADING_PAGE = "docs/trading.md"

doc_runs = pytest.fixture(scope="module")(doc_runs_fixture)


def test_the_docs_have_commands_and_only_the_stated_exceptions():
    found = documented()
    assert set(found) >= MUST_HAVE_COMMANDS, set(found)
    plans = [plan(c) for commands in found.values() for c in commands]
    departures = {p.why for p in plans if p.run != p.written}
    assert departures <= {"installs the package; the copy runs from its source",
                          "the test suite this test belongs to", "a benchmark: --help only",
                          "the demo, smaller"}
    runs = [p.run for p in plans if p.run]
    for needed in ("surestream run", "surestream validate", "surestream verify",
                   "surestream simulate", "surestream query", "surestream demo"):
        assert any(r.startswith(needed) for r in runs), needed


@pytest.mark.parametrize("relative", sorted(set(documented()) - {TRADING_PAGE}))
def test_every_documented_command_runs(relative, doc_runs):
    result = doc_runs(relative)
    assert result.ran, f"{relative}: no command was run"
    assert result.failures == [], "\n\n".join(result.failures)


def test_the_readme_pipeline_is_the_example_file_it_copies():
    readme = (REPO / "README.md").read_text()
    block = readme.split("## A pipeline in YAML", 1)[1].split("```yaml\n", 1)[1]
    shown = yaml.safe_load(block.split("```", 1)[0])
    example = REPO / "src" / "surestream" / "examples" / "trades_vwap.yaml"
    assert shown == yaml.safe_load(example.read_text())
    assert f"cp {example.relative_to(REPO)} spec.yaml" in readme


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_relative_links_stay_inside_the_repository():
    for doc in DOCS:
        for target in _LINK.findall(doc.read_text()):
            if target.startswith(("http://", "https://", "#", "mailto:")):
                continue
            path = (doc.parent / target.split("#", 1)[0]).resolve()
            assert path.exists() and path.is_relative_to(REPO), f"{doc.name}: {target}"
