"""``surestream demo ticks`` with small options: it reconciles, reports, exits 0; and
its reconciliation does notice a table that differs from the truth."""

from __future__ import annotations

from surestream.apps.energy.ticks_reconcile import reconcile
from surestream.apps.energy.ticks_truth import TicksTruth
from surestream.cli.main import main


def test_demo_ticks_reconciles_and_prints_the_report(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "ticks", "--minutes", "6", "--vendors", "3", "--symbols", "3",
                 "--idle-minutes", "2", "--ticks-per-s", "2", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "RECONCILED" in printed and "MISMATCH" not in printed
    assert f"surestream tables scan {out.resolve() / 'vendor_ticks.yaml'}" in printed
    truth = TicksTruth.read(out / "data")
    assert f"{truth.curated:,}" in printed

    # the same tables against a truth with one duplicate fewer: the check that says so fails
    wrong = TicksTruth.from_dict({**truth.to_dict(), "duplicates": truth.duplicates - 1,
                                  "malformed": truth.malformed + 1})
    failed = {c.name for c in reconcile(out / "out", wrong, truth.duplicates) if not c.ok}
    assert failed == {"duplicates dropped (dedup counter)", "malformed -> errors.jsonl"}
