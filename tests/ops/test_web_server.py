"""The web view's server on its own: what it answers before the first snapshot, its
assets (shipped in the package, nothing fetched from elsewhere), unknown paths, the
address it binds, and that it stops when its block ends. The telemetry here is a stand-in
holding a snapshot made by a real run (``LocalRunner``)."""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.request
from importlib import resources
from types import SimpleNamespace

import pytest

from surestream.model.loader import build_spec
from surestream.ops.web import serve_web_view
from surestream.ops.web.views import FigureRates
from surestream.runners.local.runner import LocalRunner


def spec_dict(tmp_path) -> dict:
    records = [{"id": i, "ts": 1000 * i} for i in range(10)] + [{"id": 99}]  # one error
    return {"pipeline": "tiny", "source": {"type": "memory", "records": records},
            "steps": [{"type": "watermark", "name": "wm", "timestamp_column": "ts"}],
            "outputs": {"main": {"type": "memory"}},
            "checkpoint": {"dir": str(tmp_path / "cp")}}


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def test_answers_starting_then_the_snapshot_and_serves_its_own_assets(tmp_path):
    spec = build_spec(spec_dict(tmp_path))
    telemetry = SimpleNamespace(snapshot={})
    with serve_web_view(telemetry, spec, "127.0.0.1", 0) as url:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
        for api in ("status", "operators", "partitions", "checkpoints", "errors", "graph"):
            status, kind, body = get(url + f"api/{api}")
            assert (status, kind) == (200, "application/json")
            assert json.loads(body)["state"] == "starting"
        runner = LocalRunner(spec)
        runner.run()
        telemetry.snapshot = runner.telemetry.snapshot  # what the runner published last
        body = json.loads(get(url + "api/status")[2])
        assert (body["state"], body["records_in"], body["errors"]) == ("finished", 11, 1)
        page = get(url)
        assert page[:2] == (200, "text/html; charset=utf-8")
        assert b'src="/static/app.js"' in page[2] and b'href="/static/style.css"' in page[2]
        for path, kind in (("static/app.js", "text/javascript"),
                           ("static/style.css", "text/css"), ("graph.svg", "image/svg+xml")):
            status, got, body = get(url + path)
            assert status == 200 and got.startswith(kind) and body
        status, _, body = get(url + "static/../server.py")
        assert status == 404 and b"/api/status" in body  # names what there is
    with pytest.raises(urllib.error.URLError):  # stopped with its block
        get(url + "api/status")


def test_the_page_needs_nothing_from_elsewhere():
    static = resources.files("surestream.ops.web") / "static"
    for name in ("index.html", "app.js", "style.css"):
        text = (static / name).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I), name
        assert "@import" not in text and "<script src=\"http" not in text


def test_a_port_in_use_is_refused(tmp_path):
    spec = build_spec(spec_dict(tmp_path))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError), serve_web_view(SimpleNamespace(snapshot={}), spec,
                                                     "127.0.0.1", port):
            pass


def test_rates_are_taken_over_a_second_of_snapshots():
    rates = FigureRates(window_ms=1000)
    assert rates.rates(10_000, {"e": 100}, True) == {"e": 0.0}  # nothing to compare yet
    rates.rates(10_500, {"e": 150}, True)
    assert rates.rates(11_000, {"e": 300, "x": None}, True) == {"e": 200.0, "x": None}
    # against the newest snapshot at least a second older: 300 records in 1.25 s
    assert rates.rates(11_250, {"e": 400}, True) == {"e": 240.0}
    assert rates.rates(11_250, {"e": 400}, False) == {"e": 0.0}  # a run that has ended
