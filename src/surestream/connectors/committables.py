"""Checking what a checkpoint's committables name, before a sink acts on it.

A committable goes into the checkpoint manifest, and comes back from it at recovery. The
manifest is JSON whose checksum is unkeyed (anyone can re-seal an edited one), and a
savepoint may come from elsewhere: what a committable says is input, not something this
process wrote. The file sinks read, rename and delete the files it names (the line sink
copies ``staging/<part>`` into its output and unlinks it; the Parquet sink renames
``.staging/<rel>`` to ``<dataset>/<rel>``), so ``"part": "../../../etc/passwd"`` would copy
an arbitrary file into the output and delete it.

So every name is checked to be one the sink itself writes for that checkpoint, and every
number to be a number, before anything is touched -- as ``checkpoint_store.state_file_path``
does for state files. A committable that fails is refused with ``SinkRecoveryError`` naming
the output: the checkpoint was altered or is not this pipeline's.
"""

from __future__ import annotations

import re
from typing import Any

from surestream.connectors.sink_protocol import SinkRecoveryError

#: a hive partition folder as the Parquet sink names it: ``<column>=<quoted value>``; not
#: hidden, no separator, no NUL (``..`` cannot match: it holds no ``=``)
_HIVE_FOLDER = re.compile(r"^[^./=\x00][^/\x00]*=[^/\x00]*$")


def line_part_name(checkpoint_id: int) -> str:
    """The staged part of a line-file checkpoint: ``part-<10 digits>``."""
    return f"part-{checkpoint_id:010d}"


def parquet_part_name(checkpoint_id: int) -> str:
    """A Parquet part file of a checkpoint: ``part-<10 digits>.parquet``."""
    return f"part-{checkpoint_id:010d}.parquet"


def _refuse(output: str, what: str) -> SinkRecoveryError:
    return SinkRecoveryError(
        f"{output}: the checkpoint's commit record {what}; this output never writes that, "
        "so the checkpoint (or savepoint) was altered or is not this pipeline's, and it is "
        "refused before anything is touched. Resume from an unaltered checkpoint, or delete "
        "the checkpoint folder to start afresh (which rewrites every output)")


def _count(committable: dict[str, Any], key: str, output: str, *,
           required: bool = True) -> None:
    """``committable[key]`` is a non-negative integer (or absent, when not ``required``)."""
    if key not in committable and not required:
        return
    value = committable.get(key)
    if type(value) is not int or value < 0:
        raise _refuse(output, f"has {key} = {value!r}, not a count")


def checked_committable(committable: Any, output: str,
                        checkpoint_id: int | None = None) -> dict[str, Any]:
    """The fields every sink's committable has: a dict whose ``checkpoint`` is a checkpoint
    id (the restored one's, when ``checkpoint_id`` is given) and whose ``rows`` a count."""
    if not isinstance(committable, dict):
        raise _refuse(output, f"is {type(committable).__name__}, not a record")
    _count(committable, "checkpoint", output)
    if checkpoint_id is not None and committable["checkpoint"] != checkpoint_id:
        raise _refuse(output, f"is for checkpoint {committable['checkpoint']}, not for "
                              f"checkpoint {checkpoint_id} that holds it")
    _count(committable, "rows", output)
    return committable


def check_duckdb_committable(committable: Any, output: str,
                             checkpoint_id: int | None = None) -> None:
    """A DuckDB table's committable: its numbers are counts (the staging table's name is
    made from the checkpoint id, the table's from the spec)."""
    checked_committable(committable, output, checkpoint_id)
    _count(committable, "before", output, required=False)


def check_line_committable(committable: Any, output: str,
                           checkpoint_id: int | None = None) -> None:
    """A line file's committable: ``part`` is None or exactly this checkpoint's part name,
    ``offset`` a byte count, ``columns`` (CSV) None or a list of column names."""
    checked_committable(committable, output, checkpoint_id)
    part = committable.get("part")
    if part is not None and part != line_part_name(committable["checkpoint"]):
        raise _refuse(output, f"names the staged part {part!r} (expected "
                              f"{line_part_name(committable['checkpoint'])!r})")
    _count(committable, "offset", output, required=False)
    columns = committable.get("columns")
    if columns is not None and not (isinstance(columns, list)
                                    and all(isinstance(c, str) for c in columns)):
        raise _refuse(output, f"has columns = {columns!r}, not a list of column names")


def check_parquet_committable(committable: Any, output: str,
                              checkpoint_id: int | None = None) -> None:
    """A Parquet dataset's committable: each part is ``[relative path, rows]`` whose path
    is hive partition folders (``col=value``, none hidden) and this checkpoint's part file
    -- never absolute, never ``..`` -- so a commit renames only inside the dataset."""
    checked_committable(committable, output, checkpoint_id)
    _count(committable, "before", output, required=False)
    expected = parquet_part_name(committable["checkpoint"])
    parts = committable.get("parts")
    if parts is None:  # the one-part form of earlier versions
        part = committable.get("part")
        if part is not None and part != expected:
            raise _refuse(output, f"names the part {part!r} (expected {expected!r})")
        return
    if not isinstance(parts, list):
        raise _refuse(output, f"has parts = {parts!r}, not a list")
    for entry in parts:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
                and type(entry[1]) is int and entry[1] >= 0):
            raise _refuse(output, f"has the part {entry!r}, not [path, rows]")
        *folders, name = entry[0].split("/")
        if name != expected or not all(_HIVE_FOLDER.match(f) for f in folders):
            raise _refuse(output, f"names the part {entry[0]!r}, which is not this "
                                  f"checkpoint's part file ({expected}) in partition "
                                  "folders of the dataset")


def check_records_held(output: str, checkpoint_id: int, before: int, held: int,
                       lost: str) -> None:
    """A restored checkpoint was taken after ``before`` committed records; the table's own
    commit records count ``held`` up to it. Any other number means the output is not the
    one the checkpoint knew (``lost``: how fewer can happen), so the restart is refused
    rather than going on with records lost or written twice."""
    if held == before:
        return
    why = lost if held < before else "another run has written it since"
    raise SinkRecoveryError(
        f"{output}: checkpoint {checkpoint_id} was taken after {before:,} committed "
        f"records, but the database records {held:,}: {why}; restore it, or delete the "
        "checkpoint folder to start afresh (which rewrites every output)")
