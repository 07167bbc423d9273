"""DuckDB analytics over the trading warehouse: the questions a desk asks of the job outputs.

The trading jobs write the warehouse exactly once: one folder per dataset, one
``part-<checkpoint>.parquet`` per checkpoint (hive folders such as ``date=.../`` may come
later). ``TradingAnalytics`` opens an in-memory DuckDB connection, puts one view over each
dataset and answers each question with one SQL statement, returned as a polars frame.

Two rules keep the answers trustworthy:

* Only committed parts are read. The Parquet sink stages a checkpoint's part in the hidden
  ``<dataset>/.staging/`` folder (and writes ``.part-N.parquet.tmp`` first) until the
  checkpoint commits; DuckDB's ``**`` glob descends into hidden folders, so globbing would
  count uncommitted -- possibly later rolled back -- rows. The part files are therefore
  listed here (every ``*.parquet`` at any depth, hidden names skipped) and handed to
  ``read_parquet(files, union_by_name=true)``, which is what the ``**/*.parquet`` glob
  would read without the staging area.
* No user-supplied value is ever formatted into SQL. Filters, limits and ids are bound
  parameters (``$1``, ``$2``, ...); view names come only from the fixed allow-lists below
  (a window ``size`` picks its dataset from ``WINDOW_DATASETS``), and the warehouse path
  never enters SQL text at all: the views are built with DuckDB's relation API.

Run ``python -m surestream.cli.query --help`` for the command-line front end.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import polars as pl

from surestream.apps.trading.reference import load_reference
from surestream.connectors.duckdb_util import fetch_frame

_TRADE_COLUMNS: dict[str, str] = {
    "trade_id": "VARCHAR", "order_id": "VARCHAR", "symbol": "VARCHAR", "side": "VARCHAR",
    "quantity": "BIGINT", "price": "DOUBLE", "status": "VARCHAR", "exchange": "VARCHAR",
    "trader_id": "VARCHAR", "account_id": "VARCHAR", "timestamp_ms": "BIGINT",
    "event_type": "VARCHAR",
}
_ENRICHED_COLUMNS: dict[str, str] = {
    **_TRADE_COLUMNS, "company_name": "VARCHAR", "sector": "VARCHAR", "industry": "VARCHAR",
    "market_cap_tier": "VARCHAR", "ref_exchange": "VARCHAR",
}
_WINDOW_COLUMNS: dict[str, str] = {
    "symbol": "VARCHAR", "window_start": "BIGINT", "window_end": "BIGINT",
    "revision": "BIGINT", "total_volume": "BIGINT", "total_value": "DOUBLE",
    "vwap": "DOUBLE", "trade_count": "BIGINT", "buy_count": "BIGINT", "sell_count": "BIGINT",
    "buy_sell_ratio": "DOUBLE", "high": "DOUBLE", "low": "DOUBLE", "open": "DOUBLE",
    "close": "DOUBLE", "window_size": "VARCHAR",
}
_ALERT_COLUMNS: dict[str, str] = {
    "alert_type": "VARCHAR", "symbol": "VARCHAR", "direction": "VARCHAR",
    "baseline_price": "DOUBLE", "current_price": "DOUBLE", "pct_change": "DOUBLE",
    "window_start_ms": "BIGINT", "detected_at_ms": "BIGINT", "severity": "VARCHAR",
}
_HISTORY_COLUMNS: dict[str, str] = {"symbol": "VARCHAR", "date": "DATE", "volume": "DOUBLE"}

#: window size -> its aggregates dataset; the only way a size reaches a view name
WINDOW_DATASETS: dict[str, str] = {size: f"trade_aggregates_{size}"
                                   for size in ("1m", "5m", "15m")}

#: the allow-list: every dataset the warehouse may hold -> the columns its view guarantees
DATASETS: dict[str, dict[str, str]] = {
    "processed_trades_filled": _TRADE_COLUMNS,
    "processed_trades_new": _TRADE_COLUMNS,
    "processed_trades_cancelled": _TRADE_COLUMNS,
    "processed_trades_rejected": _TRADE_COLUMNS,
    "enriched_trades": _ENRICHED_COLUMNS,
    **{dataset: _WINDOW_COLUMNS for dataset in WINDOW_DATASETS.values()},
    "price_alerts": _ALERT_COLUMNS,
    "daily_volume_history": _HISTORY_COLUMNS,
}

SIDES = ("BUY", "SELL")

# ---- the SQL: fixed text; user values arrive only as $n parameters ----------------------

_TOP_SYMBOLS_SQL = """
SELECT symbol,
       count(*)                                            AS trades,
       CAST(sum(quantity) AS BIGINT)                       AS volume,
       sum(quantity * price)                               AS value,
       sum(quantity * price) / nullif(sum(quantity), 0)    AS vwap
