"""The Flink benchmark's harness (benchmarks/flink_trades.py), without a JVM and no timings:
the pipeline it measures is accepted by the translation, its expected result holds on the
local runner, the p2 input keeps every record and every symbol's order, and the result
check sees a difference."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import flink_trades as bench  # noqa: E402

from surestream.model.loader import build_spec  # noqa: E402
from surestream.runners.flink.runner import flink_job  # noqa: E402
from surestream.runners.flink.translate import translate  # noqa: E402
from surestream.runners.local.runner import LocalRunner  # noqa: E402

EVENTS = 20_000


@pytest.fixture(scope="module")
def trades(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A small trades input made by ../shared/bench's generator (its manifest)."""
    return bench.ensure_data(bench.shared_bench(), EVENTS, tmp_path_factory.mktemp("data"))


def test_the_variant_is_translated_and_keeps_the_windows_steps(tmp_path: Path) -> None:
    name, make = bench.choose_pipeline("variant")
    doc = make(tmp_path, tmp_path / "in.jsonl")
    assert name == "trades-1m-nodedup-notional"
    assert [s["type"] for s in doc["steps"]] == ["watermark", "with_columns", "window"]
    window = doc["steps"][2]
    assert window["aggregations"]["notional"] == "sum(notional)"
    assert "vwap" not in window["aggregations"]
    translation = translate(build_spec(doc))
    assert any("SUM(`notional`)" in s for s in translation.ddl)


def test_the_variant_on_the_local_runner_gives_the_manifests_sum(trades: dict,
                                                                 tmp_path: Path) -> None:
    """Without dedup, sum(trade_count) = N - late (the generator's truth), 1 window per
    symbol and minute; the late records are exactly the manifest's count."""
    _, make = bench.choose_pipeline("variant")
    LocalRunner(build_spec(make(tmp_path, Path(trades["path"])))).run()
    got = bench.outcome(tmp_path)
    assert got["sum_trade_count"] == trades["n_events"] - trades["late"]
    assert len(got["late"]) == trades["late"]
    assert got["errors"] == 0
    assert bench.check("trades-1m-nodedup-notional", "local", got, None, trades) == []


def test_symbol_parts_keep_every_line_and_each_symbols_order(trades: dict) -> None:
    data = Path(trades["path"])
    folder = bench.symbol_parts(data, 2)
    lines = data.read_bytes().splitlines()
    parts = [(folder / f"part-{k}.jsonl").read_bytes().splitlines() for k in range(2)]
    assert sorted(parts[0] + parts[1]) == sorted(lines)
    assert parts[0] and parts[1]

    def symbol(line: bytes) -> int:
        return int(line.split(b'"symbol":"S')[1][:3])

    for k, part in enumerate(parts):
        assert {symbol(line) % 2 for line in part} == {k}
        assert part == [line for line in lines if symbol(line) % 2 == k]  # input order


def test_the_p2_job_reads_the_part_folder(tmp_path: Path) -> None:
    _, make = bench.choose_pipeline("variant")
    data, folder = tmp_path / "in.jsonl", tmp_path / "in.by-symbol-2"
    job = flink_job(build_spec(make(tmp_path, data)), parallelism=2)
    ddl = bench.read_source_from(job.ddl, str(data), str(folder))
    changed = [i for i, (a, b) in enumerate(zip(job.ddl, ddl, strict=True)) if a != b]
    assert len(changed) == 1 and f"'path' = '{folder}'" in ddl[changed[0]]
    with pytest.raises(RuntimeError, match="cannot find the source table"):
        bench.read_source_from(job.ddl, str(tmp_path / "other.jsonl"), str(folder))


def test_the_check_reports_a_changed_window_and_missing_late_records(trades: dict,
                                                                     tmp_path: Path) -> None:
    _, make = bench.choose_pipeline("variant")
    LocalRunner(build_spec(make(tmp_path, Path(trades["path"])))).run()
    reference = bench.outcome(tmp_path)
    other = copy.deepcopy(reference)
    key = next(iter(other["windows"]))
    other["windows"][key]["trade_count"] += 1
    other["sum_trade_count"] += 1  # as ``outcome`` would count it
    other["late"] = other["late"][1:]
    problems = bench.check("trades-1m-nodedup-notional", "p2", other, reference, trades)
    assert any("trade_count" in p and str(key) in p for p in problems)
    assert any("late records differ" in p for p in problems)
    assert any("sum(trade_count)" in p for p in problems)


def test_help_runs_without_flink() -> None:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "flink_trades.py"),
                           "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--pipeline" in done.stdout


def test_auto_measures_the_real_pipeline_once_translated(trades: dict, tmp_path: Path) -> None:
    """keyed_dedup and vwap are translated (the Java operator): auto picks trades-1m, and
    on the local runner it gives the manifest's truth, duplicates included."""
    name, make = bench.choose_pipeline("auto")
    assert name == "trades-1m"
    doc = make(tmp_path, Path(trades["path"]))
    assert [s["type"] for s in doc["steps"]] == ["watermark", "keyed_dedup", "window"]
    result = LocalRunner(build_spec(doc)).run()
    got = bench.outcome(tmp_path, result.counters.get("duplicates"))
    assert got["sum_trade_count"] == trades["expected_sum_trade_count"]
    assert got["duplicates"] == trades["duplicates"]
    assert bench.check(name, "local", got, None, trades) == []
    assert "duplicates dropped differ" in " ".join(
        bench.differences(got, {**got, "duplicates": got["duplicates"] - 1}))


def test_last_bit_float_differences_are_equal_but_counted(trades: dict, tmp_path: Path) -> None:
    _, make = bench.choose_pipeline("variant")
    LocalRunner(build_spec(make(tmp_path, Path(trades["path"])))).run()
    reference = bench.outcome(tmp_path)
    other = copy.deepcopy(reference)
    key = next(iter(other["windows"]))
    other["windows"][key]["notional"] *= 1 + 2e-16 * 8
    assert bench.differences(other, reference) == []
    assert bench.inexact_windows(other, reference) == 1
