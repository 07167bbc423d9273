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


def test_the_reports_next_commands_run_as_printed(tmp_path, capsys):
    """Each "next:" line runs (in this process; ``verify`` is validated, not run: it takes
    a minute on the demo's feed) and exits 0."""
    import shlex

    from surestream.apps.energy import ticks_tables

    out = tmp_path / "demo"
    assert main(["demo", "ticks", "--minutes", "8", "--vendors", "2", "--symbols", "2",
                 "--idle-minutes", "2", "--ticks-per-s", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    next_lines = printed.split("\nnext:\n", 1)[1].strip().splitlines()
    assert len(next_lines) == 5
    for line in next_lines:
        words = shlex.split(line, comments=True)
        if words[0] == "surestream":
            args = ["validate", words[2]] if words[1] == "verify" else words[1:]
            assert main(args) == 0, line
        else:
            assert words[:3] == ["python", "-m", "surestream.apps.energy.ticks_tables"]
            assert ticks_tables.main(words[3:]) == 0, line
        assert "Error" not in capsys.readouterr().err


def test_a_query_of_a_table_not_created_yet_says_so(tmp_path, capsys):
    from surestream.apps.energy import ticks_tables

    out = tmp_path / "demo"
    # five minutes leave no room for a late tick: no quarantine table is ever created
    assert main(["demo", "ticks", "--minutes", "5", "--vendors", "2", "--symbols", "1",
                 "--idle-minutes", "2", "--ticks-per-s", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert ticks_tables.main(["--out", str(out / "out"),
                              "SELECT COUNT(*) FROM late_vendor_ticks"]) == 1
    err = capsys.readouterr().err
    assert "late_vendor_ticks (quarantine.late_vendor_ticks)" in err
    assert "created at the first checkpoint" in err
