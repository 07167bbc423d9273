"""``surestream demo payments`` with small options: killed mid-run, resumed, reconciled;
exit 0 with PASS for every day."""

from __future__ import annotations

import subprocess
import sys


def test_demo_reconciles_after_a_sigkill(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "surestream", "demo", "payments", "--days", "2", "--events",
         "2000", "--checkpoints", "6", "--out", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "killed (SIGKILL, exit -9) at checkpoint 3" in out
    day_lines = [ln for ln in out.splitlines() if ln.strip().startswith("2026-03-0")
                 and ("PASS" in ln or "FAIL" in ln)]
    assert len(day_lines) == 2 and all("PASS" in ln and "TRUTH" not in ln for ln in day_lines)
    assert "truth: every figure equal" in out and "RECONCILIATION PASS" in out
    assert "errors 0, late_metrics 0" in out
