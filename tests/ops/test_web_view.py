"""The live web view end to end: `surestream run --ui-port 0` on a pipeline whose input
pauses twice, its JSON API checked against the counts the input was built to produce, and
the page itself loaded in headless Chromium (Debian's `chromium`, installed by
scripts/test-deps.sh): the DOM after the page's script ran holds the graph and the
counters with those counts, and a screenshot of it is not blank where the graph and the
counters are.

The input is a generator (written here) that yields the first part of the records, waits
for a gate file, yields the rest, and waits again: the run stays up with known counts
while the test looks, then goes on when the test says so -- no timing involved. Every
record is built with the fate the pipeline must give it: an error (no timestamp), late
(a minute behind the watermark), a duplicate trade id, or a result routed by status.

The tests share one run and follow it in order: first part, second part, the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from surestream.cli.run_ops import read_endpoints

REPO = Path(__file__).resolve().parents[2]
FIRST, SECOND = 2000, 500
BATCH = 250  # a checkpoint after every batch: a snapshot with the batch's counts
BASE_TS = 1_700_000_000_000
DELAY_MS = 5000
BUDGET_MS = 4000  # Chromium's virtual time for the page's script: about four polls
WINDOW = (1280, 2200)

GENERATOR = '''
import json, time
from pathlib import Path

def records(parts, gate):
    """The records of each file in ``parts``; between two parts and after the last, wait
    for the gate file ``<gate>/<i>`` (at most two minutes)."""
    for i, part in enumerate(parts):
        with open(part) as f:
            for line in f:
                yield json.loads(line)
        deadline = time.monotonic() + 120
        while not (Path(gate) / str(i)).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
'''


def make_records(start: int, stop: int) -> tuple[list[dict], list[str]]:
    """Records ``start..stop`` and the fate of each: errors, late, duplicates, filled
    (status FILLED) or main (status NEW)."""
    records, fates = [], []
    for i in range(start, stop):
        ts = BASE_TS + i * 1000
        if i % 10 == 3:
            rec, fate = {"trade_id": f"t{i}", "status": "NEW"}, "errors"  # no timestamp
        elif i % 10 == 7 and i >= 100:  # a minute behind: far beyond the 5 s allowed
            rec, fate = {"trade_id": f"t{i}", "timestamp_ms": ts - 60_000,
                         "status": "NEW"}, "late"
        elif i % 10 == 5:  # the trade id of the record before, a second later
            rec, fate = {"trade_id": f"t{i - 1}", "timestamp_ms": ts,
                         "status": "NEW"}, "duplicates"
        else:
            status = "FILLED" if i % 2 == 0 else "NEW"
            rec, fate = {"trade_id": f"t{i}", "timestamp_ms": ts, "status": status}, \
                "filled" if status == "FILLED" else "main"
        records.append(rec)
        fates.append(fate)
    return records, fates


def expected(n: int) -> dict:
    """What the run must report after ``n`` records."""
    records, fates = make_records(0, n)
    fate = Counter(fates)
    max_ts = max(r["timestamp_ms"] for r in records if "timestamp_ms" in r)
    return {"records": n, **{k: fate[k] for k in ("errors", "late", "duplicates", "filled",
                                                  "main")},
            "watermark": max_ts - DELAY_MS - 1}


SPEC = """
pipeline: web-view-test
source: {{type: generator, function: "webgen:records",
          params: {{parts: [{first}, {second}], gate: {gate}}}}}
steps:
  - {{type: watermark, name: event_time, timestamp_column: timestamp_ms,
     max_out_of_orderness_ms: {delay}}}
  - {{type: late_data_side_output, name: quarantine_late, output_tag: late}}
  - {{type: keyed_dedup, name: dedup_by_trade_id, key_fields: [trade_id],
     time_window_ms: 600000, duplicates_output_tag: duplicates}}
  - {{type: route, name: route_by_status, field: status, routes: {{NEW: main, FILLED: filled}},
     default: other}}
outputs:
  main: {{type: file, path: out/main.jsonl}}
  filled: {{type: file, path: out/filled.jsonl}}
  other: {{type: file, path: out/other.jsonl}}
  late: {{type: file, path: out/late.jsonl}}
  duplicates: {{type: file, path: out/duplicates.jsonl}}
  errors: {{type: file, path: out/errors.jsonl}}
