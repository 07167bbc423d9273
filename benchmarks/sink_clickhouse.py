#!/usr/bin/env python3
"""ClickHouse sink: rows/s and commit latency for the trades windows and for 1M raw
trades, a checkpoint every second (``table_sink_common.py`` says what is measured).

    python benchmarks/sink_clickhouse.py [--events 1000000] [--port 9000]

Without ``--port`` a throwaway clickhouse-server is started on 127.0.0.1 (as the tests
do: ``connectors/tables/clickhouse_server.py``) and stopped at the end. The raw trades
replace by ``trade_id`` (version ``timestamp_ms``); the windows by symbol and window start
(version: window end).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import uuid
from pathlib import Path

from table_sink_common import DEFAULT_DATA, run_benchmark

from surestream.connectors.tables.clickhouse import ClickHouseTableSink
from surestream.connectors.tables.clickhouse_server import EmbeddedClickHouse

KEYS = {"windows": "key_columns: [symbol, window_start], version_column: window_end",
        "raw": "key_columns: [trade_id], version_column: timestamp_ms"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000,
                    help="trades in the input (default: 1000000)")
    ap.add_argument("--data", default=str(DEFAULT_DATA),
                    help=f"folder of the generated trades (default: {DEFAULT_DATA})")
    ap.add_argument("--host", default="127.0.0.1", help="server host (default: 127.0.0.1)")
    ap.add_argument("--port", type=int, default=None,
                    help="native port of a running server (default: None, start one)")
    args = ap.parse_args()
    server = EmbeddedClickHouse().start() if args.port is None else None
    host, port = (server.host, server.port) if server else (args.host, args.port)
    work = Path(tempfile.mkdtemp(prefix="surestream-bench-clickhouse-"))
    try:
        run_benchmark(
            "ClickHouse", ClickHouseTableSink,
            lambda case, out: (f"{{type: clickhouse, host: {host}, port: {port}, "
                               f"table: bench_{case}_{uuid.uuid4().hex[:8]}, {KEYS[case]}}}"),
            args.events, Path(args.data), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
