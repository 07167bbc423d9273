"""The five trading jobs, run from their real specs over small hand-written inputs.

Each test loads the job's YAML from ``src/surestream/examples/trading/``, points its inputs
at files written here with ``--set``-style overrides (``source.path=...``), and runs it
with the local runner into a workspace under ``tmp_path``. The specs' relative output
paths (``warehouse/...``) resolve against that workspace, as ``surestream demo`` runs them:
``--set`` cannot address an output whose tag holds dots (``processed.trades.new``).
Outputs are read back from the Parquet dataset folders the jobs write.

Times are offsets from ``T0`` (2026-01-01T00:00:00Z, a 15-minute boundary); every
expected value is computed by hand in the comments.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import surestream
from surestream.connectors.file_sinks import read_parquet_dataset
from surestream.model.loader import apply_override, build_spec, load_spec_dict
from surestream.runners.local.runner import LocalRunner, RunResult

SPECS = Path(surestream.__file__).parent / "examples" / "trading"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
S = 1_000
MIN = 60 * S


# ---- helpers ---------------------------------------------------------------------------

def write_lines(path: Path, rows: Iterable[dict[str, Any] | str]) -> Path:
    """One line per row: a dict as JSON, a string as it is (for malformed lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def trade(trade_id: str, symbol: str, at: int, *, status: str | None = "FILLED",
          side: str = "BUY", quantity: int = 100, price: float = 10.0) -> dict[str, Any]:
    """A trade as the simulator writes it (the fields the jobs read), ``at`` ms after T0."""
    return {"trade_id": trade_id, "order_id": f"O-{trade_id}", "symbol": symbol, "side": side,
            "quantity": quantity, "price": price, "status": status, "exchange": "NYSE",
            "timestamp_ms": T0 + at}


def tick(symbol: str, at: int, price: float) -> dict[str, Any]:
    return {"symbol": symbol, "price": price, "bid": round(price - 0.01, 2),
            "ask": round(price + 0.01, 2), "timestamp_ms": T0 + at}


def step_index(doc: dict[str, Any], name: str, stream: str | None = None) -> int:
    """Where the step called ``name`` is in the spec document (for overrides by path)."""
    steps = doc["streams"][stream]["steps"] if stream else doc["steps"]
    return next(i for i, s in enumerate(steps) if s["name"] == name)


@dataclass
class Job:
    """A finished run of a trading job and the workspace it wrote to."""

    result: RunResult
    workspace: Path

    def dataset(self, name: str) -> list[dict[str, Any]]:
        """The rows of warehouse dataset ``name`` ([] when it got none)."""
        return read_parquet_dataset(self.workspace / "warehouse" / name).to_dicts()

    def frame(self, name: str) -> pl.DataFrame:
        return read_parquet_dataset(self.workspace / "warehouse" / name)

    def jsonl(self, name: str) -> list[dict[str, Any]]:
        path = self.workspace / "warehouse" / name
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def run_job(job: str, workspace: Path, overrides: Sequence[str] = (),
            doc_overrides: Any = None) -> Job:
    """Run ``<job>.yaml`` with ``--set``-style overrides; outputs land in ``workspace``."""
    spec_file = SPECS / f"{job}.yaml"
    doc = load_spec_dict(spec_file)
    for assignment in [*(doc_overrides(doc) if doc_overrides else []), *overrides]:
        apply_override(doc, assignment)
    spec = build_spec(doc, workspace, str(spec_file))
    return Job(LocalRunner(spec).run(), workspace)


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["trade_id"] for r in rows]


# ---- job 1: router ---------------------------------------------------------------------

BROKEN = '{"trade_id": "r-broken", "symbol": "AAA", "price": 10.5'
HUGE = '{"trade_id": "r-huge", "note": "' + "x" * 20_000  # never closed: not JSON
ROUTER_INPUT: list[dict[str, Any] | str] = [
    trade("r-new", "AAA", 1 * S, status="NEW"),
    trade("r-fill", "AAA", 2 * S, status="FILLED"),
    trade("r-part", "BBB", 3 * S, status="PARTIALLY_FILLED"),
    trade("r-canc", "AAA", 4 * S, status="CANCELLED"),
    trade("r-rej", "BBB", 5 * S, status="REJECTED"),
    trade("r-exp", "AAA", 6 * S, status="EXPIRED"),      # not a known status
    trade("r-null", "AAA", 6500, status=None),           # no status at all
    trade("r-lower", "AAA", 7 * S, status="filled"),     # upper-cased: FILLED
    BROKEN,
    HUGE,
    trade("r-fill", "AAA", 2 * S, status="FILLED"),      # re-sent: a duplicate
    trade("r-ahead", "AAA", 20 * S),                     # W after it: T0 + 20000 - 5001
    trade("r-late", "AAA", 10 * S),                      # 10000 <= 14999: late, routed
    trade("r-edge", "BBB", 15 * S),                      # exactly 5 s behind: on time
]


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Job:
    ws = tmp_path_factory.mktemp("router")
    trades = write_lines(ws / "in" / "trades.jsonl", ROUTER_INPUT)
    return run_job("router", ws, [f"source.path={trades}"])


