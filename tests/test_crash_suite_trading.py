"""The crash suite (tests/crash_suite.py) on the trading platform's examples:
`surestream verify` with seeded SIGKILLs (the other examples: tests/test_crash_suite.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from crash_suite import TRADING, make_data, verify_with_kills


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("crash-data"))


@pytest.mark.parametrize(("example", "points", "seed", "overrides"), TRADING,
                         ids=[c[0] for c in TRADING])
def test_verify_passes_with_seeded_kills(example, points, seed, overrides, data, tmp_path):
    verify_with_kills(example, points, seed, overrides, data, tmp_path / "runs")