checkpoint: {{dir: cp, interval_records: {batch}}}
runtime: {{batch_size: {batch}}}
"""


class Run:
    """The pipeline run under test: its process, folder and web view URL."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.gate = folder / "gate"
        self.gate.mkdir()
        (folder / "webgen.py").write_text(GENERATOR)
        for name, (a, b) in {"first": (0, FIRST), "second": (FIRST, FIRST + SECOND)}.items():
            with open(folder / f"{name}.jsonl", "w") as f:
                for rec in make_records(a, b)[0]:
                    f.write(json.dumps(rec) + "\n")
        (folder / "spec.yaml").write_text(SPEC.format(
            first=folder / "first.jsonl", second=folder / "second.jsonl", gate=self.gate,
            delay=DELAY_MS, batch=BATCH))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(REPO / "src"), str(folder), os.environ.get("PYTHONPATH", "")])}
        self.stderr = open(folder / "run.err", "w")  # noqa: SIM115 (closed by stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "surestream", "run", "spec.yaml", "--ui-port", "0"],
            cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=self.stderr)
        self.url = self._wait_for_url()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            endpoints = read_endpoints(self.folder / "cp")
            if endpoints and endpoints.get("ui"):
                return endpoints["ui"]
            if self.proc.poll() is not None:
                pytest.fail(f"the run ended early: {(self.folder / 'run.err').read_text()}")
            time.sleep(0.05)
        pytest.fail("the run did not announce its web view within 60 s")

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url.rstrip("/") + path, timeout=10) as r:
            return r.read()

    def api(self, name: str) -> dict:
        return json.loads(self.get(f"/api/{name}"))

    def wait_for_records(self, n: int) -> dict:
        """The status once the run reports ``n`` records read (it pauses there)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = self.api("status")
            if status.get("records_in") == n:
                return status
            time.sleep(0.05)
        pytest.fail(f"the run never reported {n} records: {status}")

    def open_gate(self, i: int) -> None:
        (self.gate / str(i)).touch()

    def stop(self) -> None:
        for i in range(2):
            self.open_gate(i)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    r = Run(tmp_path_factory.mktemp("webview"))
    yield r
    r.stop()


# -- the page in Chromium ---------------------------------------------------------------
def chromium_page(url: str, folder: Path, name: str) -> tuple[Element, np.ndarray]:
    """Load ``url`` in headless Chromium, let its script run ``BUDGET_MS`` of virtual
    time, and return the DOM it left and a screenshot (RGB pixels) of the window."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is not installed: run scripts/test-deps.sh (Debian chromium)")
    shot = folder / f"{name}.png"
    cmd = [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", f"--user-data-dir={folder / f'chromium-{name}'}",
           f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--virtual-time-budget={BUDGET_MS}",
           f"--screenshot={shot}", "--dump-dom", url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # its own group: killed as one
    try:
        dom, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("chromium did not finish within 90 s")
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    (folder / f"{name}.html").write_bytes(dom)
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    return parse_html(dom.decode()), pixels


class Element:
    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag, self.attrs, self.children, self.parts = tag, attrs, [], []

    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.text() for p in self.parts)

    def iter(self):
        yield self
        for c in self.children:
            yield from c.iter()

    def find(self, **attrs: str) -> Element:
        found = self.find_all(**attrs)
        assert found, f"no element with {attrs}"
        return found[0]

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        want = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [e for e in self.iter() if (tag is None or e.tag == tag)
                and all(e.attrs.get(k) == v for k, v in want.items())]


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


def parse_html(html: str) -> Element:
    """A small DOM of the page (the standard library's tokenizer; enough for a page this
    simple): elements with attributes, children and text."""
    root = Element("#document", {})
    stack = [root]

    class Builder(HTMLParser):
        def handle_starttag(self, tag, attrs):
            el = Element(tag, {k: v or "" for k, v in attrs})
            stack[-1].children.append(el)
            stack[-1].parts.append(el)
            if tag not in VOID:
                stack.append(el)

        def handle_startendtag(self, tag, attrs):
            el = Element(tag, {k: v or "" for k, v in attrs})
            stack[-1].children.append(el)
            stack[-1].parts.append(el)

        def handle_endtag(self, tag):
            for i in range(len(stack) - 1, 0, -1):
                if stack[i].tag == tag:
                    del stack[i:]
                    break

        def handle_data(self, data):
            stack[-1].parts.append(data)

    Builder(convert_charrefs=True).feed(html)
    return root


def number(text: str) -> int:
    """A count as the page shows it (``2,000``, ``2,000 in``)."""
    return int(text.split()[0].replace(",", ""))


def cells(row: Element) -> dict[str, str]:
    return {td.attrs["data-field"]: td.text() for td in row.find_all("td")
            if "data-field" in td.attrs}


def region(pixels: np.ndarray, box: dict) -> np.ndarray:
    return pixels[box["y"]:box["y"] + box["h"], box["x"]:box["x"] + box["w"]]


def non_white(pixels: np.ndarray) -> float:
    return float((pixels.min(axis=2) < 235).mean())


def edge_id(source: str, target: str, tag: str) -> str:
    return f"{source}->{target}[{tag}]"


