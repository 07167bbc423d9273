"""The pipeline graph drawn as SVG, by hand: a small layered layout and a plain renderer.

Pipelines are small (tens of nodes), so the classic layered drawing is enough, done
simply and deterministically (the same spec gives the same bytes):

1. *layers*: sources in the first column, every other node one column right of its
   furthest producer (longest path), every output in the last column;
2. *dummies*: an edge that spans several columns gets a waypoint in each column it
   crosses, so it runs between boxes instead of through them;
3. *order*: a few barycenter sweeps (each node moved towards the mean position of its
   neighbours in the previous column, then the next) to uncross edges a little;
4. *rows*: each node as close to its producers' rows as the nodes above it allow.

Error records take another way: every source and operator can give records up, so an
``errors`` edge from each would cross the whole picture. Instead each leaves its box
downwards, along the gap right of its column, to a bus under the graph that leads to the
errors output (or to the split by kind and the error outputs beside it).

Every edge has a tag label and an empty ``<text id="rate-<edge id>">``; every node an empty
``<text id="count-<node id>">``: the web view writes the live figures into them, the
command ``surestream graph`` leaves them empty -- one picture for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from surestream.ops.pipeline_graph import (
    ERROR_OUTPUT,
    ERRORS,
    OPERATOR,
    OUTPUT,
    SOURCE,
    SPLIT,
    GraphEdge,
    GraphNode,
    PipelineGraph,
)

FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
BOX_H = 58
ROW_GAP = 46
MIN_BOX_W, MAX_BOX_W = 132, 250
#: room between columns for an edge's labels: its tag, and a rate such as 123,456/s
MIN_COL_GAP = 84
MARGIN = 24
NAME_SIZE, DETAIL_SIZE, LABEL_SIZE = 13, 11, 10
SWEEPS = 4
#: fill and stroke of each kind of node
NODE_COLOURS = {SOURCE: ("#e8f5e9", "#2e7d32"), OPERATOR: ("#e3f2fd", "#1565c0"),
                OUTPUT: ("#fff3e0", "#e65100"), ERROR_OUTPUT: ("#ffebee", "#c62828"),
                SPLIT: ("#f5f5f5", "#757575")}
#: stroke, width, dash of each kind of edge
EDGE_STYLES = {"main": ("#455a64", 1.6, ""), "side": ("#e65100", 1.6, ""),
               "updates": ("#6a1b9a", 1.6, "6 3"), ERRORS: ("#c62828", 1.1, "4 3")}


def text_width(text: str, size: float, bold: bool = False) -> float:
    """An estimate of the rendered width (DejaVu Sans averages ~0.62 em a character)."""
    return len(text) * size * (0.68 if bold else 0.62)


def fit(text: str, width: float, size: float, bold: bool = False) -> str:
    """``text`` cut with an ellipsis to fit ``width``."""
    if text_width(text, size, bold) <= width:
        return text
    keep = max(1, int(width / (size * (0.68 if bold else 0.62))) - 1)
    return text[:keep] + "\u2026"


@dataclass
class Layout:
    """Where everything goes: boxes (x, y, w, h) by node id, edge paths by edge id, and
    where each edge's label sits."""

    width: float = 0
    height: float = 0
    boxes: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    labels: dict[str, tuple[float, float, str]] = field(default_factory=dict)  # x, y, anchor


