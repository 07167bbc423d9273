"""Shared fixtures: where ../shared is, and small trades files made by its generator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The steering repo's shared/ folder, beside this repository's root."""
    for candidate in (REPO.parent / "shared", REPO / "shared"):
        if (candidate / "SEMANTICS.md").exists():
            return candidate
    pytest.fail("../shared (SEMANTICS.md, flink-cases, bench) not found beside the repo")


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_dir()


@pytest.fixture(scope="session")
def trades_small(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> dict:
    """20,000 trades from the reference generator (seeded) and its ground-truth manifest."""
    out = tmp_path_factory.mktemp("bench-data")
    subprocess.run([sys.executable, str(shared / "bench" / "gen_trades.py"), "--n", "20000",
                    "--seed", "7", "--out", str(out), "--parts", "0"],
                   check=True, capture_output=True)
    manifest = json.loads((out / "trades-20000.manifest.json").read_text())
    manifest["path"] = str(out / "trades-20000.jsonl")
    return manifest
