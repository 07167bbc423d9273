"""``surestream query NAME``: the trading warehouse's analytics from the command line.

A thin front end to ``surestream.apps.trading.analytics``: it picks the query from
``QUERIES``, hands the options over as they are (the analytics bind them as SQL parameters)
and prints the answer as an aligned table, one JSON array, or CSV with a header.

Exit codes as for every ``surestream`` command: 0 success, 1 the query failed while
reading the warehouse, 2 a usage error (unknown query, missing warehouse folder, an option
the query does not take or an invalid value).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from surestream.apps.trading.query_catalog import QUERIES, QuerySpec

if TYPE_CHECKING:
    import polars as pl

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
DEFAULT_WAREHOUSE = "out/demo/warehouse"
FORMATS = ("table", "json", "csv")

#: option dest (= analytics keyword) -> how the command line spells it
_OPTION_FLAGS = {"top_n": "--top-n", "since_hours": "--since-hours", "now": "--now",
                 "account_id": "--account-id", "symbol": "--symbol", "limit": "--limit",
                 "size": "--size", "side": "--side"}
#: ``--now`` without a value: measure from the wall clock
_WALL_CLOCK = "wall-clock"
#: integer columns holding epoch milliseconds, shown as UTC times in a table
_TIME_COLUMNS = frozenset({"timestamp_ms", "window_start", "window_end", "alert_ts",
                           "first_alert_ts", "last_alert_ts", "window_start_ms",
                           "detected_at_ms", "computed_at"})


def add_query_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``query`` on the ``surestream`` command's subparsers."""
    names = "\n".join(f"  {spec.name:<30} {spec.help}" for spec in QUERIES.values())
    p = subparsers.add_parser(
        "query", help="ask the trading warehouse: top symbols, portfolios, windows, ...",
        description="Ask the trading warehouse (DuckDB over its Parquet datasets, Delta or "
                    "Iceberg tables) a named question; print the answer as a table, JSON or "
                    "CSV.",
        epilog=f"queries:\n{names}",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    # no argparse choices: run_query reports an unknown name itself, with the list
    p.add_argument("name", metavar="NAME", help="the query (listed below)")
    p.add_argument("--warehouse", default=DEFAULT_WAREHOUSE, metavar="DIR",
                   help="the warehouse folder (default %(default)s)")
    p.add_argument("--top-n", type=int, metavar="N",
                   help="top-traded-symbols: rows (default 20)")
    p.add_argument("--since-hours", type=float, metavar="H",
                   help="top-traded-symbols, sector-performance: the period (default 24)")
    p.add_argument("--now", nargs="?", const=_WALL_CLOCK, metavar="WHEN",
                   help="measure 'today' and --since-hours from the wall clock (or from WHEN: "
                        "ISO time, UTC if no zone, or epoch ms) instead of the data's latest "
                        "event time")
    p.add_argument("--account-id", "--account", dest="account_id", metavar="ID",
                   help="portfolio-analysis: the account")
    p.add_argument("--symbol", metavar="S",
                   help="compare-volume-to-historical: the symbol; windows: one symbol only")
    p.add_argument("--limit", type=int, metavar="N", help="top-symbols: rows (default 10)")
    p.add_argument("--size", metavar="SIZE", help="windows: 1m, 5m or 15m (default 1m)")
    p.add_argument("--side", metavar="SIDE", help="top-symbols: BUY or SELL only")
    p.add_argument("--database", metavar="FILE",
                   help="a DuckDB database file to open (default: in memory)")
    p.add_argument("--memory-limit", metavar="SIZE", help="DuckDB memory_limit, e.g. 2GB")
    p.add_argument("--threads", type=int, metavar="N", help="DuckDB threads")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="output format (default %(default)s)")
    p.set_defaults(func=run_query)
    return p


def _usage_error(message: str) -> int:
    print(f"query: {message}", file=sys.stderr)
    return EXIT_USAGE


