"""DuckDB analytics over the trading warehouse: the questions the platform's plan asks.

``TradingAnalytics`` opens a DuckDB connection (in memory, or a database file, with the
plan's ``memory_limit`` and ``threads`` settings), puts one view over each warehouse dataset
(``surestream.apps.trading.warehouse``: committed parts only) and answers each question with
one SQL statement (``analytics_sql``), returned as a polars frame:

* ``top_traded_symbols(top_n, since_hours)``: FILLED trades of the period per symbol,
  highest volume first;
* ``portfolio_analysis(account_id)``: the account's net positions and their cost;
* ``compare_volume_to_historical(symbol)``: today's volume from the stored 1-minute
  aggregates against the 7/30/90-day averages of the days before;
* ``sector_performance(since_hours)``: FILLED trades of the period per sector.

Time. "Today" and "the last ``since_hours``" are relative to the data's latest event time
by default -- the latest trade's ``timestamp_ms`` (the latest 1-minute window's start for
the volume history) -- so a replayed, simulated or day-old warehouse answers the same
whenever it is asked. Pass ``now=`` (a datetime or epoch milliseconds) to measure from a
given moment instead, e.g. the wall clock (``surestream query ... --now``).

No user-supplied value is ever formatted into SQL: ids, symbols, limits, periods and times
are bound parameters; view names come from fixed allow-lists.

Run ``surestream query --help`` for the command-line front end.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import polars as pl

from surestream.apps.trading import analytics_sql as sql
from surestream.apps.trading.query_catalog import QUERIES, QuerySpec
from surestream.apps.trading.reference import load_reference
from surestream.apps.trading.warehouse import part_files, register_datasets

__all__ = ["QUERIES", "WINDOW_SIZES", "QuerySpec", "TradingAnalytics", "part_files"]

WINDOW_SIZES = ("1m", "5m", "15m")
SIDES = ("BUY", "SELL")
MS_PER_HOUR = 3_600_000

Moment = datetime | int


class TradingAnalytics:
    """SQL analytics over one warehouse, answered as polars frames.

    ``database``: a DuckDB database file (``None``: in memory). For convenience an existing
    folder given here is taken as the ``warehouse`` (with an in-memory database), which is
    how the demo opens its output. ``warehouse``: the folder of Parquet datasets the trading
    jobs write; a dataset with no parts there is read from the database's table of the same
    name if it has one (a DuckDB sink's output), else it is empty. ``memory_limit`` (e.g.
    ``"2GB"``) and ``threads`` are DuckDB settings (``None``: DuckDB's defaults).

    The views are fixed when the object is created (the part files present then), so all
    answers from one instance describe the same committed snapshot.
    """

    def __init__(self, database: str | Path | None = None, read_only: bool = False, *,
                 warehouse: str | Path | None = None, memory_limit: str | None = None,
                 threads: int | None = None) -> None:
        if warehouse is None and database is not None and Path(database).is_dir():
            database, warehouse = None, database
        config: dict[str, Any] = {}
        if memory_limit is not None:
            config["memory_limit"] = str(memory_limit)
        if threads is not None:
            config["threads"] = _positive_int(threads, "threads")
        if read_only and database is None:
            raise ValueError("read_only needs a database file (an in-memory database "
                             "starts empty)")
        self.warehouse = None if warehouse is None else Path(warehouse)
        self.con = duckdb.connect(":memory:" if database is None else str(database),
                                  read_only=read_only, config=config)
        #: datasets with data (committed parts, or a table in the database)
        self.available: set[str] = register_datasets(self.con, self.warehouse)
        self._reference_loaded = False
        self._replace_reference(load_reference().rename(
            {"exchange": "listed_exchange"}).to_arrow())
        self._create_derived_views()

    # ---- views --------------------------------------------------------------------------

    def _create_derived_views(self) -> None:
        """``trades`` (the fills: processed, else enriched), ``sector_trades`` (fills with a
        sector) and ``final_aggregates`` (each window's latest revision)."""
        enriched = "enriched_trades" in self.available
        filled = "processed_trades_filled" in self.available
        trades = "enriched_trades" if enriched and not filled else "processed_trades_filled"
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW trades AS SELECT * FROM {trades}")
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW final_aggregates AS "
                         f"{sql.FINAL_AGGREGATES}")
        self._create_sector_view()

    def _create_sector_view(self) -> None:
        """Sectors come from reference data loaded with ``load_reference_data``; without
        it from the enriched trades (the sector as of each trade), else from the packaged
        reference universe."""
        if "enriched_trades" in self.available and not self._reference_loaded:
            source = "SELECT * FROM enriched_trades"
        else:
            source = ("SELECT t.*, r.sector FROM trades t "
                      "LEFT JOIN reference_data r USING (symbol)")
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW sector_trades AS {source}")

    def load_reference_data(self, parquet_path: str | Path) -> int:
        """Load the symbol reference data (``symbol``, ``sector``, ...) from a Parquet file
        into the ``reference_data`` table, replacing what was there; sector answers use it
        from now on. Returns the number of symbols."""
        path = Path(parquet_path)
        if not path.is_file():
            raise ValueError(f"reference data {str(path)!r} not found (a Parquet file with "
                             "symbol and sector columns)")
        rel = self.con.read_parquet(str(path))
        missing = [c for c in ("symbol", "sector") if c not in rel.columns]
        if missing:
            raise ValueError(f"reference data {path}: missing columns {missing} "
                             f"(has {rel.columns})")
        self._replace_reference(rel)
        self._reference_loaded = True
        self._create_sector_view()
        ((count,),) = self.con.execute("SELECT count(*) FROM reference_data").fetchall()
        return int(count)

    def _replace_reference(self, source: Any) -> None:
        """``reference_data`` becomes a temporary table holding ``source`` (a relation or
        an Arrow table): a copy, so a file changed later does not change the answers."""
        self.con.register("reference_source", source)
        self.con.execute("CREATE OR REPLACE TEMP TABLE reference_data AS "
                         "SELECT * FROM reference_source")
        self.con.unregister("reference_source")

    # ---- the plan's questions -----------------------------------------------------------

    def _fetch(self, statement: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        relation = self.con.sql(statement, params=list(params) if params else None)
        return pl.from_arrow(relation.to_arrow_table())  # type: ignore[return-value]

    def top_traded_symbols(self, top_n: int = 20, since_hours: float = 24,
                           now: Moment | None = None) -> pl.DataFrame:
        """Per symbol, the FILLED trades of the last ``since_hours``: ``trade_count``,
        ``total_volume``, ``total_notional``, ``vwap`` (4 dp), ``low``, ``high`` and
        ``price_range_pct`` ((high - low) / low in percent, 2 dp); highest volume first
        (ties by symbol), at most ``top_n`` rows."""
        return self._fetch(sql.TOP_TRADED_SYMBOLS, [
            _positive_int(top_n, "top_n"), _period_ms(since_hours), _epoch_ms(now)])

    def portfolio_analysis(self, account_id: str) -> pl.DataFrame:
        """The account's open positions from its FILLED trades, per symbol:
        ``net_position`` (bought - sold), ``net_cost`` (buy notional - sell notional) and
        ``avg_cost_basis`` (net_cost / net_position, 4 dp); flat positions are dropped;
        largest ``|net_cost|`` first (ties by symbol)."""
        return self._fetch(sql.PORTFOLIO_ANALYSIS, [_text(account_id, "account_id")])

    def compare_volume_to_historical(self, symbol: str,
                                     now: Moment | None = None) -> pl.DataFrame:
        """The symbol's volume today against its history, from the stored 1-minute
        aggregates (each window's latest revision).

        One row: ``date`` (today, UTC), ``today_volume`` (up to the reference time),
        ``avg_7d``/``avg_30d``/``avg_90d`` (mean daily volume over the trading days -- days
        with any 1-minute aggregate, of any symbol -- among the 7/30/90 calendar days
        before today; a trading day without the symbol counts as 0), ``pct_vs_30d_avg``
        ((today - avg_30d) / avg_30d in percent, 2 dp; null without history) and
        ``days_7d``/``days_30d``/``days_90d`` (how many trading days each average covers).
        No row when there are no 1-minute aggregates at all.
        """
        return self._fetch(sql.COMPARE_VOLUME_TO_HISTORICAL,
                           [_text(symbol, "symbol"), _epoch_ms(now)])

    def sector_performance(self, since_hours: float = 24,
                           now: Moment | None = None) -> pl.DataFrame:
        """Per sector, the FILLED trades of the last ``since_hours``: ``symbol_count``,
        ``trade_count``, ``total_volume``, ``total_notional`` and ``avg_price_change_pct``
        (the mean over its symbols of last vs first price in the period, 2 dp; first/last
        by time, then trade id); highest notional first. Symbols without a sector count as
        ``UNKNOWN``."""
        return self._fetch(sql.SECTOR_PERFORMANCE, [_period_ms(since_hours), _epoch_ms(now)])

    # ---- more questions -----------------------------------------------------------------

    def top_symbols(self, limit: int = 10, side: str | None = None) -> pl.DataFrame:
        """All-time per symbol: trades, volume, value and VWAP of the fills, highest value
        first (the demo's report). ``side`` ("BUY"/"SELL", any case) keeps one side."""
        if side is not None:
            side = side.upper()
            if side not in SIDES:
                raise ValueError(f"side must be one of {', '.join(SIDES)}, not {side!r}")
        return self._fetch(sql.TOP_SYMBOLS_BY_VALUE, [side, _positive_int(limit, "limit")])

    def final_windows(self, size: str = "1m", symbol: str | None = None) -> pl.DataFrame:
        """The final result of each aggregate window of ``size``: its latest revision."""
        if size not in WINDOW_SIZES:
            raise ValueError(f"size must be one of {', '.join(WINDOW_SIZES)}, not {size!r}")
        return self._fetch(sql.FINAL_WINDOWS, [size, symbol])

    def alerts_by_severity(self) -> pl.DataFrame:
        """Price alerts counted per severity (CRITICAL first), with direction and size."""
        return self._fetch(sql.ALERTS_BY_SEVERITY)

    def query(self, name: str, **options: Any) -> pl.DataFrame:
        """Run a registered query by its ``QUERIES`` name."""
        spec = QUERIES.get(name)
        if spec is None:
            raise ValueError(f"unknown query {name!r}; choose one of: {', '.join(QUERIES)}")
        return spec.run(self, **options)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> TradingAnalytics:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


# ---- argument checks: a wrong value is a ValueError naming the argument ---------------------

def _positive_int(value: Any, what: str) -> int:
    """``value`` as an int >= 1 (rejecting bools and floats), or a ValueError naming it."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a positive integer, not {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{what} must be a positive integer, not {value!r}") from None
    if number < 1:
        raise ValueError(f"{what} must be a positive integer, not {number}")
    return number


def _period_ms(since_hours: Any) -> int:
    """``since_hours`` (a positive number of hours) in milliseconds."""
    if isinstance(since_hours, bool) or not isinstance(since_hours, int | float) \
            or not math.isfinite(since_hours) or since_hours <= 0:
        raise ValueError(f"since_hours must be a positive number of hours, not {since_hours!r}")
    return round(since_hours * MS_PER_HOUR)


def _epoch_ms(now: Moment | None) -> int | None:
    """``now`` as epoch milliseconds: a datetime (naive ones are UTC) or an int already."""
    if now is None:
        return None
    if isinstance(now, datetime):
        moment = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
        return round(moment.timestamp() * 1000)
    if isinstance(now, int) and not isinstance(now, bool):
        return now
    raise ValueError(f"now must be a datetime or epoch milliseconds, not {now!r}")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, not {value!r}")
    return value


