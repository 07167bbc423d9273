"""The trading warehouse's datasets as Delta tables: ``<warehouse>/<dataset>/`` holding a
``_delta_log/`` (the layout of a Delta output with ``path: <warehouse>/<dataset>``).

A Delta table is read at its latest committed version through deltalake's Arrow dataset
of that version's files, handed to DuckDB as an Arrow relation: no DuckDB delta extension
is needed (it cannot be installed offline). Globbing the folder's Parquet files instead
would be wrong: the folder also holds files a later commit removed (an overwrite, a
compaction), files of a write that never committed, and the log's own checkpoint Parquet
files -- only the log says which files are the table.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as ds

DELTA_LOG = "_delta_log"


def is_delta_table(folder: Path) -> bool:
    """Whether ``folder`` is a Delta table (it has a transaction log)."""
    return (folder / DELTA_LOG).is_dir()


def delta_datasets(warehouse: Path | None, names: set[str]) -> dict[str, ds.Dataset]:
    """The datasets of ``names`` the folder holds as Delta tables ``<warehouse>/<name>``,
    each at its latest version; {} when it holds none (so a Parquet warehouse never
    imports deltalake)."""
    if warehouse is None:
        return {}
    found = {name: warehouse / name for name in sorted(names)
             if is_delta_table(warehouse / name)}
    if not found:
        return {}
    from deltalake import DeltaTable

    return {name: DeltaTable(str(folder)).to_pyarrow_dataset()
            for name, folder in found.items()}
