"""The trading warehouse's datasets as Iceberg tables: ``trading.<dataset>`` in the
embedded SQL catalog ``<warehouse>/catalog.db`` (the layout of ``--warehouse iceberg``
and of an Iceberg output with ``catalog: {uri: "sqlite:///<warehouse>/catalog.db",
warehouse: <warehouse>}``).

They are read through pyiceberg's Arrow scan of ``main`` -- published checkpoints only,
never a staged branch -- and handed to DuckDB as Arrow relations: no DuckDB Iceberg
extension is needed (it cannot be installed offline without pinning DuckDB).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

NAMESPACE = "trading"
CATALOG_FILE = "catalog.db"


def iceberg_catalog_config(warehouse: Path) -> dict[str, str]:
    """The embedded catalog of an Iceberg warehouse folder."""
    folder = warehouse.resolve()
    return {"uri": f"sqlite:///{folder / CATALOG_FILE}", "warehouse": str(folder)}


def iceberg_datasets(warehouse: Path | None, names: set[str]) -> dict[str, pa.Table]:
    """The datasets of ``names`` the folder's Iceberg catalog holds as ``trading.<name>``
    tables, each scanned at its current snapshot; {} when the folder has no catalog (so a
    Parquet warehouse never imports pyiceberg)."""
    if warehouse is None or not (warehouse / CATALOG_FILE).is_file():
        return {}
    from surestream.connectors.tables.iceberg_catalog import open_catalog

    catalog = open_catalog(iceberg_catalog_config(warehouse), Path)
    try:
        held = {ident[-1] for ident in catalog.list_tables(NAMESPACE)}
    except Exception:  # no such namespace: no Iceberg dataset
        return {}
    return {name: catalog.load_table(f"{NAMESPACE}.{name}").scan().to_arrow()
            for name in sorted(held & names)}


def as_iceberg(doc: dict[str, Any], warehouse: str = "warehouse") -> dict[str, Any]:
    """A trading job's spec with each Parquet dataset output ``<warehouse>/<name>`` turned
    into the Iceberg table ``trading.<name>`` of the folder's embedded catalog (same
    partitioning and key): ``surestream demo --warehouse iceberg``."""
    doc = copy.deepcopy(doc)
    catalog = {"uri": f"sqlite:///{warehouse}/{CATALOG_FILE}", "warehouse": warehouse}
    for tag, out in doc.get("outputs", {}).items():
        path = str(out.get("path", ""))
        if out.get("type") != "file" or out.get("format") != "parquet" \
                or not path.startswith(warehouse + "/"):
            continue
        table = {"type": "iceberg", "catalog": catalog,
                 "table": f"{NAMESPACE}.{path[len(warehouse) + 1:]}"}
        table.update({k: v for k, v in out.items()
                      if k not in ("type", "format", "path")})
        doc["outputs"][tag] = table
    return doc


def read_dataset(warehouse: Path, name: str) -> pl.DataFrame:
    """One dataset of an Iceberg warehouse as a frame (empty when it has no table)."""
    found = iceberg_datasets(warehouse, {name})
    return pl.from_arrow(found[name]) if name in found else pl.DataFrame()