# -- the tests -----------------------------------------------------------------------
def test_api_reports_the_run_s_own_counts_while_it_runs(run):
    want = expected(FIRST)
    status = run.wait_for_records(FIRST)
    assert status["pipeline"] == "web-view-test" and status["state"] == "running"
    assert {k: status[k] for k in ("late", "duplicates", "errors")} == \
        {k: want[k] for k in ("late", "duplicates", "errors")}
    assert status["watermark"] == want["watermark"]
    assert status["watermark_lag_ms"] == DELAY_MS + 1
    assert status["checkpoints"] == {**status["checkpoints"], "taken": FIRST // BATCH,
                                     "failed": 0}
    outputs = {o["tag"]: o["written"] for o in status["outputs"]}
    assert outputs == {"main": want["main"], "filled": want["filled"], "other": 0,
                       "late": want["late"], "duplicates": want["duplicates"],
                       "errors": want["errors"]}

    ops = {o["name"]: o for o in run.api("operators")["operators"]}
    assert list(ops) == ["event_time", "quarantine_late", "dedup_by_trade_id",
                         "route_by_status"]
    on_time = FIRST - want["errors"] - want["late"]
    assert (ops["event_time"]["records_in"], ops["event_time"]["records_out"]) == \
        (FIRST, FIRST - want["errors"])
    assert ops["quarantine_late"]["emitted"] == {"late": want["late"]}
    assert (ops["dedup_by_trade_id"]["records_in"], ops["dedup_by_trade_id"]["emitted"]) == \
        (on_time, {"duplicates": want["duplicates"]})
    assert ops["route_by_status"]["records_out"] == want["main"]
    assert ops["route_by_status"]["emitted"] == {"filled": want["filled"]}

    (part,) = run.api("partitions")["partitions"]
    assert (part["source"], part["position"], part["ended"]) == ("source", FIRST, False)
    assert part["watermark"] == want["watermark"]

    cps = run.api("checkpoints")
    assert [c["records_in"] for c in cps["history"]] == list(range(BATCH, FIRST + 1, BATCH))
    assert all(c["ok"] for c in cps["history"]) and cps["failed"] == 0

    errors = run.api("errors")
    assert errors["total"] == want["errors"]
    assert errors["by_reason"] == [{"operator": "event_time",
                                    "error_type": "missing_timestamp",
                                    "count": want["errors"]}]
    newest = errors["latest"][0]
    assert newest["error_message"] == "missing timestamp 'timestamp_ms'"
    assert json.loads(newest["raw"])["trade_id"] == f"t{FIRST - 7}"  # the last one read

    graph = run.api("graph")
    counts = {e["id"]: e["count"] for e in graph["edges"]}
    assert counts[edge_id("quarantine_late", "output:late", "late")] == want["late"]
    assert counts[edge_id("dedup_by_trade_id", "output:duplicates", "duplicates")] == \
        want["duplicates"]
    assert counts[edge_id("route_by_status", "output:filled", "filled")] == want["filled"]
    assert counts[edge_id("event_time", "output:errors", "errors")] == want["errors"]
    assert counts[edge_id("source:source", "output:errors", "errors")] == 0
    nodes = {n["id"]: n["count"] for n in graph["nodes"]}
    assert nodes["source:source"] == FIRST and nodes["output:main"] == want["main"]

    svg = ET.fromstring(run.get("/graph.svg"))
    ids = {el.get("id") for el in svg.iter() if el.get("id")}
    assert {f"rate-{e['id']}" for e in graph["edges"]} <= ids
    assert {f"count-{n['id']}" for n in graph["nodes"]} <= ids