FROM priced_fills
WHERE ($1::VARCHAR IS NULL OR side = $1)
GROUP BY symbol
ORDER BY value DESC, symbol
LIMIT $2
"""

_PORTFOLIO_SQL = """
WITH legs AS (
    SELECT account_id, symbol,
           count(*)                                                          AS trades,
           CAST(coalesce(sum(quantity) FILTER (side = 'BUY'), 0) AS BIGINT)  AS bought,
           CAST(coalesce(sum(quantity) FILTER (side = 'SELL'), 0) AS BIGINT) AS sold,
           sum(quantity * price) FILTER (side = 'BUY')                       AS buy_notional,
           sum(quantity * price) FILTER (side = 'SELL')                      AS sell_notional
    FROM fills
    WHERE ($1::VARCHAR IS NULL OR account_id = $1)
    GROUP BY account_id, symbol
)
SELECT account_id, symbol, trades, bought, sold,
       bought - sold                                          AS net_position,
       buy_notional / nullif(bought, 0)                       AS avg_buy_price,
       (bought - sold) * (buy_notional / nullif(bought, 0))   AS cost_basis,
       sell_notional / nullif(sold, 0)                        AS avg_sell_price,
       coalesce(sell_notional, 0.0)                           AS realized_notional
FROM legs
ORDER BY account_id, symbol
"""

_VOLUME_HISTORY_SQL = """
WITH trades AS (
    SELECT symbol, quantity, CAST(epoch_ms(timestamp_ms) AS DATE) AS trade_date FROM fills
),
today AS (SELECT max(trade_date) AS day FROM trades),
today_volume AS (
    SELECT t.symbol, d.day, CAST(sum(t.quantity) AS BIGINT) AS volume
    FROM trades t JOIN today d ON t.trade_date = d.day
    WHERE ($1::VARCHAR IS NULL OR t.symbol = $1)
    GROUP BY t.symbol, d.day
),
history AS (
    SELECT h.symbol,
           avg(h.volume) FILTER (CAST(h."date" AS DATE) >= d.day - 7)   AS avg_7d,
           avg(h.volume) FILTER (CAST(h."date" AS DATE) >= d.day - 30)  AS avg_30d,
           avg(h.volume)                                                AS avg_90d,
           count(*)                                                     AS history_days
    FROM daily_volume_history h
    JOIN today d ON CAST(h."date" AS DATE) < d.day
                AND CAST(h."date" AS DATE) >= d.day - 90
    WHERE ($1::VARCHAR IS NULL OR h.symbol = $1)
    GROUP BY h.symbol
)
SELECT v.symbol, v.day AS "date", v.volume AS today_volume,
       h.avg_7d, h.avg_30d, h.avg_90d,
       v.volume / nullif(h.avg_7d, 0)   AS ratio_7d,
       v.volume / nullif(h.avg_30d, 0)  AS ratio_30d,
       v.volume / nullif(h.avg_90d, 0)  AS ratio_90d,
       coalesce(h.history_days, 0)      AS history_days
FROM today_volume v LEFT JOIN history h USING (symbol)
ORDER BY ratio_30d DESC NULLS LAST, v.symbol
"""

_SECTOR_SQL = """
WITH per_symbol AS (
    SELECT coalesce(sector, 'UNKNOWN')                     AS sector, symbol,
           count(*)                                        AS trades,
           sum(quantity)                                   AS volume,
           sum(quantity * price)                           AS value,
           arg_min(price, row(timestamp_ms, trade_id))     AS first_price,
           arg_max(price, row(timestamp_ms, trade_id))     AS last_price
    FROM sector_fills
    GROUP BY ALL
)
SELECT sector,
       count(*)                                                           AS symbols,
       CAST(sum(trades) AS BIGINT)                                        AS trades,
       CAST(sum(volume) AS BIGINT)                                        AS volume,
       sum(value)                                                         AS value,
       avg((last_price - first_price) / nullif(first_price, 0) * 100.0)  AS avg_change_pct
FROM per_symbol
GROUP BY sector
ORDER BY value DESC, sector
"""

#: {view} is a WINDOW_DATASETS value, never user text
_FINAL_WINDOWS_SQL = """
SELECT * FROM {view}
WHERE ($1::VARCHAR IS NULL OR symbol = $1)
QUALIFY row_number() OVER (PARTITION BY symbol, window_start, window_end
                           ORDER BY revision DESC) = 1