def test_router_sends_each_status_to_its_stream(router: Job) -> None:
    assert ids(router.dataset("processed_trades_new")) == ["r-new"]
    # PARTIALLY_FILLED shares the filled stream with FILLED (a dataset partitioned by date
    # and symbol keeps arrival order within a partition only)
    assert sorted(ids(router.dataset("processed_trades_filled"))) == sorted(
        ["r-fill", "r-part", "r-lower", "r-ahead", "r-late", "r-edge"])
    assert ids(router.dataset("processed_trades_cancelled")) == ["r-canc"]
    assert ids(router.dataset("processed_trades_rejected")) == ["r-rej"]
    filled = {r["trade_id"]: r for r in router.dataset("processed_trades_filled")}
    # status upper-cased before routing: the lowercase `filled` is a FILLED trade
    assert {i: r["status"] for i, r in filled.items()} == {
        "r-fill": "FILLED", "r-part": "PARTIALLY_FILLED", "r-lower": "FILLED",
        "r-ahead": "FILLED", "r-late": "FILLED", "r-edge": "FILLED"}
    # the record unchanged, every field (plus the date it is partitioned by, and the flag)
    assert {k: v for k, v in filled["r-fill"].items() if k not in ("date", "is_late")} == \
        trade("r-fill", "AAA", 2 * S)


def test_router_unknown_status_goes_to_unroutable(router: Job) -> None:
    rows = router.dataset("dlq_trades_unroutable")
    assert ids(rows) == ["r-exp", "r-null"]
    assert [r["status"] for r in rows] == ["EXPIRED", None]
    assert router.result.written["dlq.trades.unroutable"] == 2


def test_router_malformed_lines_go_to_dlq_deserialization(router: Job) -> None:
    """Exactly the plan's fields (issue 9, item 3): the line as it came, the exception
    class, its message, the stack (none: no exception was raised in code), the time."""
    errors = router.jsonl("dlq_deserialization.jsonl")
    assert len(errors) == 2
    trades_file = router.workspace / "in" / "trades.jsonl"
    for e in errors:
        assert list(e) == ["original_value", "error_type", "error_message", "stacktrace",
                           "timestamp_ms"]
        assert e["error_type"] == "JSONDecodeError"
        # the file, then the parser's reason
        assert e["error_message"].startswith(f"{trades_file}: not valid JSON")
        assert e["stacktrace"] is None
        assert isinstance(e["timestamp_ms"], int) and e["timestamp_ms"] > 1_600_000_000_000
    assert errors[0]["original_value"] == BROKEN  # the line exactly as it came
    # nothing else went wrong: no exception in a step, no other error
    assert router.result.written["dlq.processing-errors"] == 0
    assert router.result.written["errors"] == 0


def test_router_truncates_a_huge_raw_value_at_10000_chars(router: Job) -> None:
    huge = router.jsonl("dlq_deserialization.jsonl")[1]
    assert len(huge["original_value"]) == 10_000
    assert huge["original_value"] == HUGE[:10_000]


class HaltedSymbolError(Exception):
    """What the user function below raises."""


def refuse_halted(record: dict[str, Any]) -> dict[str, Any]:
    """User code that raises on one symbol."""
    if record["symbol"] == "HALT":
        raise HaltedSymbolError(f"{record['symbol']} is halted")
    return record


def test_router_exception_in_user_code_goes_to_dlq_processing_errors(tmp_path) -> None:
    def with_user_step(doc: dict[str, Any]) -> list[str]:
        at = step_index(doc, "trade_date") + 1
        doc["steps"].insert(at, {"type": "map", "name": "check_halts",
                                 "function": refuse_halted})
        return []

    trades = write_lines(tmp_path / "in" / "trades.jsonl", [
        trade("h-ok", "AAA", 1 * S), trade("h-bad", "HALT", 2 * S), "{not json"])
    job = run_job("router", tmp_path, [f"source.path={trades}"], doc_overrides=with_user_step)
    [failed] = job.jsonl("dlq_processing_errors.jsonl")
    assert list(failed) == ["original_value", "error_type", "error_message", "stacktrace",
                            "timestamp_ms", "operator"]
    assert json.loads(failed["original_value"])["trade_id"] == "h-bad"
    assert (failed["error_type"], failed["error_message"]) == \
        ("HaltedSymbolError", "HALT is halted")
    assert failed["operator"] == "check_halts"
    assert "refuse_halted" in failed["stacktrace"]
    assert isinstance(failed["timestamp_ms"], int)
    # the malformed line to the other DLQ; the good trade on; the job did not fail
    assert [e["error_type"] for e in job.jsonl("dlq_deserialization.jsonl")] == \
        ["JSONDecodeError"]
    assert ids(job.dataset("processed_trades_filled")) == ["h-ok"]
    assert job.result.written["errors"] == 0


def test_router_removes_the_duplicate(router: Job) -> None:
    assert router.result.counters["duplicates"] == 1
    assert router.result.operator_counters["dedup_trades"] == {"duplicates": 1, "errors": 0}
    assert ids(router.dataset("processed_trades_filled")).count("r-fill") == 1


