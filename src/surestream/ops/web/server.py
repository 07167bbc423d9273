"""The web view's HTTP server: a status page, the pipeline graph and a JSON API.

``serve_web_view`` runs a standard-library ``ThreadingHTTPServer`` in a daemon thread for
as long as its ``with`` block lasts (``surestream run --ui-port N`` wraps the run in it)
and stops it on the way out. It binds 127.0.0.1 unless told otherwise: the page shows
error records, which may hold the data itself.

Routes (GET only)::

    /                   the status page (static/index.html)
    /static/app.js      the page's script: polls the API every second
    /static/style.css
    /graph.svg          the pipeline graph (``ops/graph_svg``), the picture
                        ``surestream graph`` draws
    /api/status  /api/operators  /api/partitions  /api/checkpoints  /api/errors
    /api/graph          the JSON views of ``views.py``

Every answer is made from ``telemetry.snapshot`` alone -- a dict the runner replaces
whole -- so a request never waits for the runner nor sees half a step. The page and its
two assets are shipped in the package (no CDN, no build step) and read once at start.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from surestream.model.spec import PipelineSpec
from surestream.ops.graph_svg import render_svg
from surestream.ops.pipeline_graph import pipeline_graph
from surestream.ops.web.views import (
    FigureRates,
    checkpoints_view,
    errors_view,
    graph_view,
    operators_view,
    partitions_view,
    status_view,
)

log = logging.getLogger("surestream.ops.web")

#: path -> (file in static/, content type)
STATIC_FILES = {"/": ("index.html", "text/html; charset=utf-8"),
                "/index.html": ("index.html", "text/html; charset=utf-8"),
                "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
                "/static/style.css": ("style.css", "text/css; charset=utf-8")}


class WebView:
    """What the server serves: the shipped page, the graph drawn once, and the API views
    of the current snapshot."""

    def __init__(self, telemetry: Any, spec: PipelineSpec) -> None:
        self.telemetry = telemetry
        self.graph = pipeline_graph(spec)
        self.svg = render_svg(self.graph).encode("utf-8")
        self.rates = FigureRates()
        static = resources.files("surestream.ops.web") / "static"
        self.files = {path: ((static / name).read_bytes(), kind)
                      for path, (name, kind) in STATIC_FILES.items()}
        self.api: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "/api/status": lambda s: status_view(s, int(time.time() * 1000)),
            "/api/operators": operators_view,
            "/api/partitions": partitions_view,
            "/api/checkpoints": checkpoints_view,
            "/api/errors": errors_view,
            "/api/graph": lambda s: graph_view(self.graph, s, self.rates),
        }

    def answer(self, path: str) -> tuple[int, bytes, str]:
        """(HTTP status, body, content type) for a GET of ``path``."""
        path = path.split("?", 1)[0]
        if path in self.api:
            snap = self.telemetry.snapshot or {}
            body = json.dumps(self.api[path](snap), default=str, separators=(",", ":"))
            return 200, body.encode("utf-8"), "application/json"
        if path == "/graph.svg":
            return 200, self.svg, "image/svg+xml"
        if path in self.files:
            body, kind = self.files[path]
            return 200, body, kind
        known = ", ".join(["/", "/graph.svg", *self.api])
        return 404, f"not found: {path} (this server has {known})\n".encode(), \
            "text/plain; charset=utf-8"


class _Handler(BaseHTTPRequestHandler):
    server_version = "surestream-web-view"
    view: WebView  # set on the subclass made per server

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        try:
            status, body, kind = self.view.answer(self.path)
        except Exception:  # a view's bug must not kill the server, nor stay silent
            log.exception("web view: GET %s failed", self.path)
            status, body, kind = 500, b"internal error: see the run's log\n", "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("web view: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def url_of(host: str, port: int) -> str:
    """The URL to open: a wildcard address shows as the local one."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


@contextmanager
def serve_web_view(telemetry: Any, spec: PipelineSpec, host: str = "127.0.0.1",
                   port: int = 0) -> Iterator[str]:
    """Serve the web view of ``telemetry`` (a ``RunTelemetry``: only its ``snapshot`` is
    read) while the block runs; yields the URL (port 0: a free port). Raises OSError
    when the address cannot be bound (a port in use)."""
    view = WebView(telemetry, spec)
    handler = type("WebViewHandler", (_Handler,), {"view": view})
    server = (_Server6 if ":" in host else _Server)((host, port), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="surestream-web-view", daemon=True)
    thread.start()
    try:
        yield url_of(host, server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