ORDER BY window_start, symbol
"""

_ALERTS_SQL = """
SELECT severity,
       count(*)                                      AS alerts,
       count(DISTINCT symbol)                        AS symbols,
       count(*) FILTER (direction = 'UP')            AS up,
       count(*) FILTER (direction = 'DOWN')          AS down,
       avg(pct_change)                               AS avg_abs_change_pct,
       max(pct_change)                               AS max_abs_change_pct,
       min(detected_at_ms)                           AS first_alert_ts,
       max(detected_at_ms)                           AS last_alert_ts
FROM price_alerts
GROUP BY severity
ORDER BY CASE severity WHEN 'CRITICAL' THEN 0 WHEN 'HIGH' THEN 1 WHEN 'MEDIUM' THEN 2
         ELSE 3 END, severity
"""


# ---- reading the warehouse ---------------------------------------------------------------

def part_files(folder: Path) -> list[Path]:
    """The committed part files of a dataset folder, sorted; [] if it does not exist.

    Every ``*.parquet`` at any depth (hive folders included) except hidden names: the sink's
    ``.staging/`` parts and ``.tmp`` files are not committed output.
    """
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*.parquet")
                  if p.is_file() and not any(n.startswith(".")
                                             for n in p.relative_to(folder).parts))


def _hive_layout(folder: Path, files: Sequence[Path]) -> bool:
    """True when every file sits under the same ``key=value`` folder keys.

    DuckDB detects hive partitions for a glob but not for a list of files, so this restores
    the glob's behaviour; mixed layouts are read without partition columns, as the glob does.
    """
    layouts = set()
    for f in files:
        folders = f.relative_to(folder).parts[:-1]
        if not folders or not all("=" in name for name in folders):
            return False
        layouts.add(tuple(name.split("=", 1)[0] for name in folders))
    return len(layouts) == 1


def _empty_select(columns: dict[str, str]) -> str:
    """A zero-row SELECT with the dataset's columns, so a missing dataset queries as empty."""
    casts = ", ".join(f'CAST(NULL AS {kind}) AS "{name}"' for name, kind in columns.items())
    return f"SELECT {casts} LIMIT 0"


def _dataset_relation(con: duckdb.DuckDBPyConnection, folder: Path,
                      columns: dict[str, str]) -> duckdb.DuckDBPyRelation | None:
    """The dataset's parts as one relation with at least ``columns`` (None if no parts).

    Columns an older writer did not produce are added as typed NULLs, so queries bind.
    """
    files = part_files(folder)
    if not files:
        return None
    rel = con.read_parquet([str(f) for f in files], union_by_name=True,
                           hive_partitioning=_hive_layout(folder, files))
    missing = [name for name in columns if name not in rel.columns]
    if missing:
        rel = rel.project(", ".join(["*"] + [f'CAST(NULL AS {columns[n]}) AS "{n}"'
                                             for n in missing]))
    return rel


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


# ---- the API ------------------------------------------------------------------------------

