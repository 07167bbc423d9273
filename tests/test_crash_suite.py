"""The crash suite (tests/crash_suite.py): `surestream verify` with seeded SIGKILLs on the
top-level, ISO and Flink examples; the trading platform's are in
tests/test_crash_suite_trading.py. This file also checks that the two cover every example
with at least 50 kill points."""

from __future__ import annotations

from pathlib import Path

import pytest
from crash_suite import CASES, EXAMPLES, OTHERS, make_data, verify_with_kills


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("crash-data"))


def test_the_suite_covers_every_example_with_at_least_50_kill_points():
    assert sum(points for _, points, _, _ in CASES) >= 50
    assert {name for name, _, _, _ in CASES} == {
        str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.yaml")}


@pytest.mark.parametrize(("example", "points", "seed", "overrides"), OTHERS,
                         ids=[c[0] for c in OTHERS])
def test_verify_passes_with_seeded_kills(example, points, seed, overrides, data, tmp_path):
    verify_with_kills(example, points, seed, overrides, data, tmp_path / "runs")
