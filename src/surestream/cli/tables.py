"""``surestream tables``: maintenance and reading of a pipeline's table outputs.

``tables compact SPEC`` compacts each Iceberg output's small files and expires old
snapshots, keeping what recovery reads (``connectors/tables/iceberg_maintenance.py``);
``tables scan SPEC --output TAG`` prints an Iceberg output's rows (an Arrow scan of
``main``: published checkpoints only). Run compaction between runs: it is a commit to the
table, which a running pipeline detects as another writer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from surestream.model.loader import load_spec
from surestream.model.spec import IcebergSink

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
DEFAULT_KEEP = 10


def add_tables_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "tables", help="table outputs: compact small files, expire snapshots, read rows",
        description="Maintain and read a pipeline's table outputs (Iceberg).")
    sub = p.add_subparsers(dest="tables_command", required=True, metavar="COMMAND",
                           help="compact or scan")
    compact = sub.add_parser(
        "compact", help="rewrite each Iceberg output's small files, expire old snapshots",
        description="Rewrite each Iceberg output's rows into one file per partition (one "
                    "snapshot carrying the checkpoint markers forward), then expire old "
                    "snapshots; the current snapshot and staged branches are always kept.")
    compact.add_argument("spec", metavar="SPEC", help="the pipeline spec file")
    compact.add_argument("--output", metavar="TAG", default=None,
                         help="only this output (default: every Iceberg output)")
    compact.add_argument("--keep-snapshots", type=int, default=DEFAULT_KEEP, metavar="N",
                         help=f"snapshots of main kept (default: {DEFAULT_KEEP})")
    compact.set_defaults(func=run_compact)
    scan = sub.add_parser("scan", help="print an Iceberg output's rows",
                          description="Print the rows of an Iceberg output's table "
                                      "(main: published checkpoints only).")
    scan.add_argument("spec", metavar="SPEC", help="the pipeline spec file")
    scan.add_argument("--output", metavar="TAG", required=True,
                      help="the output whose table is read (default: none, required)")
    scan.add_argument("--limit", type=int, default=None, metavar="N",
                      help="at most this many rows (default: all)")
    scan.add_argument("--format", choices=("table", "json", "csv"), default="table",
                      help="output format (default: table)")
    scan.set_defaults(func=run_scan)
    return p


def _iceberg_outputs(args: argparse.Namespace) -> tuple[Any, dict[str, IcebergSink]] | int:
    try:
        spec = load_spec(Path(args.spec))
    except Exception as e:  # a spec error, reported as every command reports it
        print(f"tables: {args.spec}: {e}", file=sys.stderr)
        return EXIT_USAGE
    outputs = {t: s for t, s in spec.outputs.items() if isinstance(s, IcebergSink)}
    if args.output is not None:
        if args.output not in outputs:
            print(f"tables: {args.spec}: no Iceberg output {args.output!r} (Iceberg outputs: "
                  f"{', '.join(outputs) or 'none'})", file=sys.stderr)
            return EXIT_USAGE
        outputs = {args.output: outputs[args.output]}
    return spec, outputs


def run_compact(args: argparse.Namespace) -> int:
    from surestream.connectors.tables.iceberg_catalog import open_catalog
    from surestream.connectors.tables.iceberg_maintenance import compact_and_expire

    found = _iceberg_outputs(args)
    if isinstance(found, int):
        return found
    spec, outputs = found
    if args.keep_snapshots < 1:
        print("tables compact: --keep-snapshots must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    for tag, sink in outputs.items():
        catalog = open_catalog(sink.catalog, spec.resolve)
        for table in filter(None, (sink.table, sink.quarantine_table)):
            if not catalog.table_exists(table):
                print(f"{tag}: {table}: no table yet")
                continue
            done = compact_and_expire(catalog, table, args.keep_snapshots)
            print(f"{tag}: {table}: {done.files_before} -> {done.files_after} data files "
                  f"({done.rows:,} rows rewritten), {done.expired} snapshots expired")
    return EXIT_OK


def run_scan(args: argparse.Namespace) -> int:
    from surestream.cli.query import render
    from surestream.connectors.tables.iceberg_read import read_table

    found = _iceberg_outputs(args)
    if isinstance(found, int):
        return found
    spec, outputs = found
    sink = outputs[args.output]
    frame = read_table(sink.catalog, sink.table, spec.resolve)
    if args.limit is not None:
        frame = frame.head(args.limit)
    sys.stdout.write(render(frame, args.format))
    return EXIT_OK
