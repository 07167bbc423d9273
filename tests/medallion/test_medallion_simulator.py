"""The medallion's simulator: same seed, same bytes; the truth counts what the files hold."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from surestream.apps.medallion.simulator import MedallionSimulation
from surestream.apps.medallion.truth import MedallionTruth
from surestream.cli.main import main

FILES = ("raw-events.jsonl", "raw-transactions.jsonl", "raw-metrics.jsonl")


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    MedallionSimulation(seed=3, events=800).write(tmp_path / "a")
    MedallionSimulation(seed=3, events=800).write(tmp_path / "b")
    MedallionSimulation(seed=4, events=800).write(tmp_path / "c")
    a, b, c = (_bytes(tmp_path / x) for x in "abc")
    assert set(a) == {*FILES, "truth.json"}
    assert a == b
    assert all(a[f] != c[f] for f in FILES)


def test_truth_counts_what_the_files_hold(tmp_path: Path) -> None:
    truth = MedallionSimulation(seed=11, events=2_000, invalid_rate=0.05,
                                duplicate_rate=0.04).write(tmp_path)
    lines = {f: (tmp_path / f).read_text().splitlines() for f in FILES}
    feeds = dict(zip(FILES, ("user_action", "transaction", "metric"), strict=True))
    for name, feed in feeds.items():
        assert len(lines[name]) == truth.received[feed]
        assert truth.received[feed] == (truth.valid_unique[feed] + truth.invalid[feed]
                                        + truth.duplicates[feed])
    everything = [line for f in FILES for line in lines[f]]
    # re-sends are byte-for-byte copies: every extra copy of a line is one duplicate
    # 4 % of the 1,900 valid events are re-sent
    assert sum(n - 1 for n in Counter(everything).values()) == truth.total_duplicates == 76
    not_json = 0
    for line in everything:
        try:
            json.loads(line)
        except json.JSONDecodeError:
            not_json += 1
    assert not_json == truth.invalid_by_reason["malformed_json"] > 0
    assert truth.total_invalid == 100  # 5 % of 2,000 events
    assert set(truth.invalid_by_reason) == {"malformed_json", "missing_field", "wrong_type",
                                            "unknown_event_type"}
    # event times from the configured start, never the wall clock
    first = json.loads(lines["raw-events.jsonl"][0])
    assert first["timestamp"].startswith("2026-03-02T00:")
    assert MedallionTruth.read(tmp_path) == truth


def test_simulate_medallion_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "medallion", "--out", str(tmp_path), "--events", "300",
                 "--seed", "2"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*FILES, "truth.json"])
    assert MedallionTruth.read(tmp_path).seed == 2
    assert main(["simulate", "medallion", "--out", str(tmp_path / "x"), "--start",
                 "yesterday"]) == 2
    assert "start must be an ISO-8601 time" in capsys.readouterr().err
