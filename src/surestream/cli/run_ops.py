"""The operations flags of ``surestream run``: metrics, the web view, logs.

``add_ops_arguments`` adds the flags; ``operations(args, runner)`` starts what they ask for
around a run and stops it afterwards, whatever happens. Each piece lives in ``ops/`` and
reads only the run's published telemetry snapshot (``runners/local/telemetry``):

- ``--metrics-port`` / ``--metrics-host``: the Prometheus endpoint (``ops/metrics``);
- ``--metrics-file``: the metrics in Prometheus text format, at every checkpoint and at the
  end (a Pushgateway-style file for bounded runs);
- ``--ui-port`` / ``--ui-host``: the live web view (``ops/web``);
- ``--log-format`` / ``--log-level``: logs (``ops/logs``).

Where the endpoints are is written to ``ENDPOINTS_FILE`` in the checkpoint folder while the
run lasts, so ``surestream status`` can name them.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from surestream.io.durable import write_atomic

#: in the checkpoint folder while a run serves metrics or the web view
ENDPOINTS_FILE = "run-endpoints.json"


def add_ops_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("operations")
    g.add_argument("--metrics-port", type=int, metavar="N",
                   help="serve Prometheus metrics on this port while running (0: a free "
                        "port, printed; default: none)")
    g.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                   help="the address the metrics endpoint listens on (default %(default)s)")
    g.add_argument("--metrics-file", metavar="FILE",
                   help="write the metrics in Prometheus text format to FILE at every "
                        "checkpoint and at the end (default: none)")
    g.add_argument("--ui-port", type=int, metavar="N",
                   help="serve the live web view (status page and /api/*) on this port "
                        "(0: a free port, printed; default: none)")
    g.add_argument("--ui-host", default="127.0.0.1", metavar="HOST",
                   help="the address the web view listens on (default %(default)s)")
    g.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="log lines as readable text or one JSON object each "
                        "(default %(default)s)")
    g.add_argument("--log-level", default="WARNING",
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="the least severe log lines shown, on standard error; INFO adds "
                        "one line per checkpoint (default %(default)s)")


def configure_logs(args: argparse.Namespace, pipeline: str) -> None:
    """Logging as ``--log-format`` / ``--log-level`` say, for ``pipeline``'s run: before
    its runner is built, since opening the inputs may log already."""
    if getattr(args, "log_format", None):
        from surestream.ops.logs import configure_logging

        configure_logging(args.log_format, args.log_level, pipeline)


@contextmanager
def operations(args: argparse.Namespace, runner: Any) -> Iterator[dict[str, str]]:
    """Start what the flags ask for around ``runner``'s run; yields the endpoints' URLs."""
    telemetry = runner.telemetry
    endpoints: dict[str, str] = {}
    with ExitStack() as stack:
        if getattr(args, "log_format", None):
            from surestream.ops.logs import log_run

            configure_logs(args, runner.spec.pipeline)  # (again: a caller may not have)
            stack.enter_context(log_run(telemetry))
        if getattr(args, "metrics_port", None) is not None:
            from surestream.ops.metrics import serve_metrics

            endpoints["metrics"] = stack.enter_context(
                serve_metrics(telemetry, args.metrics_host, args.metrics_port))
        if getattr(args, "metrics_file", None):
            from surestream.ops.metrics import metrics_file_writer

            stack.enter_context(metrics_file_writer(telemetry, Path(args.metrics_file)))
        if getattr(args, "ui_port", None) is not None:
            from surestream.ops.web import serve_web_view

            endpoints["ui"] = stack.enter_context(
                serve_web_view(telemetry, runner.spec, args.ui_host, args.ui_port))
        if endpoints:
            stack.enter_context(_endpoints_file(runner.store.dir, endpoints))
        yield endpoints


@contextmanager
def _endpoints_file(folder: Path, endpoints: dict[str, str]) -> Iterator[None]:
    path = Path(folder) / ENDPOINTS_FILE
    Path(folder).mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"pid": os.getpid(), **endpoints}).encode())
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def read_endpoints(folder: Path) -> dict[str, Any] | None:
    """What a run on ``folder`` serves (``pid``, ``metrics``, ``ui`` URLs), or None."""
    path = Path(folder) / ENDPOINTS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
