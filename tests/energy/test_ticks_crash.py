"""vendor_ticks under SIGKILL: a run killed at several points of the checkpoint cycle (its
Iceberg tables staged but not published, some outputs committed and others not, mid-batch)
and restarted each time loses and duplicates nothing -- its tables equal the truth."""

from __future__ import annotations

import json

from ticks_helpers import feed, run_cli, workspace

from surestream.apps.energy.ticks_reconcile import reconcile

#: (fault point, the hit to die at): one kill per restart, in this order
KILLS = (("checkpoint.pre_committed", 2), ("checkpoint.commit_partial", 1), ("batch.mid", 3))
SMALL_CHECKPOINTS = ("checkpoint.interval_records=1000", "runtime.batch_size=500")


def test_a_sigkill_loop_loses_and_duplicates_nothing(tmp_path):
    truth = feed(tmp_path / "data")
    spec = workspace(tmp_path / "run", tmp_path / "data")
    for point, hit in KILLS:
        killed = run_cli(spec, *SMALL_CHECKPOINTS, fault=f"{point}:{hit}")
        assert killed.returncode == -9, f"{point}: not killed\n{killed.stderr}"
    summary = tmp_path / "summary.json"
    done = run_cli(spec, *SMALL_CHECKPOINTS, summary=summary)
    assert done.returncode == 0, done.stderr
    restored = json.loads(summary.read_text())["restored_from"]
    assert restored is not None and restored > 0
    checks = reconcile(spec.parent / "out", truth)
    assert [(c.name, c.found, c.expected) for c in checks if not c.ok] == []