def test_router_routes_the_late_trade_flagged(router: Job) -> None:
    # r-late (10 s) arrives after r-ahead (20 s): W = 20000 - 5001 = 14999 >= 10000, so it is
    # late -- and still routed by its status, with is_late true; nothing is quarantined
    routed = [r for name in ("processed_trades_new", "processed_trades_filled",
                             "processed_trades_cancelled", "processed_trades_rejected",
                             "dlq_trades_unroutable") for r in router.dataset(name)]
    assert {r["trade_id"] for r in routed if r["is_late"]} == {"r-late"}
    assert router.frame("processed_trades_filled")["is_late"].dtype == pl.Boolean
    assert router.result.operator_counters["flag_late_trades"] == {"late_flagged": 1}
    assert "quarantine.trades.late" not in router.result.written
    # the trade exactly 5 s behind the newest one is not late (W = max - 5000 - 1)
    edge = next(r for r in routed if r["trade_id"] == "r-edge")
    assert edge["is_late"] is False


def test_router_accounts_for_every_line(router: Job) -> None:
    w = router.result.written
    assert router.result.records_in == len(ROUTER_INPUT) == 14
    placed = (w["processed.trades.new"] + w["processed.trades.filled"]
              + w["processed.trades.cancelled"] + w["processed.trades.rejected"]
              + w["dlq.trades.unroutable"]
              + w["dlq.deserialization"] + w["dlq.processing-errors"] + w["errors"]
              + router.result.counters["duplicates"])
    assert placed == 14
    assert w["main"] == 0  # every status is routed to a named stream or the DLQ


# ---- job 2: aggregation ----------------------------------------------------------------

AGG_INPUT = [
    trade("s1", "SGL", 10 * S, side="BUY", quantity=100, price=50.0),
    trade("o1", "SLL", 11 * S, side="SELL", quantity=10, price=20.0),
    trade("o2", "SLL", 12 * S, side="SELL", quantity=30, price=21.0),
    trade("a1", "AAA", 62 * S, side="BUY", quantity=100, price=10.0),   # first to arrive
    trade("a2", "AAA", 65 * S, side="SELL", quantity=300, price=12.0),
    trade("a3", "AAA", 61 * S, side="BUY", quantity=200, price=11.0),   # earliest: open
    trade("n1", "AAA", 66 * S, status="NEW", quantity=1000, price=99.0),      # not executed
    trade("c1", "AAA", 66500, status="CANCELLED", quantity=1000, price=1.0),  # not executed
    trade("a1", "AAA", 62 * S, side="BUY", quantity=100, price=10.0),   # duplicate of a1
    trade("a4", "AAA", 70 * S, side="BUY", quantity=50, price=9.0),     # latest: close
    trade("a5", "AAA", 68 * S, side="SELL", quantity=50, price=13.0,
          status="PARTIALLY_FILLED"),                                   # last to arrive
    trade("m1", "MRG", 100 * S, side="BUY", quantity=10, price=100.0),  # 1m [60 s, 120 s)
    trade("m2", "MRG", 130 * S, side="SELL", quantity=30, price=102.0),  # 1m [120 s, 180 s)
    trade("a6", "AAA", 400 * S, side="BUY", quantity=1000, price=15.0),  # 5m [300 s, 600 s)
]


def window_row(symbol: str, start: int, size: str, **values: Any) -> dict[str, Any]:
    span = {"1m": MIN, "5m": 5 * MIN, "15m": 15 * MIN}[size]
    return {"symbol": symbol, "window_start": T0 + start, "window_end": T0 + start + span,
            "window_size": size, **values}


def single(price: float, quantity: int, side: str) -> dict[str, Any]:
    """The aggregates of a window holding one trade."""
    buy = int(side == "BUY")
    return {"revision": 0, "total_volume": float(quantity), "total_value": price * quantity,
            "vwap": price, "trade_count": 1, "buy_count": buy, "sell_count": 1 - buy,
            "buy_sell_ratio": math.inf if buy else 0.0, "high_price": price,
            "low_price": price, "open_price": price, "close_price": price}


# AAA 1m [60 s, 120 s), every status: a1 a2 a3 a4 a5 + n1 (NEW) + c1 (CANCELLED), a1 once.
# volume 100+300+200+50+50+1000+1000 = 2700; value 1000+3600+2200+450+650+99000+1000 =
# 107900; vwap 107900 / 2700 = 39.96296.. -> 39.963; buys a1 a3 a4 n1 c1, sells a2 a5:
# ratio 5/2; high 99 (n1), low 1 (c1); open 11 (a3, earliest event time though it arrived
# third), close 9 (a4, latest event time though a5 came after)
AAA_1M = {"revision": 0, "total_volume": 2700.0, "total_value": 107900.0, "vwap": 39.963,
          "trade_count": 7, "buy_count": 5, "sell_count": 2, "buy_sell_ratio": 2.5,
          "high_price": 99.0, "low_price": 1.0, "open_price": 11.0, "close_price": 9.0}
# the same window with the executed-only option: a1..a5 only: volume 700, value 7900,
# vwap 11.285714.. -> 11.2857, 3 buys / 2 sells, high 13 (a5), low 9 (a4)
AAA_1M_EXECUTED = {"revision": 0, "total_volume": 700.0, "total_value": 7900.0,
                   "vwap": 11.2857, "trade_count": 5, "buy_count": 3, "sell_count": 2,
                   "buy_sell_ratio": 1.5, "high_price": 13.0, "low_price": 9.0,
                   "open_price": 11.0, "close_price": 9.0}
