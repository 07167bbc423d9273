"""The Python API reads like the CLI: ``result.rows(tag)`` for every output, a mistaken tag
named, errors readable wherever they went; ``sum()`` of integers an integer; spec mistakes
as ``SpecError`` with the field path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from surestream.api import Pipeline, csv, duckdb_table, jsonl, memory, parquet
from surestream.connectors.readback import OutputChangedError, OutputNotKeptError
from surestream.model.loader import SpecError
from surestream.model.spec import StdoutSink
from surestream.runners.local.runner import LocalRunner

MIN = 60_000
#: (symbol, minute, quantity); trade t5 has no timestamp, so it goes to errors
TRADES = [("AAA", 0, 5), ("BBB", 0, 2), ("AAA", 0, 7), ("AAA", 1, 1), ("BBB", 1, 4),
          ("AAA", 2, 3)]
#: per (symbol, window_start): (trades, total quantity), counted by hand from TRADES
EXPECTED = {("AAA", 0): (2, 12), ("BBB", 0): (1, 2), ("AAA", MIN): (1, 1),
            ("BBB", MIN): (1, 4), ("AAA", 2 * MIN): (1, 3)}


def trade_records() -> list[dict]:
    records = [{"trade_id": f"t{i}", "symbol": s, "ts": m * MIN + i, "quantity": q}
               for i, (s, m, q) in enumerate(TRADES)]
    records.insert(5, {"trade_id": "t5", "symbol": "AAA", "ts": None, "quantity": 9})
    return records


def volume_pipeline(folder: Path, main_sink, *, errors_sink=None) -> Pipeline:
    """1-minute windows per symbol: trade count and total quantity (integers)."""
    p = Pipeline("volumes", batch_size=2, checkpoint_dir=str(folder / "chk"),
                 checkpoint_interval_ms=None)
    (p.read_records(trade_records())
     .watermark("ts", name="trade_time")
     .window("per_minute", key_fields=["symbol"], kind="tumbling", size_ms=MIN,
             aggregations={"trades": "count()", "volume": "sum(quantity)"})
     .to(main_sink))
    p.output("late_window", memory())
    if errors_sink is not None:
        p.output("errors", errors_sink)
    return p


def by_window(rows: list[dict]) -> dict:
    return {(r["symbol"], r["window_start"]): (r["trades"], r["volume"]) for r in rows}


# -- rows(tag) ---------------------------------------------------------------------------------
def test_an_unknown_tag_is_an_error_naming_the_outputs(tmp_path):
    result = volume_pipeline(tmp_path, memory(), errors_sink=memory()).run()
    with pytest.raises(KeyError) as e:
        result.rows("late_windw")
    message = str(e.value)
    assert "'late_windw'" in message
    assert "'errors', 'late_window', 'main'" in message


def test_errors_in_the_default_file_are_read_back(tmp_path):
    """No ``errors`` output declared: the error records go to the file beside the
    checkpoints, and ``rows("errors")`` reads them from there."""
    p = volume_pipeline(tmp_path, jsonl(str(tmp_path / "out" / "volumes.jsonl")))
    result = p.run()
    default_file = p.spec().errors_default_path()
    assert default_file.exists()
    errors = result.rows("errors")
    assert [json.loads(e["raw"])["trade_id"] for e in errors] == ["t5"]
    assert errors[0]["operator"] == "trade_time"
    assert result.counters["errors"] == 1


@pytest.mark.parametrize("kind", ["jsonl", "csv", "parquet", "duckdb", "memory"])
def test_rows_reads_any_output_back(tmp_path, kind):
    sinks = {"jsonl": lambda: jsonl(str(tmp_path / "out" / "w.jsonl")),
             "csv": lambda: csv(str(tmp_path / "out" / "w.csv")),
             "parquet": lambda: parquet(str(tmp_path / "out" / "w"), partition_by=["symbol"]),
             "duckdb": lambda: duckdb_table(str(tmp_path / "out" / "w.duckdb"), "volumes"),
             "memory": memory}
    result = volume_pipeline(tmp_path, sinks[kind](),
                             errors_sink=jsonl(str(tmp_path / "out" / "errors.jsonl"))).run()
    rows = result.rows("main")
    assert by_window(rows) == EXPECTED
    assert len(rows) == len(EXPECTED) == result.written["main"]
    assert [json.loads(e["raw"])["trade_id"] for e in result.rows("errors")] == ["t5"]
    assert result.rows("late_window") == []


def test_a_resumed_run_reads_its_whole_output(tmp_path):
    """A run stopped at its first checkpoint and resumed: the output is one output, and
    the resumed run's rows hold it all, as an uninterrupted run's do."""
    whole = volume_pipeline(tmp_path / "a", jsonl(str(tmp_path / "a" / "w.jsonl"))).run()
    p = volume_pipeline(tmp_path / "b", jsonl(str(tmp_path / "b" / "w.jsonl")))
    first = LocalRunner(p.spec(), stop_after_checkpoint=True).run()
    assert len(first.rows("main")) < len(EXPECTED)  # stopped early
    resumed = LocalRunner(p.spec()).run()
    assert resumed.restored_from is not None
    assert resumed.rows("main") == whole.rows("main")
    assert by_window(resumed.rows("main")) == EXPECTED
    with pytest.raises(OutputChangedError, match="written again after this run ended"):
        first.rows("main")  # the file holds more than the first run committed


def test_an_output_rewritten_by_a_later_run_is_not_passed_off_as_this_runs(tmp_path):
    out = tmp_path / "out" / "w.jsonl"
    p = volume_pipeline(tmp_path, jsonl(str(out)))
    earlier = p.run()
    assert by_window(earlier.rows("main")) == EXPECTED
    later = p.run()  # a finished pipeline starts afresh: it rewrites its outputs
    assert by_window(later.rows("main")) == EXPECTED
    with pytest.raises(OutputChangedError):
        earlier.rows("main")


def test_standard_output_keeps_nothing_to_read(tmp_path, capsys):
    result = volume_pipeline(tmp_path, StdoutSink(), errors_sink=memory()).run()
    assert len(capsys.readouterr().out.splitlines()) == len(EXPECTED)
    with pytest.raises(OutputNotKeptError, match="printed"):
        result.rows("main")


# -- sum() of integers -------------------------------------------------------------------------
def test_sum_of_integer_quantities_is_an_integer_in_the_file(tmp_path):
    out = tmp_path / "out" / "w.jsonl"
    volume_pipeline(tmp_path, jsonl(str(out))).run()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    volumes = [r["volume"] for r in lines]
    assert all(type(v) is int for v in volumes), volumes
    assert '"volume":12,' in out.read_text() or '"volume":12}' in out.read_text()


# -- spec mistakes ------------------------------------------------------------------------------
def test_a_pipeline_mistake_is_a_spec_error_with_the_path(tmp_path):
    p = volume_pipeline(tmp_path, memory())
    p.output("alerts", memory())  # no step produces this tag
    with pytest.raises(SpecError) as e:
        p.spec()
    assert str(e.value).startswith(
        "pipeline 'volumes': outputs.alerts: no stream or step produces tag 'alerts'")


def test_a_bad_step_option_is_a_spec_error_naming_the_stream_and_step(tmp_path):
    p = Pipeline("bad")
    p.read_records(trade_records()).where("quantity > 0").map("no_such_package.jobs:f").to(
        memory())
    with pytest.raises(SpecError) as e:
        p.spec()
    [(path, reason)] = e.value.problems
    assert path == "streams.main.steps[1].function"
    assert "no_such_package" in reason