class TradingAnalytics:
    """Read-only SQL analytics over one warehouse folder, answered as polars frames.

    The views are fixed when the object is created (the part files present then), so all
    answers from one instance describe the same committed snapshot.
    """

    def __init__(self, warehouse: str | Path) -> None:
        self.warehouse = Path(warehouse)
        self.con = duckdb.connect(":memory:")
        #: datasets with at least one committed part file
        self.available: set[str] = set()
        for name, columns in DATASETS.items():
            self._create_view(name, columns)
        self.con.register("reference_symbols", load_reference().to_arrow())
        self._create_trade_views()

    def _create_view(self, name: str, columns: dict[str, str]) -> None:
        """One view per allow-listed dataset; an empty typed one when it has no parts."""
        rel = _dataset_relation(self.con, self.warehouse / name, columns)
        if rel is None:
            self.con.execute(f"CREATE OR REPLACE VIEW {name} AS {_empty_select(columns)}")
        else:
            rel.create_view(name, replace=True)
            self.available.add(name)

    def _create_trade_views(self) -> None:
        """The filled trades three ways, each falling back when its preferred source is absent.

        ``fills`` (positions, daily volume) prefers the processed fills; ``priced_fills``
        (top symbols) prefers the enriched trades; ``sector_fills`` needs a sector, so
        without enriched trades it joins the fills to the packaged reference universe.
        """
        enriched = "enriched_trades" in self.available
        filled = "processed_trades_filled" in self.available
        fills = "enriched_trades" if enriched and not filled else "processed_trades_filled"
        priced = "processed_trades_filled" if filled and not enriched else "enriched_trades"
        self.con.execute(f"CREATE VIEW fills AS SELECT * FROM {fills}")
        self.con.execute(f"CREATE VIEW priced_fills AS SELECT * FROM {priced}")
        sector_source = "SELECT * FROM enriched_trades" if enriched else (
            "SELECT f.*, r.sector FROM fills f LEFT JOIN reference_symbols r USING (symbol)")
        self.con.execute(f"CREATE VIEW sector_fills AS {sector_source}")

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        return fetch_frame(self.con, sql, list(params))

    def top_symbols(self, limit: int = 10, side: str | None = None) -> pl.DataFrame:
        """Per symbol: trades, volume, value and VWAP of the fills, highest value first.

        ``side`` ("BUY"/"SELL", any case) keeps one side of the tape only.
        """
        if side is not None:
            side = side.upper()
            if side not in SIDES:
                raise ValueError(f"side must be one of {', '.join(SIDES)}, not {side!r}")
        return self._fetch(_TOP_SYMBOLS_SQL, [side, _positive_int(limit, "limit")])

    def portfolio(self, account_id: str | None = None) -> pl.DataFrame:
        """Per account and symbol: quantities bought and sold, net position, its cost basis.

        ``avg_buy_price`` is the average price paid over all buys, ``cost_basis`` the cost of
        the net position at that price (``net_position * avg_buy_price``; negative for a net
        short), ``realized_notional`` the cash the sells brought in.
        """
        return self._fetch(_PORTFOLIO_SQL, [account_id])

    def volume_vs_history(self, symbol: str | None = None) -> pl.DataFrame:
        """Per symbol: today's volume against its 7, 30 and 90 day averages, as ratios.

        "Today" is the latest UTC date in the fills; the averages are over the history rows
        of the days before it (``history_days`` says how many of the 90 exist). Highest
        30-day ratio -- the most unusual activity -- first.
        """
        return self._fetch(_VOLUME_HISTORY_SQL, [symbol])

    def sector_performance(self) -> pl.DataFrame:
        """Per sector: symbols, trades, volume, value and the average price move of its symbols.

        A symbol's move is its last trade price against its first (by time, then trade id,
        so ties resolve the same way every run) in percent; the sector's is their mean.
        """
        return self._fetch(_SECTOR_SQL)

    def final_windows(self, size: str = "1m", symbol: str | None = None) -> pl.DataFrame:
        """The final result of each window: its highest revision (earlier ones are updates)."""
        view = WINDOW_DATASETS.get(size)
        if view is None:
            raise ValueError(f"size must be one of {', '.join(WINDOW_DATASETS)}, not {size!r}")
        return self._fetch(_FINAL_WINDOWS_SQL.format(view=view), [symbol])

    def alerts_by_severity(self) -> pl.DataFrame:
        """Price alerts counted per severity (CRITICAL first), with direction and size."""
        return self._fetch(_ALERTS_SQL)

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


@dataclass(frozen=True)
class QuerySpec:
    """A named query: the method answering it and the keyword options it accepts."""

    name: str
    method: Callable[..., pl.DataFrame]
    options: tuple[str, ...]
    help: str

    def run(self, analytics: TradingAnalytics, **options: Any) -> pl.DataFrame:
        unknown = set(options) - set(self.options)
        if unknown:
            raise ValueError(f"{self.name} does not take {', '.join(sorted(unknown))}")
        return self.method(analytics, **options)


#: query name (as the CLI spells it) -> its spec
QUERIES: dict[str, QuerySpec] = {spec.name: spec for spec in (
    QuerySpec("top-symbols", TradingAnalytics.top_symbols, ("limit", "side"),
              "symbols by traded value: trades, volume, value, VWAP"),
    QuerySpec("portfolio", TradingAnalytics.portfolio, ("account_id",),
              "per account and symbol: bought, sold, net position, cost basis"),
    QuerySpec("volume-history", TradingAnalytics.volume_vs_history, ("symbol",),
              "today's volume per symbol against its 7/30/90-day averages"),
    QuerySpec("sector-performance", TradingAnalytics.sector_performance, (),
              "per sector: symbols, trades, volume, value, average price change %"),
    QuerySpec("windows", TradingAnalytics.final_windows, ("size", "symbol"),
              "final (highest-revision) trade aggregate windows"),
    QuerySpec("alerts", TradingAnalytics.alerts_by_severity, (),
              "price alerts per severity"),
)}
