"""Prometheus metrics of a run: an HTTP endpoint while it runs, a text file for bounded runs.

Both read only the run's latest telemetry snapshot (``runners/local/telemetry``: a dict the
runner swaps in whole, so a scrape on the server's thread never sees half an update), and
turn it into metric families at scrape or write time (``metrics_families``). The runner
pays nothing per scrape: no lock, no call into its operators.

- ``serve_metrics(telemetry, host, port)``: prometheus-client's HTTP server on
  ``host:port`` (port 0: a free one) with a registry of its own (never the process-global
  one: two runs in one process must not mix), for ``surestream run --metrics-port``. It
  yields the URL and shuts the server down on exit.
- ``metrics_file_writer(telemetry, path)``: the same metrics in Prometheus text format,
  written when the writer starts, after every checkpoint (taken or failed), when the run
  ends and on exit -- not on every snapshot. For ``--metrics-file``: a bounded run's final
  figures, in the format of node_exporter's textfile collector and of a Pushgateway push.
  Each write replaces the file atomically (a temporary file renamed over it:
  prometheus-client's ``write_to_textfile``), so a reader never sees a torn file; it is
  not fsynced: the file is a view of the run, rewritten at the next checkpoint, and an
  fsync (about 5 ms here) would lengthen every checkpoint. A file that cannot be written
  at start is an error (``OSError``: the run does not start); later, a failed write is
  logged and the run goes on (metrics watch a run, they are not its output).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    generate_latest,
    start_http_server,
    write_to_textfile,
)
from prometheus_client.metrics_core import Metric

from surestream.ops.logs import log
from surestream.ops.metrics_families import snapshot_families

#: the path the endpoint is announced at (prometheus-client serves every path alike)
METRICS_PATH = "/metrics"


class SnapshotCollector:
    """A prometheus-client custom collector: the telemetry's latest snapshot, at scrape
    time (``clock``: the wall clock, epoch seconds, for the time since the last
    checkpoint)."""

    def __init__(self, telemetry: Any, clock: Callable[[], float] = time.time) -> None:
        self.telemetry = telemetry
        self.clock = clock

    def collect(self) -> Iterable[Metric]:
        snap = self.telemetry.snapshot  # read once: the runner swaps it whole
        return snapshot_families(snap, self.clock(), pipeline=self.telemetry.pipeline)

    def describe(self) -> Iterable[Metric]:
        return []  # nothing to check at registration: the families come from each snapshot


def metrics_registry(telemetry: Any) -> CollectorRegistry:
    """A registry of its own holding only this run's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(telemetry))
    return registry


def metrics_text(telemetry: Any) -> bytes:
    """The run's metrics now, in Prometheus text format (0.0.4)."""
    return generate_latest(metrics_registry(telemetry))


def endpoint_url(host: str, port: int) -> str:
    """``http://host:port/metrics`` (an IPv6 address in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{METRICS_PATH}"


@contextmanager
def serve_metrics(telemetry: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve the run's metrics on ``host:port`` (0: a free port) while the block runs;
    yields the URL. Raises ``OSError`` if the address cannot be bound."""
    server, thread = start_http_server(port, addr=host, registry=metrics_registry(telemetry))
    try:
        yield endpoint_url(host, server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def metrics_file_writer(telemetry: Any, path: Path) -> Iterator[Path]:
    """Keep ``path`` holding the run's metrics: written at start, after each checkpoint,
    at the run's end and on exit (see the module docstring). Yields the path."""
    path = Path(path)
    registry = metrics_registry(telemetry)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)  # a bad path fails here, before the run
    #: (checkpoints taken, failed, run state) at the last write: a change means write again
    last: dict[str, Any] = {"mark": (0, 0, "running"), "snapshot": None, "error": None}

    def write(snap: dict[str, Any] | None) -> None:
        try:
            write_to_textfile(str(path), registry)
        except OSError as e:
            if str(e) != last["error"]:  # once per distinct problem, not per checkpoint
                log(logging.WARNING, f"cannot write the metrics file {path}: {e}",
                    pipeline=telemetry.pipeline)
            last["error"] = str(e)
            return
        last["snapshot"], last["error"] = snap, None

    def on_snapshot(snap: dict[str, Any]) -> None:
        cps = snap.get("checkpoints", {})
        mark = (cps.get("taken", 0), cps.get("failures", 0), snap.get("state"))
        if mark != last["mark"]:
            last["mark"] = mark
            write(snap)

    telemetry.listeners.append(on_snapshot)
    try:
        yield path
    finally:
        telemetry.listeners.remove(on_snapshot)
        if telemetry.snapshot is not last["snapshot"]:  # anything newer than the last write
            write(telemetry.snapshot)
