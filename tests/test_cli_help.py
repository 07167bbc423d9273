"""The command line as a new user meets it: --version, a help that lists every command
without stray markup, every option explained with its default, no option that does not
work, and run summaries that stay aligned whatever the tag names."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from surestream.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surestream", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_version_is_the_package_version():
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"surestream {version}"


def test_top_level_help_lists_every_command_without_markup():
    r = cli("--help")
    assert r.returncode == 0
    listed = set(re.findall(r"^\s{4}(\w+)\s{2,}", r.stdout, flags=re.MULTILINE))
    assert listed == set(subcommands()) >= {"run", "validate", "verify", "checkpoints",
                                            "savepoint", "simulate", "query", "demo",
                                            "schema"}
    assert "--version" in r.stdout and "exit codes" in r.stdout


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_command_help_renders_without_markup(command):
    r = cli(command, "--help")
    assert r.returncode == 0, r.stderr
    assert "``" not in r.stdout and "%(" not in r.stdout


def expanded_help(action: argparse.Action, prog: str) -> str:
    params = {**vars(action), "prog": prog}
    if params.get("choices") is not None:
        params["choices"] = ", ".join(map(str, params["choices"]))
    return (action.help or "") % params


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_option_has_help_that_shows_its_default(command):
    parser = subcommands()[command]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        text = expanded_help(action, parser.prog)
        name = action.option_strings or action.dest
        assert text.strip(), f"{command} {name}: no help"
        if action.option_strings and action.default not in (None, False):
            assert re.search(rf"\(default:? {re.escape(str(action.default))}\b", text), \
                f"{command} {name}: help does not show the default {action.default!r}"


def test_the_flink_runner_is_offered_and_local_still_accepted(tmp_path):
    r = cli("run", "spec.yaml", "--runner", "flink", cwd=tmp_path)
    assert r.returncode == 2 and "invalid choice" not in r.stderr  # the spec is missing
    assert "spec.yaml" in r.stderr
    help_text = cli("run", "--help").stdout
    assert "flink" in help_text and "--flink-address" in help_text
    r = cli("run", "spec.yaml", "--runner", "local", cwd=tmp_path)
    assert r.returncode == 2 and "invalid choice" not in r.stderr


def test_run_summary_aligns_long_tag_names(tmp_path):
    rows = [{"id": i, "ts": t} for i, t in enumerate([10_000, 20_000, 1_000, 30_000])]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tag = "quarantine.records.that.arrived.far.too.late"
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({
        "pipeline": "align",
        "source": {"type": "file", "path": "in.jsonl"},
        "steps": [{"type": "watermark", "timestamp_column": "ts"},
                  {"type": "late_data_side_output", "output_tag": tag}],
        "outputs": {"main": {"type": "file", "path": "out/main.jsonl"},
                    tag: {"type": "file", "path": "out/late.jsonl"}}}))
    r = cli("run", str(tmp_path / "spec.yaml"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # the summary table: output, records, where
    rows = [line.split() for line in r.stderr.splitlines()]
    table = {row[0]: row for row in rows if len(row) == 3 and row[1].replace(",", "").isdigit()}
    assert {t: int(row[1].replace(",", "")) for t, row in table.items()} == \
        {"main": 3, tag: 1, "errors": 0}
    assert table["main"][2] == "out/main.jsonl" and table[tag][2] == "out/late.jsonl"
    lines = [line for line in r.stderr.splitlines() if line.split()[:1] in ([t] for t in table)]
    assert len({line.index(table[line.split()[0]][1]) + len(table[line.split()[0]][1])
                for line in lines}) == 1, lines  # the counts in one right-aligned column
