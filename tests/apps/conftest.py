"""One ``surestream demo`` run for the demo's tests and the plan-conformance tests.

Both read the same kind of run -- the demo end to end as a user starts it (a child
process) -- so one run serves both: ``test_demo.py`` checks its report, reconciliation,
warehouse and HTML; ``test_conformance.py`` checks the warehouse's fields against the plan.
40,000 events over three days inject every kind of damage many times (the reconciliation is
not vacuous) and give the volume history two stored days before "today".
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

DEMO_EVENTS = 40_000
DEMO_DAYS = 3


@pytest.fixture(scope="session")
def trading_demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The run: its process result, output folder, warehouse, report and truth."""
    root = tmp_path_factory.mktemp("demo")
    out = root / "out"
    proc = subprocess.run([sys.executable, "-m", "surestream", "demo", "--events",
                           str(DEMO_EVENTS), "--days", str(DEMO_DAYS), "--out", str(out)],
                          cwd=root, capture_output=True, text=True, timeout=600)
    report = json.loads((out / "report.json").read_text()) if proc.returncode == 0 else {}
    truth = out / "data" / "truth.json"
    return {"proc": proc, "out": out, "warehouse": out / "warehouse", "report": report,
            "truth": json.loads(truth.read_text()) if truth.exists() else {}}