def layout(graph: PipelineGraph) -> Layout:
    """Place the nodes and route the edges (see the module docstring)."""
    flow = [e for e in graph.edges if e.role != ERRORS]
    main_nodes = [n.id for n in graph.nodes if n.kind in (SOURCE, OPERATOR, OUTPUT)]
    layer = _layers(graph, flow)
    last = max(layer.values(), default=0)
    # waypoints of edges that span columns
    chains: dict[str, list[str]] = {}
    members: dict[int, list[str]] = {}
    for n in main_nodes:
        members.setdefault(layer[n], []).append(n)
    for e in flow:
        a, b = layer[e.source], layer[e.target]
        chain = [e.source]
        for col in range(a + 1, b):
            dummy = f"~{e.id}~{col}"
            layer[dummy] = col
            members.setdefault(col, []).append(dummy)
            chain.append(dummy)
        chains[e.id] = [*chain, e.target]
    segments = [(c[i], c[i + 1]) for c in chains.values() for i in range(len(c) - 1)]
    order = _order(members, segments, last)
    rows = _rows(order, segments, last)
    # columns: widths from the names, gaps from the labels that sit in them
    widths = {col: min(MAX_BOX_W, max(
        [MIN_BOX_W] + [text_width(n.name, NAME_SIZE, True) + 24 for n in graph.nodes
                       if layer.get(n.id) == col]
        + [text_width(n.detail, DETAIL_SIZE) + 24 for n in graph.nodes
           if layer.get(n.id) == col])) for col in range(last + 1)}
    ins = {n: sum(1 for e in flow if e.target == n) for n in main_nodes}
    outs = {n: sum(1 for e in flow if e.source == n) for n in main_nodes}
    gaps = {col: MIN_COL_GAP for col in range(last + 1)}
    for e in flow:  # the label sits in the gap before the target, or after the source
        col = layer[chains[e.id][-2]] if ins[e.target] == 1 or outs[e.source] > 1 \
            else layer[e.source]
        gaps[col] = max(gaps[col], text_width(e.text(), LABEL_SIZE) + 24)
    col_x: dict[int, float] = {}
    x = MARGIN
    for col in range(last + 1):
        col_x[col] = x
        x += widths[col] + gaps[col]
    out = Layout()

    def centre_y(row: float) -> float:
        return MARGIN + row * (BOX_H + ROW_GAP) + BOX_H / 2

    for n in order_flat(order):
        if not n.startswith("~"):
            col = layer[n]
            out.boxes[n] = (col_x[col], centre_y(rows[n]) - BOX_H / 2, widths[col], BOX_H)
    bottom = max((y + h for _, y, _, h in out.boxes.values()), default=MARGIN)
    right = _place_error_nodes(graph, out, bottom, col_x[last], widths[last], gaps[last])
    ports = _ports(flow, chains, rows)
    for e in flow:
        points: list[tuple[float, float]] = []
        sx, sy, sw, sh = out.boxes[e.source]
        points.append((sx + sw, sy + sh / 2))
        for d in chains[e.id][1:-1]:
            col = layer[d]
            y = centre_y(rows[d])
            points += [(col_x[col], y), (col_x[col] + widths[col], y)]
        tx, ty, _, th = out.boxes[e.target]
        points.append((tx - 2, ty + th / 2 + ports.get(e.id, 0.0)))
        out.paths[e.id] = _curve(points)
        out.labels[e.id] = _label_place(points, ins[e.target], outs[e.source])
    _route_errors(graph, out, layer, col_x, widths)
    out.width = max(right, max(x + w for x, _, w, _ in out.boxes.values())) + MARGIN
    out.height = max(y + h for _, y, _, h in out.boxes.values()) + MARGIN
    return out


def _ports(flow: list[GraphEdge], chains: dict[str, list[str]], rows: dict[str, float]
           ) -> dict[str, float]:
    """Edge id -> where it enters its target, off the middle of the box's side: a
    target with several inputs (a union) takes them side by side, in the order of the
    rows they come from, so their arrows do not meet."""
    into: dict[str, list[GraphEdge]] = {}
    for e in flow:
        into.setdefault(e.target, []).append(e)
    offsets: dict[str, float] = {}
    for edges in into.values():
        if len(edges) < 2:
            continue
        edges = sorted(edges, key=lambda e: rows[chains[e.id][-2]])
        step = min(12.0, (BOX_H - 16) / (len(edges) - 1))
        for i, e in enumerate(edges):
            offsets[e.id] = (i - (len(edges) - 1) / 2) * step
    return offsets


