"""The pipeline graph: the nodes and labelled edges each shipped spec says it has, and
`surestream graph` drawing it as SVG (well-formed, one live figure slot per node and edge)
and PNG (a real, non-blank picture).

The expected graphs are read off the spec files by hand: which steps each stream has,
what each stream reads, which side tags each step emits, which outputs take them."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from surestream.cli.main import main
from surestream.model.loader import build_spec, load_spec
from surestream.ops.graph_svg import render_svg
from surestream.ops.pipeline_graph import ERROR_SPLIT, pipeline_graph

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "src" / "surestream" / "examples"
SVG = "{http://www.w3.org/2000/svg}"


def flow(graph) -> set[tuple[str, str, str]]:
    """(from, to, label) of every edge that is not an errors edge."""
    return {(e.source, e.target, e.text()) for e in graph.edges if e.role != "errors"}


def errors_edges(graph) -> set[tuple[str, str, str]]:
    return {(e.source, e.target, e.text()) for e in graph.edges if e.role == "errors"}


def test_trades_router_graph():
    g = pipeline_graph(load_spec(EXAMPLES / "trades_router.yaml"))
    ops = ["event_time", "quarantine_late", "dedup_by_trade_id", "route_by_status"]
    outs = ["main", "filled", "cancelled", "rejected", "unroutable", "late", "errors"]
    assert {n.id for n in g.nodes} == {"source:source", *ops, *(f"output:{t}" for t in outs)}
    assert {n.id: n.detail for n in g.nodes if n.kind == "operator"} == {
        "event_time": "watermark", "quarantine_late": "late_data_side_output",
        "dedup_by_trade_id": "keyed_dedup", "route_by_status": "route"}
    assert flow(g) == {
        ("source:source", "event_time", "source"),
        ("event_time", "quarantine_late", "main"),
        ("quarantine_late", "dedup_by_trade_id", "main"),
        ("dedup_by_trade_id", "route_by_status", "main"),
        ("quarantine_late", "output:late", "late"),
        ("route_by_status", "output:main", "main"),  # NEW stays on main
        ("route_by_status", "output:filled", "filled"),  # FILLED and PARTIALLY_FILLED
        ("route_by_status", "output:cancelled", "cancelled"),
        ("route_by_status", "output:rejected", "rejected"),
        ("route_by_status", "output:unroutable", "unroutable"),  # the default
    }
    # one errors output: every source and step gives its error records straight to it
    assert errors_edges(g) == {(n, "output:errors", "errors")
                               for n in ["source:source", *ops]}


def test_trading_router_graph_splits_errors_by_kind():
    g = pipeline_graph(load_spec(EXAMPLES / "trading" / "router.yaml"))
    steps = ["trade_time", "trade_date", "flag_late_trades", "dedup_trades",
             "route_by_status"]
    routed = ["processed.trades.new", "processed.trades.filled",
              "processed.trades.cancelled", "processed.trades.rejected",
              "dlq.trades.unroutable"]
    assert flow(g) == {
        ("source:source", "trade_time", "source"),
        *((a, b, "main") for a, b in zip(steps, steps[1:], strict=False)),
        *(("route_by_status", f"output:{t}", t) for t in routed),
        ("route_by_status", "output:main", "main"),  # the spec's `main`: no route sends to it
    }  # flag_late_trades flags (strategy flag): no late edge
    assert errors_edges(g) == {
        *((n, ERROR_SPLIT, "errors") for n in ["source:source", *steps]),
        (ERROR_SPLIT, "output:dlq.deserialization", "input"),
        (ERROR_SPLIT, "output:dlq.processing-errors", "processing"),
        (ERROR_SPLIT, "output:errors", "other"),
    }


def test_trading_aggregation_graph_fans_out_and_unions():
    g = pipeline_graph(load_spec(EXAMPLES / "trading" / "aggregation.yaml"))
    trades = ["trade_time", "dedup_trades", "trade_scope", "trade_measures"]
    agg = ["aggregate_columns", "ratio", "stamp_computed_at"]
    windows = {"1m": "ohlcv_1m", "5m": "ohlcv_5m", "15m": "ohlcv_15m"}
    # the stream analytics.trade-aggregates has no steps: no node, only its output
    assert {n.id for n in g.nodes if n.kind == "operator"} == {*trades, *agg,
                                                              *windows.values()}
    assert flow(g) == {
        ("source:source", "trade_time", "source"),
        *((a, b, "main") for a, b in zip(trades, trades[1:], strict=False)),
        *(("trade_measures", w, "trades") for w in windows.values()),  # three streams read it
        *((w, "aggregate_columns", f"agg_{size}") for size, w in windows.items()),  # union
        *((w, f"output:late_{size}", f"late_{size}") for size, w in windows.items()),
        *((a, b, "main") for a, b in zip(agg, agg[1:], strict=False)),
        ("stamp_computed_at", "output:analytics.trade-aggregates",
         "analytics.trade-aggregates"),
    }
    into_union = [e for e in g.edges if e.target == "aggregate_columns"]
    assert len(into_union) == 3


def test_trading_enrichment_graph_has_the_updates_edge():
    g = pipeline_graph(load_spec(EXAMPLES / "trading" / "enrichment.yaml"))
    chain = ["trade_time", "trade_date", "flag_late_trades", "dedup_trades", "filled_only",
             "reference_data", "stamp_enriched_at"]
    assert {n.id for n in g.nodes if n.kind == "source"} == {"source:trades",
                                                             "source:reference_updates"}
    assert flow(g) == {
        ("source:trades", "trade_time", "trades"),
        *((a, b, "main") for a, b in zip(chain, chain[1:], strict=False)),
        # the stream `reference` (no steps) reads the source: its records update the state
        ("source:reference_updates", "reference_data", "reference"),
        ("stamp_enriched_at", "output:enriched.trades", "enriched.trades"),
    }
    (updates,) = [e for e in g.edges if e.updates]
    assert (updates.source, updates.target) == ("source:reference_updates", "reference_data")


@pytest.mark.parametrize("name, late_step, late_tag", [
    ("alerts", "quarantine_late_prices", "quarantine.prices.late"),
    ("orderbook", "quarantine_late_books", "quarantine.orderbook.late"),
])
def test_trading_alerts_and_orderbook_graphs(name, late_step, late_tag):
    g = pipeline_graph(load_spec(EXAMPLES / "trading" / f"{name}.yaml"))
    steps = {"alerts": ["price_time", "quarantine_late_prices", "traded_prices_only",
                        "price_alerts", "alert_date"],
             "orderbook": ["book_time", "quarantine_late_books", "book_metrics",
                           "book_deltas", "book_date"]}[name]
    assert flow(g) == {
        ("source:source", steps[0], "source"),
        *((a, b, "main") for a, b in zip(steps, steps[1:], strict=False)),
        (late_step, f"output:{late_tag}", late_tag),
        (steps[-1], "output:main", "main"),
    }


def wiring_spec():
    """Duplicates and window-late side outputs, a stream reading a side tag, a stream
    without steps straight from a source, and no `errors` output declared."""
    return build_spec({
        "pipeline": "wiring",
        "sources": {"trades": {"type": "file", "path": "t.jsonl"},
                    "quotes": {"type": "file", "path": "q.jsonl"}},
        "streams": {
            "clean": {"from": "trades", "steps": [
                {"type": "watermark", "name": "wm", "timestamp_column": "ts"},
                {"type": "keyed_dedup", "name": "dd", "key_fields": ["id"],
                 "time_window_ms": 60000, "duplicates_output_tag": "duplicates"},
                {"type": "window", "name": "win", "key_fields": ["sym"], "kind": "tumbling",
                 "size_ms": 60000, "late_output_tag": "late_window",
                 "aggregations": {"n": "count()"}}]},
            "late_fix": {"from": "late_window", "steps": [
                {"type": "with_columns", "name": "mark_late", "columns": {"late": "TRUE"}}]},
            "raw_quotes": {"from": "quotes", "steps": []}},
        "outputs": {t: {"type": "file", "path": f"out/{t}.jsonl"}
                    for t in ("clean", "duplicates", "late_fix", "raw_quotes")}})


def test_side_tags_read_by_streams_and_streams_without_steps():
    g = pipeline_graph(wiring_spec())
    assert flow(g) == {
        ("source:trades", "wm", "trades"),
        ("wm", "dd", "main"),
        ("dd", "win", "main"),
        ("dd", "output:duplicates", "duplicates"),
        ("win", "output:clean", "clean"),
        ("win", "mark_late", "late_window"),
        ("mark_late", "output:late_fix", "late_fix"),
        ("source:quotes", "output:raw_quotes", "raw_quotes"),
    }
    # the runner's default errors output is drawn although the spec names none
    assert errors_edges(g) == {(n, "output:errors", "errors")
                               for n in ("source:trades", "source:quotes", "wm", "dd", "win",
                                         "mark_late")}


@pytest.mark.parametrize("spec", ["trades_router.yaml", "trading/aggregation.yaml",
                                  "trading/enrichment.yaml"])
def test_svg_has_a_box_per_node_and_a_rate_slot_per_edge(spec):
    g = pipeline_graph(load_spec(EXAMPLES / spec))
    svg = render_svg(g)
    assert svg == render_svg(pipeline_graph(load_spec(EXAMPLES / spec)))  # deterministic
    root = ET.fromstring(svg.encode())
    assert root.tag == f"{SVG}svg" and float(root.get("width")) > 0
    by_id = {el.get("id"): el for el in root.iter() if el.get("id")}
    for n in g.nodes:
        box = by_id[f"node-{n.id}"]
        texts = [t.text for t in box.iter(f"{SVG}text")]
        assert n.name in texts and f"count-{n.id}" in by_id
    for e in g.edges:
        group = by_id[f"edge-{e.id}"]
        assert group.find(f"{SVG}path").get("d").startswith("M")
        assert e.text() in [t.text for t in group.iter(f"{SVG}text")]
        assert by_id[f"rate-{e.id}"].tag == f"{SVG}text"


def surestream(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surestream", *args], cwd=cwd,
                          capture_output=True, timeout=120)


def graph_cli(capsysbinary, *args: str) -> tuple[int, bytes, bytes]:
    """``surestream graph ARGS`` in this process: (exit code, stdout, stderr)."""
    code = main(["graph", *args])
    out, err = capsysbinary.readouterr()
    return code, out, err


def test_graph_command_writes_svg_to_stdout_and_a_png_file(tmp_path, monkeypatch,
                                                          capsysbinary):
    spec = EXAMPLES / "trades_router.yaml"
    r = surestream("graph", str(spec), cwd=tmp_path)  # once as a user runs it
    assert r.returncode == 0, r.stderr
    root = ET.fromstring(r.stdout)
    names = {t.text for t in root.iter(f"{SVG}text")}
    assert {"event_time", "route_by_status", "filled", "late", "errors"} <= names
    monkeypatch.chdir(tmp_path)
    code, _, err = graph_cli(capsysbinary, str(spec), "-o", "router.png")
    assert code == 0, err
    image = Image.open(tmp_path / "router.png")
    assert image.format == "PNG"
    # the same picture: the SVG's size at the default scale 2
    assert image.size == (2 * round(float(root.get("width"))),
                          2 * round(float(root.get("height"))))
    pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 10  # not blank: boxes, lines and text on white
    assert 0.02 < (pixels < 200).mean() < 0.6
    code, _, _ = graph_cli(capsysbinary, str(spec), "-o", "router.svg")
    assert code == 0 and (tmp_path / "router.svg").read_bytes() == r.stdout


def test_graph_command_refuses_an_unknown_format_and_a_bad_spec(tmp_path, monkeypatch,
                                                               capsysbinary):
    monkeypatch.chdir(tmp_path)
    code, _, err = graph_cli(capsysbinary, str(EXAMPLES / "trades_router.yaml"),
                             "-o", "g.gif")
    assert code == 2 and b".svg or .png" in err
    assert not (tmp_path / "g.gif").exists()
    (tmp_path / "bad.yaml").write_text("pipeline: p\nsource: {type: file, path: x}\n"
                                       "steps: [{type: nope}]\n")
    code, out, err = graph_cli(capsysbinary, "bad.yaml")
    assert code == 2 and b"steps[0]" in err and not out