def _given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The query options set on the command line (unset ones are None)."""
    return {dest: getattr(args, dest) for dest in _OPTION_FLAGS
            if getattr(args, dest, None) is not None}


def parse_now(text: str) -> datetime | int:
    """``--now``'s value: the wall clock, epoch milliseconds, or an ISO time (UTC if it
    names no zone)."""
    if text == _WALL_CLOCK:
        return datetime.now(UTC)
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--now {text!r} is not an ISO time (2026-03-10T15:00:00Z) or "
                         "epoch milliseconds") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _misplaced(spec: QuerySpec, options: dict[str, Any]) -> list[str]:
    """Flags given that the query would ignore -- refused, since ignoring them silently
    would print an answer to a question the user did not ask."""
    return [_OPTION_FLAGS[o] for o in options if o not in spec.options]


def run_query(args: argparse.Namespace) -> int:
    """Answer ``args.name`` from ``args.warehouse`` and print it in ``args.format``."""
    spec = QUERIES.get(args.name)
    if spec is None:
        return _usage_error(f"unknown query {args.name!r}; choose one of: "
                            f"{', '.join(QUERIES)}")
    warehouse: Path | None = Path(args.warehouse)
    database = getattr(args, "database", None)
    if database is not None and not Path(database).is_file():
        return _usage_error(f"database file {database!r} not found")
    if not warehouse.is_dir() and database is not None:
        warehouse = None  # the database's tables alone
    elif not warehouse.is_dir():
        return _usage_error(f"warehouse folder {str(warehouse)!r} not found (the trading "
                            "demo writes one; or pass --warehouse DIR)")
    options = _given_options(args)
    misplaced = _misplaced(spec, options)
    if misplaced:
        takes = ", ".join(_OPTION_FLAGS[o] for o in spec.options) or "no options"
        return _usage_error(f"{spec.name} does not take {', '.join(misplaced)} "
                            f"(it takes {takes})")
    import duckdb  # (here: every other command's start-up would pay for it)

    from surestream.apps.trading.analytics import TradingAnalytics

    try:
        if "now" in options:
            options["now"] = parse_now(options["now"])
        with TradingAnalytics(database, warehouse=warehouse,
                              memory_limit=getattr(args, "memory_limit", None),
                              threads=getattr(args, "threads", None)) as analytics:
            frame = spec.run(analytics, **options)
    except duckdb.Error as e:
        print(f"query {spec.name}: reading {warehouse or database} failed: {e}",
              file=sys.stderr)
        return EXIT_FAILURE
    except ValueError as e:
        return _usage_error(f"{spec.name}: {_as_flags(str(e))}")
    sys.stdout.write(render(frame, getattr(args, "format", "table")))
    return EXIT_OK


def _as_flags(message: str) -> str:
    """An analytics message with its keyword names spelled as the command line's flags."""
    for dest, flag in _OPTION_FLAGS.items():
        message = message.replace(f"needs {dest}", f"needs {flag}")
    return message


# ---- output -------------------------------------------------------------------------------

def render(frame: pl.DataFrame, fmt: str) -> str:
    """``frame`` as text in one of ``FORMATS``, ending in a newline."""
    if fmt == "json":
        return json.dumps([{k: _json_value(v) for k, v in row.items()}
                           for row in frame.iter_rows(named=True)]) + "\n"
    if fmt == "csv":
        return frame.write_csv()
    if fmt == "table":
        return format_table(frame)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def _json_value(value: Any) -> Any:
    """A JSON-safe value: dates as ISO text, NaN/infinity as null (not valid JSON)."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_cell(value: Any, column: str) -> str:
    """One table cell: thousands separators, 2 decimals (4 for fractions such as ratios),
    epoch-ms columns as UTC times, '-' for null."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) and column in _TIME_COLUMNS:
        moment = datetime.fromtimestamp(value / 1000, tz=UTC)
        text = moment.strftime("%Y-%m-%d %H:%M:%S")
        return text + (f".{value % 1000:03d}" if value % 1000 else "")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float | Decimal):
        number = float(value)
        if not math.isfinite(number):
            return str(number)
        return f"{number:.4f}" if 0 < abs(number) < 1 else f"{number:,.2f}"
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def format_table(frame: pl.DataFrame) -> str:
    """Aligned columns (numbers right, text left) under a header rule, then a row count."""
    columns = frame.columns
    cells = [[format_cell(v, c) for v in frame[c].to_list()] for c in columns]
    numeric = [frame[c].dtype.is_numeric() for c in columns]
    widths = [max([len(c), *map(len, col)]) for c, col in zip(columns, cells, strict=True)]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if right else v.ljust(w)
                         for v, w, right in zip(values, widths, numeric, strict=True)).rstrip()

    rows = [line(list(columns)), line(["-" * w for w in widths])]
    rows += [line([col[i] for col in cells]) for i in range(frame.height)]
    rows.append(f"({frame.height:,} row{'' if frame.height == 1 else 's'})")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run ``query`` on its own (``python -m surestream.cli.query NAME ...``)."""
    ap = argparse.ArgumentParser(prog="surestream")
    add_query_parser(ap.add_subparsers(dest="command", required=True))
    args = ap.parse_args(["query", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