def _label_place(points: list[tuple[float, float]], ins: int, outs: int
                 ) -> tuple[float, float, str]:
    """Where an edge's labels go: where it is level and alone -- before its target when
    the target has no other input, else after its source when that has no other output,
    else at the middle of its last stretch."""
    if ins == 1:
        x, y = points[-1]
        return x - 8, y, "end"
    if outs == 1:
        x, y = points[0]
        return x + 8, y, "start"
    (ax, ay), (bx, by) = points[-2], points[-1]
    return (ax + bx) / 2, (ay + by) / 2, "middle"


def order_flat(order: dict[int, list[str]]) -> list[str]:
    return [n for col in sorted(order) for n in order[col]]


def _layers(graph: PipelineGraph, flow: list[GraphEdge]) -> dict[str, int]:
    """Sources 0; an operator one right of its furthest producer; outputs last."""
    preds: dict[str, list[str]] = {}
    for e in flow:
        preds.setdefault(e.target, []).append(e.source)
    layer: dict[str, int] = {n.id: 0 for n in graph.nodes if n.kind == SOURCE}
    ops = [n.id for n in graph.nodes if n.kind == OPERATOR]
    changed = True
    while changed:  # a DAG (validation refused cycles): settles in at most len(ops) passes
        changed = False
        for n in ops:
            want = 1 + max((layer.get(p, 0) for p in preds.get(n, [])), default=0)
            if layer.get(n) != want:
                layer[n] = want
                changed = True
    last = max(layer.values(), default=0) + 1
    for n in graph.nodes:
        if n.kind == OUTPUT:
            layer[n.id] = last
    return layer


def _order(members: dict[int, list[str]], segments: list[tuple[str, str]],
           last: int) -> dict[int, list[str]]:
    """Barycenter sweeps, down then up; ties keep the previous order (deterministic)."""
    order = {col: list(members.get(col, [])) for col in range(last + 1)}
    preds: dict[str, list[str]] = {}
    succs: dict[str, list[str]] = {}
    for a, b in segments:
        preds.setdefault(b, []).append(a)
        succs.setdefault(a, []).append(b)

    def barycentre(i: int, neighbours: list[str], ref: dict[str, int]) -> float:
        near = [ref[m] for m in neighbours if m in ref]
        return sum(near) / len(near) if near else float(i)

    def sweep(cols: range, neighbours: dict[str, list[str]], ref_step: int) -> None:
        for col in cols:
            ref = {n: i for i, n in enumerate(order.get(col + ref_step, []))}
            keyed = [(barycentre(i, neighbours.get(n, []), ref), i, n)
                     for i, n in enumerate(order[col])]
            order[col] = [n for _, _, n in sorted(keyed)]

    for _ in range(SWEEPS):
        sweep(range(1, last + 1), preds, -1)
        sweep(range(last - 1, -1, -1), succs, +1)
    sweep(range(1, last + 1), preds, -1)
    return order


def _rows(order: dict[int, list[str]], segments: list[tuple[str, str]],
          last: int) -> dict[str, float]:
    """Each node at the mean row of its producers, below the node above it."""
    preds: dict[str, list[str]] = {}
    for a, b in segments:
        preds.setdefault(b, []).append(a)
    rows: dict[str, float] = {}
    for col in range(last + 1):
        floor = -1.0
        for n in order[col]:
            near = [rows[p] for p in preds.get(n, []) if p in rows]
            want = sum(near) / len(near) if near else floor + 1
            rows[n] = max(floor + 1, want)
            floor = rows[n]
    return rows


