"""The trading warehouse as DuckDB views: one per dataset, committed parts only.

The trading jobs write the warehouse exactly once: one folder per dataset, one
``part-<checkpoint>.parquet`` per checkpoint, possibly under hive folders such as
``window_size=1m/date=2026-03-10/``. Two rules keep what the analytics read trustworthy:

* Only committed parts are read. The Parquet sink stages a checkpoint's part in the hidden
  ``<dataset>/.staging/`` folder (and writes ``.part-N.parquet.tmp`` first) until the
  checkpoint commits; DuckDB's ``**`` glob descends into hidden folders, so globbing would
  count uncommitted -- possibly later rolled back -- rows. The part files are therefore
  listed here (every ``*.parquet`` at any depth, hidden names skipped) and handed to
  ``read_parquet(files, union_by_name=true)``.
* The warehouse path never enters SQL text: the views are DuckDB relations registered on
  the connection (temporary views, so a read-only database accepts them too).

Every view guarantees the columns of its ``DATASETS`` entry: a column an older writer did
not produce is added as a typed NULL, and a dataset with no parts is an empty typed view,
so every query binds and answers (empty) on a partial warehouse.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from surestream.apps.trading.delta_warehouse import delta_datasets
from surestream.apps.trading.iceberg_warehouse import iceberg_datasets

_TRADE_COLUMNS: dict[str, str] = {
    "trade_id": "VARCHAR", "order_id": "VARCHAR", "symbol": "VARCHAR", "side": "VARCHAR",
    "quantity": "DOUBLE", "price": "DOUBLE", "status": "VARCHAR", "exchange": "VARCHAR",
    "trader_id": "VARCHAR", "account_id": "VARCHAR", "timestamp_ms": "BIGINT",
    "event_type": "VARCHAR",
}
_ENRICHED_COLUMNS: dict[str, str] = {
    **_TRADE_COLUMNS, "company_name": "VARCHAR", "sector": "VARCHAR", "industry": "VARCHAR",
    "market_cap_tier": "VARCHAR", "listed_exchange": "VARCHAR",
}
#: the aggregation job's one dataset, all three window sizes (issue 9, item 1)
_AGGREGATE_COLUMNS: dict[str, str] = {
    "symbol": "VARCHAR", "window_start": "BIGINT", "window_end": "BIGINT",
    "window_size": "VARCHAR", "total_volume": "DOUBLE", "total_value": "DOUBLE",
    "vwap": "DOUBLE", "trade_count": "BIGINT", "buy_count": "BIGINT", "sell_count": "BIGINT",
    "buy_sell_ratio": "DOUBLE", "high_price": "DOUBLE", "low_price": "DOUBLE",
    "open_price": "DOUBLE", "close_price": "DOUBLE", "computed_at": "BIGINT",
    "revision": "BIGINT",
}
#: the plan's alert fields and the older names, whichever a writer produced
_ALERT_COLUMNS: dict[str, str] = {
    "alert_type": "VARCHAR", "symbol": "VARCHAR", "direction": "VARCHAR",
    "baseline_price": "DOUBLE", "current_price": "DOUBLE", "pct_change": "DOUBLE",
    "window_start_ms": "BIGINT", "detected_at_ms": "BIGINT", "severity": "VARCHAR",
    "alert_ts": "BIGINT", "change_pct": "DOUBLE",
}

#: the allow-list: every dataset the warehouse may hold -> the columns its view guarantees
DATASETS: dict[str, dict[str, str]] = {
    "processed_trades_filled": _TRADE_COLUMNS,
    "processed_trades_new": _TRADE_COLUMNS,
    "processed_trades_cancelled": _TRADE_COLUMNS,
    "processed_trades_rejected": _TRADE_COLUMNS,
    "enriched_trades": _ENRICHED_COLUMNS,
    "trade_aggregates": _AGGREGATE_COLUMNS,
    "price_alerts": _ALERT_COLUMNS,
}
#: columns holding event times: epoch milliseconds in every view, whatever a writer used
_EPOCH_MS_COLUMNS = frozenset({"timestamp_ms", "window_start", "window_end", "computed_at",
                               "window_start_ms", "detected_at_ms", "alert_ts"})


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


def hive_layout(folder: Path, files: Sequence[Path]) -> bool:
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


def empty_select(columns: dict[str, str]) -> str:
    """A zero-row SELECT with the dataset's columns, so a missing dataset queries as empty."""
    casts = ", ".join(f'CAST(NULL AS {kind}) AS "{name}"' for name, kind in columns.items())
    return f"SELECT {casts} LIMIT 0"