def check_page(dom: Element, pixels: np.ndarray, records: int) -> None:
    """The DOM holds the graph and the counters with the counts after ``records``; the
    screenshot is not blank in the graph and in the counters."""
    want = expected(records)
    body = dom.find_all("body")[0]
    assert int(body.attrs["data-polls"]) >= 2  # it polled, and polled again
    assert dom.find(id="state").text() == "running"
    assert number(dom.find(id="records-in").text()) == records
    for key in ("late", "duplicates", "errors"):
        assert number(dom.find(id=key).text()) == want[key], key
    assert number(dom.find(id="checkpoints-taken").text()) == records // BATCH
    # the graph: a box per node, each with the count the run reports for it
    graph = dom.find(id="graph")
    svg_nodes = {g.attrs["data-node"] for g in graph.find_all("g") if "data-node" in g.attrs}
    assert svg_nodes == {"source:source", "event_time", "quarantine_late",
                         "dedup_by_trade_id", "route_by_status", "output:main",
                         "output:filled", "output:other", "output:late",
                         "output:duplicates", "output:errors"}
    shown = {n: number(dom.find(id=f"count-{n}").text()) for n in svg_nodes}
    assert shown == {"source:source": records, "event_time": records,
                     "quarantine_late": records - want["errors"],
                     "dedup_by_trade_id": records - want["errors"] - want["late"],
                     "route_by_status": want["filled"] + want["main"],
                     "output:main": want["main"], "output:filled": want["filled"],
                     "output:other": 0, "output:late": want["late"],
                     "output:duplicates": want["duplicates"],
                     "output:errors": want["errors"]}
    # records/s on every edge, and on an errors edge how many so far
    rates = [t.text() for t in graph.find_all("text") if t.attrs.get("id", "").startswith(
        "rate-")]
    # 9 edges of records (source, 3 along the stream, 3 routes, late, duplicates) and an
    # errors edge from the source and each of the 4 steps
    assert len(rates) == 14 and all(r.endswith("/s") for r in rates), rates
    errors_edge = dom.find(id=f"rate-{edge_id('event_time', 'output:errors', 'errors')}")
    assert number(errors_edge.text()) == want["errors"]
    # the counter tables
    rows = {r.attrs["data-operator"]: cells(r) for r in dom.find(id="operators").find_all("tr")
            if "data-operator" in r.attrs}
    assert {op: number(c["records_in"]) for op, c in rows.items()} == \
        {k: v for k, v in shown.items() if not k.startswith(("source:", "output:"))}
    assert rows["dedup_by_trade_id"]["emitted"] == f"duplicates {want['duplicates']:,}"
    outputs = {r.attrs["data-output"]: number(cells(r)["written"])
               for r in dom.find(id="outputs").find_all("tr") if "data-output" in r.attrs}
    assert outputs == {"main": want["main"], "filled": want["filled"], "other": 0,
                       "late": want["late"], "duplicates": want["duplicates"],
                       "errors": want["errors"]}
    (partition,) = [cells(r) for r in dom.find(id="partitions").find_all("tr")
                    if "data-partition" in r.attrs]
    assert number(partition["position"]) == records
    checkpoints = [cells(r) for r in dom.find(id="checkpoints").find_all("tr")
                   if "data-checkpoint" in r.attrs]
    assert [number(c["records_in"]) for c in checkpoints] == \
        list(range(records, 0, -BATCH))[:len(checkpoints)]
    assert len(checkpoints) == records // BATCH and all(c["result"] == "ok"
                                                         for c in checkpoints)
    (reason,) = [cells(r) for r in dom.find(id="error-reasons").find_all("tr")
                 if cells(r)]
    assert (reason["operator"], reason["error_type"], number(reason["count"])) == \
        ("event_time", "missing_timestamp", want["errors"])
    latest = [cells(r) for r in dom.find(id="latest-errors").find_all("tr") if cells(r)]
    assert latest and all(c["error_message"] == "missing timestamp 'timestamp_ms'"
                          for c in latest)
    # the screenshot: drawn boxes and lines in the graph, text in the counters
    regions = json.loads(body.attrs["data-regions"])
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    graph_px, counters_px = region(pixels, regions["graph"]), region(pixels,
                                                                     regions["counters"])
    assert graph_px.size and counters_px.size
    assert non_white(graph_px) > 0.03, non_white(graph_px)
    assert non_white(counters_px) > 0.01, non_white(counters_px)
    blue = (graph_px[..., 2] > 150) & (graph_px[..., 0] < 80)  # operator box outlines
    assert blue.sum() > 500
    assert non_white(region(pixels, regions["status-cards"])) > 0.01


def test_page_in_chromium_shows_the_graph_and_counters(run, tmp_path):
    run.wait_for_records(FIRST)
    dom, pixels = chromium_page(run.url, tmp_path, "first")
    check_page(dom, pixels, FIRST)


def test_page_follows_the_run_as_it_goes_on(run, tmp_path):
    run.wait_for_records(FIRST)
    run.open_gate(0)  # the second part of the input
    status = run.wait_for_records(FIRST + SECOND)
    assert status["state"] == "running"
    assert status["late"] == expected(FIRST + SECOND)["late"]
    dom, pixels = chromium_page(run.url, tmp_path, "second")
    check_page(dom, pixels, FIRST + SECOND)


def test_the_run_ends_and_its_outputs_hold_what_the_view_showed(run):
    last = run.api("status")
    run.stop()
    assert run.proc.returncode == 0, (run.folder / "run.err").read_text()
    want = expected(FIRST + SECOND)
    written = {p.stem: len(p.read_text().splitlines())
               for p in (run.folder / "out").glob("*.jsonl")}
    assert written == {"main": want["main"], "filled": want["filled"], "other": 0,
                       "late": want["late"], "duplicates": want["duplicates"],
                       "errors": want["errors"]}
    assert {o["tag"]: o["written"] for o in last["outputs"]} == written
    with pytest.raises(urllib.error.URLError):  # the server stopped with the run
        run.get("/api/status")
    assert read_endpoints(run.folder / "cp") is None