def _place_error_nodes(graph: PipelineGraph, out: Layout, bottom: float, last_x: float,
                       last_w: float, last_gap: float) -> float:
    """The errors output (or the split and the error outputs) under the last column;
    returns the right edge of the drawing."""
    top = bottom + ROW_GAP + 10
    split = [n for n in graph.nodes if n.kind == SPLIT]
    err = [n for n in graph.nodes if n.kind == ERROR_OUTPUT]
    if not split:
        for i, n in enumerate(err):
            out.boxes[n.id] = (last_x, top + i * (BOX_H + ROW_GAP), last_w, BOX_H)
        return last_x + last_w
    out.boxes[split[0].id] = (last_x, top, last_w, BOX_H)
    gap = max([MIN_COL_GAP, last_gap] + [text_width(e.text(), LABEL_SIZE) + 24
                                         for e in graph.edges if e.source == split[0].id])
    x = last_x + last_w + gap
    w = min(MAX_BOX_W, max([MIN_BOX_W] + [text_width(n.name, NAME_SIZE, True) + 24
                                          for n in err]))
    for i, n in enumerate(err):
        out.boxes[n.id] = (x, top + i * (BOX_H + ROW_GAP), w, BOX_H)
    for e in graph.edges:
        if e.source == split[0].id:
            sx, sy, sw, sh = out.boxes[e.source]
            tx, ty, _, th = out.boxes[e.target]
            a, b = (sx + sw, sy + sh / 2), (tx - 2, ty + th / 2)
            out.paths[e.id] = _curve([a, b])
            out.labels[e.id] = _label_place([a, b], 1, len(err))
    return x + w


def _route_errors(graph: PipelineGraph, out: Layout, layer: dict[str, int],
                  col_x: dict[int, float], widths: dict[int, float]) -> None:
    """Each giver's ``errors`` edge: down out of its box, along the gap right of its
    column, along the bus under the graph into the errors node."""
    for e in graph.edges:
        if e.role != ERRORS or e.id in out.paths:
            continue
        x, y, w, h = out.boxes[e.source]
        tx, ty, _, th = out.boxes[e.target]
        col = layer[e.source]
        lane = col_x[col] + widths[col] + 10
        start_x = x + w - 14
        bus = ty + th / 2
        r = 6
        out.paths[e.id] = (f"M{start_x:.1f},{y + h:.1f} V{y + h + 10 - r:.1f} "
                           f"Q{start_x:.1f},{y + h + 10:.1f} {start_x + r:.1f},{y + h + 10:.1f} "
                           f"H{lane - r:.1f} Q{lane:.1f},{y + h + 10:.1f} "
                           f"{lane:.1f},{y + h + 10 + r:.1f} V{bus - r:.1f} "
                           f"Q{lane:.1f},{bus:.1f} {lane + r:.1f},{bus:.1f} H{tx - 2:.1f}")
        out.labels[e.id] = (start_x - 4, y + h + 14, "end")


def _curve(points: list[tuple[float, float]]) -> str:
    """A smooth path through ``points``: straight where level, else a cubic whose
    tangents are horizontal at both ends (edges leave and enter boxes sideways)."""
    (x0, y0) = points[0]
    d = [f"M{x0:.1f},{y0:.1f}"]
    for (ax, ay), (bx, by) in zip(points, points[1:], strict=False):
        if abs(ay - by) < 0.5:
            d.append(f"L{bx:.1f},{by:.1f}")
        else:
            mx = (ax + bx) / 2
            d.append(f"C{mx:.1f},{ay:.1f} {mx:.1f},{by:.1f} {bx:.1f},{by:.1f}")
    return " ".join(d)