PLANNED_TYPES = {
    "symbol": pl.String, "window_start": pl.Int64, "window_end": pl.Int64,
    "window_size": pl.String, "total_volume": pl.Float64, "total_value": pl.Float64,
    "vwap": pl.Float64, "trade_count": pl.Int64, "buy_count": pl.Int64,
    "sell_count": pl.Int64, "buy_sell_ratio": pl.Float64, "high_price": pl.Float64,
    "low_price": pl.Float64, "open_price": pl.Float64, "close_price": pl.Float64,
    "computed_at": pl.Datetime("ms", "UTC"), "revision": pl.Int64, "date": pl.Date}
EXECUTED_ONLY = ("streams.trades.steps[2].condition="
                 "UPPER(status) IN ('FILLED', 'PARTIALLY_FILLED')")


@pytest.fixture(scope="module")
def aggregation(tmp_path_factory: pytest.TempPathFactory) -> Job:
    ws = tmp_path_factory.mktemp("aggregation")
    trades = write_lines(ws / "in" / "trades.jsonl", AGG_INPUT)
    return run_job("aggregation", ws, [f"source.path={trades}"])


def windows(job: Job, size: str, symbol: str) -> list[dict[str, Any]]:
    rows = [r for r in job.dataset("trade_aggregates")
            if r["symbol"] == symbol and r["window_size"] == size]
    return sorted(rows, key=lambda r: (r["window_start"], r["revision"]))


