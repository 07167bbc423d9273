"""``surestream report RUN_DIR``: one self-contained HTML report of a finished run.

RUN_DIR is the run's checkpoint folder: its ``run-history.jsonl`` (written by the runner,
``runners/local/telemetry``) holds the spec, samples of the counters and the watermark,
every checkpoint and the end. The report reads that and the outputs themselves:

- ``spec_view``: the spec as data (never validated: that would import user code);
- ``history``: the history as the processes the run took, their counts added up;
- ``outputs``: the outputs read back (counts, a few columns);
- ``conservation``: in = main + late + errors + duplicates, each term measured on its own;
- ``gather``: all of it for one run (``RunData``);
- ``charts`` (matplotlib, inline SVG), ``html`` (blocks and the page), ``sections`` (one
  run's sections).

Applications add sections of their own (the trading demo: ``apps/trading/report.py``)
with ``run_sections`` and ``page``.
"""

from __future__ import annotations

from pathlib import Path

from surestream.ops.report.gather import RunData, gather
from surestream.ops.report.history import ReportError
from surestream.ops.report.html import page
from surestream.ops.report.sections import run_sections

__all__ = ["ReportError", "RunData", "default_report_path", "gather", "page", "render",
           "report_html", "run_sections", "write_report"]


def render(data: RunData) -> str:
    """One run's report as an HTML page."""
    return page(f"Run report: {data.view.pipeline}", run_sections(data),
                f"checkpoint folder {data.run_dir}")


def report_html(run_dir: Path) -> str:
    """The report of the run whose checkpoint folder is ``run_dir``, as one HTML page."""
    return render(gather(Path(run_dir)))


def default_report_path(run_dir: Path) -> Path:
    """Beside the checkpoint folder: ``<folder>-report.html``."""
    run_dir = Path(run_dir).resolve()
    return run_dir.parent / f"{run_dir.name}-report.html"


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default ``default_report_path``)."""
    target = Path(out) if out is not None else default_report_path(run_dir)
    text = report_html(run_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target