# -- rendering ---------------------------------------------------------------------------
def render_svg(graph: PipelineGraph) -> str:
    """The graph as a standalone SVG document (presentation attributes only, no CSS, so
    every renderer -- browsers, cairosvg -- draws the same picture)."""
    lay = layout(graph)
    w, h = round(lay.width), round(lay.height)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family={quoteattr(FONT)} '
        f'data-pipeline={quoteattr(graph.pipeline)}>',
        f"<title>{escape(f'pipeline {graph.pipeline}')}</title>",
        "<defs>",
    ]
    for role, (colour, _, _) in EDGE_STYLES.items():
        parts.append(f'<marker id="arrow-{role}" viewBox="0 0 10 10" refX="9" refY="5" '
                     'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
                     f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>')
    parts.append("</defs>")
    parts.append(f'<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>')
    parts.append('<g id="edges">')
    for e in graph.edges:
        parts += _edge_svg(e, lay)
    parts.append("</g>")
    parts.append('<g id="nodes">')
    for n in graph.nodes:
        x, y, bw, bh = lay.boxes[n.id]
        fill, stroke = NODE_COLOURS[n.kind]
        cx = x + 10
        parts += [
            f'<g id={quoteattr("node-" + n.id)} class="node {n.kind}" '
            f'data-node={quoteattr(n.id)} data-kind="{n.kind}">',
            f"<title>{escape(_node_title(n))}</title>",
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{bh:.1f}" rx="6" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>',
            f'<text x="{cx:.1f}" y="{y + 19:.1f}" font-size="{NAME_SIZE}" '
            f'font-weight="bold" fill="#212121">'
            f"{escape(fit(n.name, bw - 20, NAME_SIZE, True))}</text>",
            f'<text x="{cx:.1f}" y="{y + 35:.1f}" font-size="{DETAIL_SIZE}" fill="#616161">'
            f"{escape(fit(n.detail, bw - 20, DETAIL_SIZE))}</text>",
            f'<text id={quoteattr("count-" + n.id)} class="count" x="{cx:.1f}" '
            f'y="{y + 50:.1f}" font-size="{DETAIL_SIZE}" fill="{stroke}"></text>',
            "</g>",
        ]
    parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _edge_svg(e: GraphEdge, lay: Layout) -> list[str]:
    style = ERRORS if e.role == ERRORS else "updates" if e.updates else e.role
    colour, width, dash = EDGE_STYLES[style]
    lx, ly, anchor = lay.labels[e.id]
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    at = f'text-anchor="{anchor}" font-size="{LABEL_SIZE}"'
    # each text twice: a white outline under it keeps it readable over a line (the
    # outline is a copy, not paint-order, which cairosvg does not draw); the web view
    # writes a rate into every element whose data-rate names the edge
    halo = 'fill="#ffffff" stroke="#ffffff" stroke-width="3" stroke-linejoin="round"'
    tag, rate_id, edge_attr = escape(e.text()), quoteattr("rate-" + e.id), quoteattr(e.id)
    return [
        f'<g id={quoteattr("edge-" + e.id)} class="edge {style}" '
        f'data-edge={edge_attr} data-source={quoteattr(e.source)} '
        f'data-target={quoteattr(e.target)} data-tag={quoteattr(e.tag)}>',
        f'<path d="{lay.paths[e.id]}" fill="none" stroke="{colour}" '
        f'stroke-width="{width}"{dash_attr} marker-end="url(#arrow-{style})"/>',
        f'<text x="{lx:.1f}" y="{ly - 5:.1f}" {at} {halo}>{tag}</text>',
        f'<text class="tag" x="{lx:.1f}" y="{ly - 5:.1f}" {at} fill="{colour}">{tag}</text>',
        f'<text class="rate-halo" data-rate={edge_attr} x="{lx:.1f}" y="{ly + 12:.1f}" '
        f'{at} {halo}></text>',
        f'<text id={rate_id} class="rate" data-rate={edge_attr} x="{lx:.1f}" '
        f'y="{ly + 12:.1f}" {at} fill="#263238"></text>',
        "</g>",
    ]


def _node_title(n: GraphNode) -> str:
    return f"{n.name} ({n.detail})" + (f", stream {n.stream}" if n.stream else "")


def render_png(svg: str, scale: float = 2.0) -> bytes:
    """The same picture as PNG (cairosvg draws the SVG), ``scale`` times its size."""
    import cairosvg

    return cairosvg.svg2png(bytestring=svg.encode("utf-8"), scale=scale)
