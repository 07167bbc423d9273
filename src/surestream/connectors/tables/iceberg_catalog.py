"""Opening an Iceberg catalog and creating a table from config (partition spec, sort order).

The embedded default is pyiceberg's SQL catalog on a SQLite file plus a local warehouse
folder, both relative to the spec's folder, so a pipeline needs no server. Any other
pyiceberg catalog is named by ``{name: ..., <pyiceberg properties>}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

SQLITE = "sqlite:///"
_TRANSFORM = re.compile(
    r"^\s*([a-z]+)\s*\(\s*(?:([0-9]+)\s*,\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$")


def catalog_properties(config: dict[str, Any], resolve: Callable[[str], Path]) -> dict[str, Any]:
    """The catalog's properties with the embedded default's relative paths resolved against
    the spec's folder (a relative ``sqlite:///`` URI would otherwise follow the working
    directory, and a second run from elsewhere would find another, empty catalog)."""
    props = {k: v for k, v in config.items() if k != "name"}
    uri = props.get("uri")
    if isinstance(uri, str) and uri.startswith(SQLITE) and uri != SQLITE + ":memory:":
        db = Path(uri[len(SQLITE):])
        if not db.is_absolute():
            db = resolve(str(db))
        db.parent.mkdir(parents=True, exist_ok=True)
        props["uri"] = SQLITE + str(db.resolve())
    warehouse = props.get("warehouse")
    if isinstance(warehouse, str) and "://" not in warehouse:
        folder = Path(warehouse)
        folder = (folder if folder.is_absolute() else resolve(warehouse)).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        props["warehouse"] = folder.as_uri()
    if "uri" in props and str(props["uri"]).startswith(SQLITE):
        props.setdefault("type", "sql")
    return props


def open_catalog(config: dict[str, Any], resolve: Callable[[str], Path]) -> Any:
    """The pyiceberg catalog of an output's ``catalog`` config."""
    from pyiceberg.catalog import load_catalog

    return load_catalog(str(config.get("name", "surestream")),
                        **catalog_properties(config, resolve))


def _transform(name: str, width: str | None) -> Any:
    from pyiceberg import transforms as t

    simple = {"identity": t.IdentityTransform, "year": t.YearTransform,
              "month": t.MonthTransform, "day": t.DayTransform, "hour": t.HourTransform}
    if name in simple:
        if width is not None:
            raise ValueError(f"{name}() takes only a column")
        return simple[name]()
    if name in ("bucket", "truncate") and width is not None:
        return (t.BucketTransform if name == "bucket" else t.TruncateTransform)(int(width))
    raise ValueError(f"unknown partition transform {name!r}; known: identity, year, month, "
                     "day, hour, bucket(N, c), truncate(W, c)")


def parse_partition(field: str) -> tuple[str, Any, str]:
    """``day(ts)`` -> ("ts", DayTransform, "ts_day"); a bare column is identity."""
    from pyiceberg.transforms import IdentityTransform

    m = _TRANSFORM.match(field)
    if m is None:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", field.strip()):
            raise ValueError(f"partition_by: {field!r} is neither a column nor "
                             "`transform(column)`")
        return field.strip(), IdentityTransform(), field.strip()
    name, width, column = m.group(1), m.group(2), m.group(3)
    transform = _transform(name, width)
    label = column if name == "identity" else f"{column}_{name}"
    return column, transform, label


def create_table(catalog: Any, identifier: str, schema: pa.Schema,
                 partition_by: list[str] | None, sort_by: list[str] | None,
                 properties: dict[str, str], base_summary: dict[str, str]) -> Any:
    """Create the table (and its namespace) in one catalog commit: schema, partition spec,
    sort order and an empty first snapshot on ``main`` carrying ``base_summary`` (a branch
    can only be made from a snapshot, and the checkpoint marker walk starts there)."""
    from pyiceberg.table.sorting import NullOrder
    from pyiceberg.transforms import IdentityTransform

    namespace = identifier.rsplit(".", 1)[0]
    catalog.create_namespace_if_not_exists(namespace)
    txn = catalog.create_table_transaction(identifier, schema=schema, properties=properties)
    if partition_by:
        with txn.update_spec() as spec:
            for field in partition_by:
                column, transform, label = parse_partition(field)
                if column not in schema.names:
                    raise ValueError(f"partition_by: {field!r} names column {column!r}, which "
                                     f"the records do not have (they have "
                                     f"{', '.join(schema.names)})")
                spec.add_field(column, transform, label)
    if sort_by:
        with txn.update_sort_order() as order:
            for item in sort_by:
                column, _, direction = item.strip().partition(" ")
                if column not in schema.names:
                    raise ValueError(f"sort_by: {column!r} is not a column of the records")
                if direction.strip().lower() == "desc":
                    order.desc(column, IdentityTransform(), NullOrder.NULLS_LAST)
                else:
                    order.asc(column, IdentityTransform(), NullOrder.NULLS_FIRST)
    txn.append(schema.empty_table(), snapshot_properties=base_summary)
    txn.commit_transaction()
    return catalog.load_table(identifier)
