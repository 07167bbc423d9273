#!/usr/bin/env python3
"""Delta Lake sink: rows/s and commit latency for the trades windows and for 1M raw
trades, a checkpoint every second (``table_sink_common.py`` says what is measured).

    python benchmarks/sink_delta.py [--events 1000000] [--partition-by symbol]

The table is a local folder in a temp directory, removed at the end.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from table_sink_common import DEFAULT_DATA, run_benchmark

from surestream.connectors.tables.delta import DeltaTableSink


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000,
                    help="trades in the input (default: 1000000)")
    ap.add_argument("--data", default=str(DEFAULT_DATA),
                    help=f"folder of the generated trades (default: {DEFAULT_DATA})")
    ap.add_argument("--partition-by", default="symbol",
                    help="partition column of the tables, '' for none (default: symbol)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="surestream-bench-delta-"))
    partition = f", partition_by: [{args.partition_by}]" if args.partition_by else ""
    try:
        run_benchmark("Delta Lake", DeltaTableSink,
                      lambda case, out: f"{{type: delta, path: '{out / 'table'}'{partition}}}",
                      args.events, Path(args.data), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
