"""The payments commands: every option's help shows its default; simulate writes the
stream and its truth; reconcile says why it cannot read a table."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

import pytest

from surestream.cli.main import build_parser


def nested(parser: argparse.ArgumentParser, *path: str) -> argparse.ArgumentParser:
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


@pytest.mark.parametrize("path", [("simulate", "payments"), ("demo", "payments"),
                                  ("payments", "reconcile")])
def test_every_option_shows_its_default(path):
    parser = nested(build_parser(), *path)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        text = (action.help or "") % {**vars(action), "prog": parser.prog}
        assert text.strip(), f"{path} {action.option_strings}: no help"
        if action.option_strings and action.default not in (None, False):
            assert re.search(rf"\(default:? {re.escape(str(action.default))}\b", text), \
                (path, action.option_strings)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "surestream", *args], capture_output=True,
                          text=True, timeout=120)


def test_simulate_payments_writes_the_stream_and_its_truth(tmp_path):
    done = cli("simulate", "payments", "--hours", "2", "--events", "300", "--seed", "3",
               "--duplicate-rate", "0.1", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "payments.jsonl").read_text().splitlines()
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert len(lines) == truth["events"] == 300 + 30 + 0
    assert truth["duplicates"] == 30 and truth["unique"] == 300
    assert set(json.loads(lines[0])) == {"transaction_id", "sender_account",
                                         "receiver_account", "amount", "currency",
                                         "merchant", "channel", "event_time"}
    bad = cli("simulate", "payments", "--duplicate-rate", "2", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "duplicate_rate" in bad.stderr


def test_reconcile_names_a_missing_table_file(tmp_path):
    done = cli("payments", "reconcile", "--tables", str(tmp_path / "none.duckdb"))
    assert done.returncode == 2 and "none.duckdb" in done.stderr