def _conform(rel: duckdb.DuckDBPyRelation, columns: dict[str, str]) -> duckdb.DuckDBPyRelation:
    """``rel`` with at least ``columns``: missing ones as typed NULLs, event-time columns a
    writer stored as TIMESTAMP turned into epoch milliseconds (what every query compares)."""
    types = dict(zip(rel.columns, (str(t) for t in rel.types), strict=True))
    select = []
    for name in rel.columns:
        if name in _EPOCH_MS_COLUMNS and types[name].startswith("TIMESTAMP"):
            select.append(f'epoch_ms("{name}") AS "{name}"')
        else:
            select.append(f'"{name}"')
    select += [f'CAST(NULL AS {kind}) AS "{name}"' for name, kind in columns.items()
               if name not in types]
    return rel.project(", ".join(select))


def dataset_relation(con: duckdb.DuckDBPyConnection, folder: Path,
                     columns: dict[str, str]) -> duckdb.DuckDBPyRelation | None:
    """The dataset's committed parts as one relation with at least ``columns`` (None if
    there are no parts)."""
    files = part_files(folder)
    if not files:
        return None
    rel = con.read_parquet([str(f) for f in files], union_by_name=True,
                           hive_partitioning=hive_layout(folder, files))
    return _conform(rel, columns)


def existing_tables(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The attached database's own tables and views: name -> its qualified SQL name
    (``"catalog"."schema"."name"``, so a temporary view of the same name can read it)."""
    rows = con.execute("SELECT table_catalog, table_schema, table_name "
                       "FROM information_schema.tables WHERE table_catalog <> 'temp'").fetchall()
    return {name: ".".join('"' + part.replace('"', '""') + '"'
                           for part in (catalog, schema, name))
            for catalog, schema, name in rows}


def register_datasets(con: duckdb.DuckDBPyConnection, warehouse: Path | None) -> set[str]:
    """One temporary view per ``DATASETS`` entry; returns the datasets with data.

    A dataset's view reads the Delta table ``<warehouse>/<name>`` when that folder is one
    (its latest version, ``delta_warehouse.py``; never its Parquet files one by one), else
    the warehouse folder's parts; without parts it falls back to the Iceberg table
    ``trading.<name>`` of the folder's catalog (``iceberg_warehouse.py``), then to a table
    of the same name in the database (a DuckDB sink's output), else to an empty view.
    """
    available: set[str] = set()
    tables = existing_tables(con)
    delta = delta_datasets(warehouse, set(DATASETS))  # <warehouse>/<name>/_delta_log
    iceberg = iceberg_datasets(warehouse, set(DATASETS))  # trading.<name> tables, if any
    for name, columns in DATASETS.items():
        rel = None
        if name in delta:
            rel = _conform(con.from_arrow(delta[name]), columns)
        elif warehouse is not None:
            rel = dataset_relation(con, warehouse / name, columns)
        if rel is None and name in iceberg:
            rel = _conform(con.from_arrow(iceberg[name]), columns)
        if rel is None and name in tables:
            rel = _conform(con.sql(f"SELECT * FROM {tables[name]}"), columns)
        if rel is None:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {empty_select(columns)}")
        else:
            con.register(name, rel)
            available.add(name)
    return available
