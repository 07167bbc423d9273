"""Reading what a ``vendor_ticks`` run wrote: its Iceberg tables (published snapshots only,
through pyiceberg's Arrow scan) and its errors file, and SQL over them with DuckDB.

    python -m surestream.apps.energy.ticks_tables --out out/demo-ticks/out \\
        "SELECT symbol, COUNT(*) FROM vendor_ticks GROUP BY symbol"

The tables are DuckDB views named ``vendor_ticks``, ``tick_bars_1m`` and
``late_vendor_ticks`` (no DuckDB Iceberg extension is needed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyarrow as pa

from surestream.apps.energy.ticks_template import BARS_TABLE, CURATED_TABLE, QUARANTINE_TABLE

#: view name -> Iceberg table
TABLES = {"vendor_ticks": CURATED_TABLE, "tick_bars_1m": BARS_TABLE,
          "late_vendor_ticks": QUARANTINE_TABLE}


def read_tables(out_dir: str | Path) -> dict[str, pa.Table]:
    """view name -> the table's published rows; a table not created yet is left out."""
    from surestream.connectors.tables.iceberg_catalog import open_catalog

    warehouse = Path(out_dir).resolve() / "warehouse"
    if not (warehouse / "catalog.db").is_file():
        return {}
    catalog = open_catalog({"uri": f"sqlite:///{warehouse / 'catalog.db'}",
                            "warehouse": str(warehouse)}, Path)
    found = {}
    for view, table in TABLES.items():
        try:
            found[view] = catalog.load_table(table).scan().to_arrow()
        except Exception:  # noqa: BLE001 -- no such table (yet): nothing published to it
            continue
    return found


def error_lines(out_dir: str | Path) -> list[bytes]:
    """The committed lines of ``<out_dir>/errors.jsonl`` (none if it is missing)."""
    path = Path(out_dir) / "errors.jsonl"
    return path.read_bytes().splitlines() if path.is_file() else []


def sql(out_dir: str | Path, query: str) -> pa.Table:
    """``query`` over the run's tables (views ``vendor_ticks``, ``tick_bars_1m``,
    ``late_vendor_ticks``)."""
    import duckdb

    con = duckdb.connect()
    found = read_tables(out_dir)
    for view, table in found.items():
        con.register(view, table)
    try:
        return con.sql(query).to_arrow_table()
    except duckdb.CatalogException as e:
        missing = [f"{view} ({TABLES[view]})" for view in TABLES if view not in found]
        if not missing:
            raise
        raise LookupError(f"{e}; not created yet under {out_dir}: {', '.join(missing)} -- a "
                          "table is created at the first checkpoint that has records for "
                          "it (no late tick yet: no quarantine table)") from e


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m surestream.apps.energy.ticks_tables",
                                 description="SQL over a vendor_ticks run's tables")
    ap.add_argument("--out", default="out/demo-ticks/out",
                    help="the run's out_dir (default %(default)s)")
    ap.add_argument("query", help="SQL over vendor_ticks, tick_bars_1m, late_vendor_ticks")
    args = ap.parse_args(argv)
    import polars as pl

    try:
        answer = sql(args.out, args.query)
    except LookupError as e:
        print(f"ticks_tables: {e}", file=sys.stderr)
        return 1
    with pl.Config(tbl_rows=50, tbl_cols=20, tbl_width_chars=160):
        print(pl.from_arrow(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