def assert_windows(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        # the partition column and the processing time (tested on their own)
        got = {k: v for k, v in got.items() if k not in ("date", "computed_at")}
        assert set(got) == set(want), sorted(set(got) ^ set(want))
        for column, value in want.items():
            assert got[column] == (pytest.approx(value) if isinstance(value, float)
                                   and math.isfinite(value) else value), column


def test_aggregation_one_output_with_the_planned_columns_and_types(aggregation: Job) -> None:
    frame = aggregation.frame("trade_aggregates")
    assert dict(frame.schema) == PLANNED_TYPES
    assert sorted(frame["window_size"].unique().to_list()) == ["15m", "1m", "5m"]
    assert set(aggregation.result.written) == {
        "analytics.trade-aggregates", "late_1m", "late_5m", "late_15m", "errors",
        "dlq.deserialization", "dlq.processing-errors"}
    # processing time: one value per checkpoint interval (this run takes one, at its end)
    assert frame["computed_at"].n_unique() == 1 and frame["computed_at"].null_count() == 0


def test_aggregation_single_trade_window(aggregation: Job) -> None:
    for size in ("1m", "5m", "15m"):
        assert_windows(windows(aggregation, size, "SGL"),
                       [window_row("SGL", 0, size, **single(50.0, 100, "BUY"))])


def test_aggregation_ratio_is_infinite_without_sells_and_zero_without_buys(
        aggregation: Job) -> None:
    sgl = windows(aggregation, "1m", "SGL")[0]
    assert (sgl["buy_count"], sgl["sell_count"], sgl["buy_sell_ratio"]) == (1, 0, math.inf)
    sll = windows(aggregation, "1m", "SLL")[0]
    assert (sll["buy_count"], sll["sell_count"], sll["buy_sell_ratio"]) == (0, 2, 0.0)


def test_aggregation_ratio_option_gives_null_without_sells(tmp_path: Path) -> None:
    trades = write_lines(tmp_path / "in" / "trades.jsonl", AGG_INPUT)
    null_ratio = ("streams.aggregates.steps[1].columns.buy_sell_ratio=CASE WHEN sell_count = 0 "
                  "THEN NULL ELSE ROUND(CAST(buy_count AS DOUBLE) / sell_count, 4) END")
    job = run_job("aggregation", tmp_path, [f"source.path={trades}", null_ratio])
    assert windows(job, "1m", "SGL")[0]["buy_sell_ratio"] is None
    assert windows(job, "1m", "AAA")[0]["buy_sell_ratio"] == 2.5


def test_aggregation_counts_every_status_and_ohlc_by_event_time(aggregation: Job) -> None:
    # n1 NEW and c1 CANCELLED count like the fills (the plan); the re-sent a1 once
    assert_windows(windows(aggregation, "1m", "AAA"),
                   [window_row("AAA", 60 * S, "1m", **AAA_1M),
                    window_row("AAA", 360 * S, "1m", **single(15.0, 1000, "BUY"))])
    assert aggregation.result.operator_counters["trade_scope"]["filtered"] == 0
    assert aggregation.result.counters["duplicates"] == 1


def test_aggregation_executed_only_option(tmp_path: Path) -> None:
    trades = write_lines(tmp_path / "in" / "trades.jsonl", AGG_INPUT)
    job = run_job("aggregation", tmp_path, [f"source.path={trades}", EXECUTED_ONLY])
    assert_windows(windows(job, "1m", "AAA"),
                   [window_row("AAA", 60 * S, "1m", **AAA_1M_EXECUTED),
                    window_row("AAA", 360 * S, "1m", **single(15.0, 1000, "BUY"))])
    assert job.result.operator_counters["trade_scope"]["filtered"] == 2


def test_aggregation_two_trades_merge_into_one_window(aggregation: Job) -> None:
    # m1 and m2 fall in different 1-minute windows, but in the same 5- and 15-minute window:
    # volume 10 + 30 = 40, value 1000 + 3060 = 4060, vwap 101.5, one buy and one sell
    assert_windows(windows(aggregation, "1m", "MRG"),
                   [window_row("MRG", 60 * S, "1m", **single(100.0, 10, "BUY")),
                    window_row("MRG", 120 * S, "1m", **single(102.0, 30, "SELL"))])
    merged = {"revision": 0, "total_volume": 40.0, "total_value": 4060.0, "vwap": 101.5,
              "trade_count": 2, "buy_count": 1, "sell_count": 1, "buy_sell_ratio": 1.0,
              "high_price": 102.0, "low_price": 100.0, "open_price": 100.0,
              "close_price": 102.0}
    assert_windows(windows(aggregation, "5m", "MRG"), [window_row("MRG", 0, "5m", **merged)])
    assert_windows(windows(aggregation, "15m", "MRG"), [window_row("MRG", 0, "15m", **merged)])


def test_aggregation_5m_and_15m_windows(aggregation: Job) -> None:
    assert_windows(windows(aggregation, "5m", "AAA"),
                   [window_row("AAA", 0, "5m", **AAA_1M),
                    window_row("AAA", 300 * S, "5m", **single(15.0, 1000, "BUY"))])
    # + a6: volume 3700, value 107900 + 15000 = 122900, vwap 33.21621.. -> 33.2162;
    # 6 buys, 2 sells; close a6 (400 s)
    assert_windows(windows(aggregation, "15m", "AAA"), [window_row(
        "AAA", 0, "15m", revision=0, total_volume=3700.0, total_value=122900.0,
        vwap=33.2162, trade_count=8, buy_count=6, sell_count=2, buy_sell_ratio=3.0,
        high_price=99.0, low_price=1.0, open_price=11.0, close_price=15.0)])


def test_aggregation_rounds_vwap_and_ratio_to_4_decimals(tmp_path: Path) -> None:
    # 2 buys and 3 sells at 10.00, 10.01, 10.03 x 1, 1, 1 and 20.00 x 2 -- hand-computed:
    # value 10 + 10.01 + 10.03 + 40 = 70.04 over 5 shares: vwap 14.008; ratio 2/3 = 0.6667
    rows = [trade("v1", "RND", 1 * S, price=10.0, quantity=1, side="BUY"),
            trade("v2", "RND", 2 * S, price=10.01, quantity=1, side="SELL"),
            trade("v3", "RND", 3 * S, price=10.03, quantity=1, side="SELL"),
            trade("v4", "RND", 4 * S, price=20.0, quantity=2, side="BUY"),
            trade("v5", "RND", 5 * S, price=10.0, quantity=0, side="SELL")]
    job = run_job("aggregation", tmp_path,
                  [f"source.path={write_lines(tmp_path / 'in' / 't.jsonl', rows)}"])
    row = windows(job, "1m", "RND")[0]
    assert (row["vwap"], row["buy_sell_ratio"]) == (14.008, 0.6667)
    # 10.0 + 10.01 + 10.03 + 40 -> three buys of 1/3 would need more decimals: rounded
    three = [trade(f"w{i}", "THR", i * S, price=p, quantity=1, side="BUY")
             for i, p in enumerate((10.0, 10.0, 10.01), start=1)]
    job = run_job("aggregation", tmp_path / "b",
                  [f"source.path={write_lines(tmp_path / 'in' / 'w.jsonl', three)}"])
    assert windows(job, "1m", "THR")[0]["vwap"] == 10.0033  # 30.01 / 3 = 10.00333..


def test_aggregation_window_size_column(aggregation: Job) -> None:
    frame = aggregation.frame("trade_aggregates")
    for size, span in (("1m", MIN), ("5m", 5 * MIN), ("15m", 15 * MIN)):
        sized = frame.filter(pl.col("window_size") == size)
        assert (sized["window_end"] - sized["window_start"]).unique().to_list() == [span]
    # nothing in this input is late for any window
    for late in ("quarantine_aggregation_late_1m", "quarantine_aggregation_late_5m",
                 "quarantine_aggregation_late_15m"):
        assert aggregation.dataset(late) == []


LATENESS_INPUT = [
    trade("l1", "LAT", 200 * S, side="BUY", quantity=10, price=20.0),   # 1m [180 s, 240 s)
    trade("p1", "PCE", 250 * S, quantity=1, price=1.0),   # W = 244999: [180, 240) fires, rev 0
    # 230 s <= W, but the window stays until W >= 239999 + 30000: re-fires with revision 1
    trade("l2", "LAT", 230 * S, side="SELL", quantity=30, price=22.0),
    trade("p2", "PCE", 280 * S, quantity=1, price=1.0),   # W = 274999: [180, 240) is gone
    trade("l3", "LAT", 235 * S, side="BUY", quantity=5, price=25.0),    # too late for 1m
]


@pytest.fixture(scope="module")
def lateness(tmp_path_factory: pytest.TempPathFactory) -> Job:
    ws = tmp_path_factory.mktemp("lateness")
    trades = write_lines(ws / "in" / "trades.jsonl", LATENESS_INPUT)
    return run_job("aggregation", ws, [f"source.path={trades}"])


def test_aggregation_late_but_allowed_trade_refires_with_revision_1(lateness: Job) -> None:
    # l1 + l2: volume 40, value 200 + 660 = 860, vwap 21.5
    assert_windows(windows(lateness, "1m", "LAT"), [
        window_row("LAT", 180 * S, "1m", **single(20.0, 10, "BUY")),
        window_row("LAT", 180 * S, "1m", revision=1, total_volume=40.0, total_value=860.0,
                   vwap=21.5, trade_count=2, buy_count=1, sell_count=1, buy_sell_ratio=1.0,
                   high_price=22.0, low_price=20.0, open_price=20.0,
                   close_price=22.0)])


def test_aggregation_too_late_trade_goes_to_the_window_late_output(lateness: Job) -> None:
    late = lateness.dataset("quarantine_aggregation_late_1m")
    assert ids(late) == ["l3"]
    assert late[0]["watermark_ms"] == T0 + 280 * S - 5001
    assert late[0]["lateness_ms"] == 280 * S - 5001 - 235 * S
    assert (late[0]["pipeline"], late[0]["operator"]) == ("trading-aggregation", "ohlcv_1m")
    # the 5-minute window [0, 300 s) had not even fired: l3 is on time there
    assert lateness.dataset("quarantine_aggregation_late_5m") == []
    assert lateness.dataset("quarantine_aggregation_late_15m") == []
    # l1, l2, l3: value 200 + 660 + 125 = 985, vwap 985 / 45 = 21.8888.. -> 21.8889;
    # l3 (235 s) is the latest: the close
    assert_windows(windows(lateness, "5m", "LAT"), [window_row(
        "LAT", 0, "5m", revision=0, total_volume=45.0, total_value=985.0, vwap=21.8889,
        trade_count=3, buy_count=2, sell_count=1, buy_sell_ratio=2.0, high_price=25.0,
        low_price=20.0, open_price=20.0, close_price=25.0)])


# ---- job 3: price alerts: tests/apps/test_alerts.py ------------------------------------


# ---- job 4: order book analytics -------------------------------------------------------

def levels(prices_quantities: Iterable[tuple[float, int]]) -> list[dict[str, Any]]:
    return [{"price": p, "quantity": q} for p, q in prices_quantities]


# 25 bid levels 100.00, 99.99, ... with quantities 1, 2, ..., 25; 3 ask levels
DEEP_BIDS = levels((round(100.0 - 0.01 * i, 2), i + 1) for i in range(25))
THIN_ASKS = levels([(100.02, 10), (100.03, 20), (100.04, 30)])
ORDERBOOK_INPUT = [
    {"symbol": "OB1", "timestamp_ms": T0 + 1 * S, "bids": DEEP_BIDS, "asks": THIN_ASKS},
    {"symbol": "NOBID", "timestamp_ms": T0 + 2 * S, "bids": [],
     "asks": levels((round(50.0 + 0.01 * i, 2), i + 1) for i in range(6))},
    {"symbol": "NOASK", "timestamp_ms": T0 + 3 * S,
     "bids": levels([(20.0, 7), (19.99, 3)]), "asks": []},
    {"symbol": "EMPTY", "timestamp_ms": T0 + 4 * S, "bids": [], "asks": []},
    {"symbol": "LATE", "timestamp_ms": T0 - 60 * S, "bids": DEEP_BIDS, "asks": THIN_ASKS},
]
METRICS = ["best_bid", "best_ask", "mid_price", "spread", "spread_bps",
           *(f"{side}_depth_{n}" for side in ("bid", "ask") for n in (5, 10, 20)),
           *(f"imbalance_{n}" for n in (5, 10, 20))]


@pytest.fixture(scope="module")
def orderbook(tmp_path_factory: pytest.TempPathFactory) -> Job:
    ws = tmp_path_factory.mktemp("orderbook")
    books = write_lines(ws / "in" / "books.jsonl", ORDERBOOK_INPUT)
    return run_job("orderbook", ws, [f"source.path={books}"])


def book(job: Job, symbol: str) -> dict[str, Any]:
    (row,) = [r for r in job.dataset("orderbook_metrics") if r["symbol"] == symbol]
    return row


def assert_metrics(row: dict[str, Any], **expected: float) -> None:
    assert {k: row[k] for k in METRICS} == expected


def test_orderbook_columns(orderbook: Job) -> None:
    frame = orderbook.frame("orderbook_metrics")
    assert frame.columns[:2] == ["symbol", "timestamp_ms"]
    # the level lists are dropped; `date` is the dataset's partition column
    assert sorted(frame.columns[2:]) == sorted([*METRICS, *DELTAS, "date"])
    assert frame["symbol"].to_list() == ["OB1", "NOBID", "NOASK", "EMPTY"]


def test_orderbook_spread_depth_and_imbalance(orderbook: Job) -> None:
    # mid (100.00 + 100.02) / 2 = 100.01; spread 0.02 (4 decimals: 0.02, not 0.0199999..);
    # 0.02 / 100.01 * 10^4 = 1.99980.. bps -> 2.0 (2 decimals)
    # bid depth: 1+..+5 = 15, 1+..+10 = 55, 1+..+20 = 210 (levels 21-25 ignored);
    # ask depth: 10+20+30 = 60 at every depth (only 3 levels); imbalance (4 decimals):
    # -45/75 = -0.6, -5/115 = -0.043478.. -> -0.0435, 150/270 = 0.5555.. -> 0.5556
    assert_metrics(book(orderbook, "OB1"), best_bid=100.0, best_ask=100.02, mid_price=100.01,
                   spread=0.02, spread_bps=2.0,
                   bid_depth_5=15, bid_depth_10=55, bid_depth_20=210,
                   ask_depth_5=60, ask_depth_10=60, ask_depth_20=60,
                   imbalance_5=-0.6, imbalance_10=-0.0435, imbalance_20=0.5556)


def test_orderbook_empty_bid_side_gives_zeros(orderbook: Job) -> None:
    # no mid, spread or bps without both sides; the imbalance is all on the ask side (-1)
    assert_metrics(book(orderbook, "NOBID"), best_bid=0, best_ask=50.0, mid_price=0, spread=0,
                   spread_bps=0, bid_depth_5=0, bid_depth_10=0, bid_depth_20=0,
                   ask_depth_5=15, ask_depth_10=21, ask_depth_20=21,
                   imbalance_5=-1, imbalance_10=-1, imbalance_20=-1)


def test_orderbook_empty_ask_side_gives_zeros(orderbook: Job) -> None:
    assert_metrics(book(orderbook, "NOASK"), best_bid=20.0, best_ask=0, mid_price=0, spread=0,
                   spread_bps=0, bid_depth_5=10, bid_depth_10=10, bid_depth_20=10,
                   ask_depth_5=0, ask_depth_10=0, ask_depth_20=0,
                   imbalance_5=1, imbalance_10=1, imbalance_20=1)


def test_orderbook_both_sides_empty_all_zeros(orderbook: Job) -> None:
    assert_metrics(book(orderbook, "EMPTY"), **dict.fromkeys(METRICS, 0.0))
    assert orderbook.result.counters["errors"] == 0


DELTAS = ["mid_price_change", "spread_change", "spread_bps_change", "imbalance_5_change",
          "imbalance_10_change", "imbalance_20_change", "ms_since_previous"]
# one symbol's snapshots: best bid/ask and one level a side, quantities for the imbalance
DELTA_INPUT = [
    {"symbol": "DLT", "timestamp_ms": T0 + 1 * S, "bids": levels([(10.0, 30)]),
     "asks": levels([(10.02, 10)])},                       # mid 10.01, spread 0.02, imb 0.5
    {"symbol": "DLT", "timestamp_ms": T0 + 61 * S, "bids": levels([(10.1, 10)]),
     "asks": levels([(10.11, 30)])},                       # mid 10.105, spread 0.01, imb -0.5
    {"symbol": "DLT", "timestamp_ms": T0 + 361 * S + 1, "bids": levels([(10.0, 10)]),
     "asks": levels([(10.02, 10)])},                       # 300.001 s later: beyond the TTL
    {"symbol": "OTH", "timestamp_ms": T0 + 362 * S, "bids": levels([(5.0, 1)]),
     "asks": levels([(5.02, 1)])},                         # another symbol: no previous
    {"symbol": "DLT", "timestamp_ms": T0 + 661 * S + 1, "bids": levels([(10.0, 10)]),
     "asks": levels([(10.04, 10)])},                       # exactly 300 s later: within
]


def test_orderbook_deltas_against_the_previous_snapshot_of_the_symbol(tmp_path: Path) -> None:
    books = write_lines(tmp_path / "in" / "books.jsonl", DELTA_INPUT)
    job = run_job("orderbook", tmp_path, [f"source.path={books}"])
    rows = job.dataset("orderbook_metrics")
    first, second, expired, other, within = ({k: r[k] for k in DELTAS} for r in rows)
    nothing = dict.fromkeys(DELTAS)
    assert first == nothing  # no previous snapshot
    # mid 10.105 - 10.01 = 0.095; spread 0.01 - 0.02 = -0.01; bps: 0.01/10.105*1e4 = 9.90
    # minus 0.02/10.01*1e4 = 19.98 -> -10.08; imbalance -0.5 - 0.5 = -1 at every depth
    assert second == {"mid_price_change": 0.095, "spread_change": -0.01,
                      "spread_bps_change": -10.08, "imbalance_5_change": -1.0,
                      "imbalance_10_change": -1.0, "imbalance_20_change": -1.0,
                      "ms_since_previous": 60_000}
    assert expired == nothing  # the previous one is 300,001 ms old: past the 5-minute TTL
    assert other == nothing
    # mid 10.02 - 10.01 = 0.01; spread 0.04 - 0.02; bps 39.92 - 19.98 = 19.94
    assert within == {"mid_price_change": 0.01, "spread_change": 0.02,
                      "spread_bps_change": 19.94, "imbalance_5_change": 0.0,
                      "imbalance_10_change": 0.0, "imbalance_20_change": 0.0,
                      "ms_since_previous": 300_000}


def test_orderbook_late_snapshot_quarantined(orderbook: Job) -> None:
    late = orderbook.dataset("quarantine_orderbook_late")
    assert [r["symbol"] for r in late] == ["LATE"]
    assert late[0]["lateness_ms"] == (4 * S - 5001) - (-60 * S)


# ---- job 5: enrichment -----------------------------------------------------------------

FIELDS = ("company_name", "sector", "industry", "market_cap_tier", "listed_exchange")
REFERENCE = [
    {"symbol": "AAA", "company_name": "Alpha Corp.", "sector": "Information Technology",
     "industry": "Software", "market_cap_tier": "LARGE", "listed_exchange": "NASDAQ"},
    {"symbol": "BBB", "company_name": "Beta Inc.", "sector": "Energy",
     "industry": "Oil & Gas", "market_cap_tier": "MID", "listed_exchange": "NYSE"},
]
UPDATES = [
    {**REFERENCE[0], "sector": "Reclassified"},                     # AAA moves sector
    {"symbol": "ZZZ", "company_name": "Zeta Holdings", "sector": "Utilities",
     "industry": "Electric Utilities", "market_cap_tier": "SMALL",
     "listed_exchange": "NYSE"},
]
# with runtime.interleave_records=2 the sequence is: e1, e2 (trades), both updates, e3, ...
ENRICH_TRADES = [
    trade("e1", "AAA", 1 * S),
    trade("e2", "ZZZ", 2 * S),                              # not in the reference yet
    trade("e3", "AAA", 3 * S, status="PARTIALLY_FILLED"),   # after the updates
    trade("e4", "ZZZ", 4 * S),
    trade("e5", "BBB", 5 * S, status="NEW"),                # not executed: filtered out
    trade("e6", "BBB", 6 * S),
    trade("e1", "AAA", 1 * S),                              # duplicate
    trade("e7", "AAA", -60 * S),                            # late: enriched, flagged
    trade("e8", "BBB", 7 * S, status="filled"),             # upper-cased: FILLED
    trade("e9", "BBB", 8 * S, status="cancelled"),          # CANCELLED: not filled
]


def enriched(ref: dict[str, Any] | None) -> dict[str, Any]:
    return {f: "UNKNOWN" for f in FIELDS} if ref is None else {f: ref[f] for f in FIELDS}


@pytest.mark.parametrize("batch_size", [1, 65536])
def test_enrichment_known_unknown_and_updated(tmp_path: Path, batch_size: int) -> None:
    reference = tmp_path / "in" / "symbols.parquet"
    reference.parent.mkdir(parents=True)
    pl.DataFrame(REFERENCE).write_parquet(reference)
    trades = write_lines(tmp_path / "in" / "trades.jsonl", ENRICH_TRADES)
    updates = write_lines(tmp_path / "in" / "updates.jsonl", UPDATES)

    def reference_path(doc: dict[str, Any]) -> list[str]:
        i = step_index(doc, "reference_data", "enriched")
        return [f"streams.enriched.steps[{i}].reference.path={reference}"]

    job = run_job("enrichment", tmp_path, [
        f"sources.trades.path={trades}", f"sources.reference_updates.path={updates}",
        "runtime.interleave_records=2", f"runtime.batch_size={batch_size}"],
        doc_overrides=reference_path)
    rows = job.dataset("enriched_trades")
    # processed.trades.filled as the router makes it: late e7 and lowercase e8 included
    assert sorted(ids(rows)) == ["e1", "e2", "e3", "e4", "e6", "e7", "e8"]
    by_id = {r["trade_id"]: r for r in rows}
    assert {k: by_id["e1"][k] for k in FIELDS} == enriched(REFERENCE[0])   # known
    assert {k: by_id["e2"][k] for k in FIELDS} == enriched(None)           # unknown
    assert {k: by_id["e3"][k] for k in FIELDS} == enriched(UPDATES[0])     # updated
    assert {k: by_id["e4"][k] for k in FIELDS} == enriched(UPDATES[1])     # added
    assert {k: by_id["e6"][k] for k in FIELDS} == enriched(REFERENCE[1])
    # the trade's own columns pass through unchanged (its exchange beside listed_exchange)
    assert {k: by_id["e3"][k] for k in trade("e3", "AAA", 3 * S)} == \
        trade("e3", "AAA", 3 * S, status="PARTIALLY_FILLED")
    assert by_id["e8"]["status"] == "FILLED"
    assert {i for i, r in by_id.items() if r["is_late"]} == {"e7"}
    # (all within one day of event time: the daily refresh from the file does not happen)
    assert job.result.operator_counters["reference_data"] == {
        "unknown_keys": 1, "errors": 0, "refreshes": 0, "refresh_errors": 0}
    assert job.result.counters["duplicates"] == 1
    assert job.result.operator_counters["filled_only"]["filtered"] == 2  # e5 NEW, e9
    # enriched_at_ms: processing time in epoch ms, one value per checkpoint interval
    frame = job.frame("enriched_trades")
    assert frame["enriched_at_ms"].dtype == pl.Int64
    assert frame["enriched_at_ms"].n_unique() == 1 and frame["enriched_at_ms"].min() > T0
