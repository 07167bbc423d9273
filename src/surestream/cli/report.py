"""``surestream report RUN_DIR``: write one self-contained HTML report of a run.

A thin front end to ``surestream.ops.report``: RUN_DIR is the run's checkpoint folder
(``checkpoint.dir`` of its spec), which holds the run's history. The report opens offline
(inline SVG charts, no script, no web address). Exit 0 when it was written -- also for a
run that did not finish, which the report says at its top --, 2 when RUN_DIR is not a run's
checkpoint folder, 1 when the report cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def add_report_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``report`` on the ``surestream`` command's subparsers."""
    p = subparsers.add_parser(
        "report", help="write an HTML report of a run: outputs, conservation, late data, "
                       "duplicates, checkpoints, errors",
        description="Write one self-contained HTML report of a run from its checkpoint "
                    "folder: counts per output, the conservation equation (in = main + "
                    "late + errors + duplicates) with its numbers, late records and "
                    "watermark lag over event time, duplicates over time, checkpoint "
                    "durations, error reasons. Charts are inline SVG: the file opens "
                    "offline.")
    p.add_argument("run_dir", metavar="RUN_DIR",
                   help="the run's checkpoint folder (checkpoint.dir of its spec)")
    p.add_argument("-o", "--output", metavar="FILE.html",
                   help="where to write the report (default: <RUN_DIR>-report.html, beside "
                        "the folder)")
    p.set_defaults(func=run_report)
    return p


def run_report(args: argparse.Namespace) -> int:
    from surestream.ops.report import ReportError, default_report_path, gather, render

    run_dir = Path(args.run_dir)
    target = Path(args.output) if args.output else default_report_path(run_dir)
    try:
        data = gather(run_dir)
        text = render(data)
    except ReportError as e:
        print(f"report: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as e:
        print(f"report: cannot write {target}: {e}", file=sys.stderr)
        return EXIT_FAILURE
    eq = data.equation
    print(f"{target}: pipeline {data.view.pipeline!r}, {data.history.state}; "
          f"conservation {eq.status}" + (f" ({eq.reason})" if eq.reason else ""))
    return EXIT_OK
