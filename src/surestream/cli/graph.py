"""``surestream graph SPEC``: the pipeline drawn -- sources, operators, outputs, and the
edges between them labelled by tag (``ops/pipeline_graph``, ``ops/graph_svg``).

The SVG goes to standard output (so it pipes: ``surestream graph p.yaml > p.svg``), or
with ``-o FILE`` to FILE, as SVG or PNG by FILE's extension; the PNG is the SVG drawn by
cairosvg, the same picture the web view of ``surestream run --ui-port`` shows.

Exit codes: 0 written, 2 a spec that is not valid or an output name that is neither
``.svg`` nor ``.png``, 1 the file could not be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from surestream.model.loader import SpecError, load_spec

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
FORMATS = (".svg", ".png")
DEFAULT_SCALE = 2.0


def add_graph_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "graph", help="draw the pipeline graph (SVG or PNG)",
        description="Draw the pipeline: sources, each stream's steps in order, outputs; "
                    "edges labelled by the tag records travel on (main, late, duplicates, "
                    "route names, errors, ...). Writes SVG to standard output, or to -o "
                    "FILE as SVG or PNG by its extension. The same picture the web view "
                    "(`surestream run --ui-port N`) shows with live rates.")
    p.add_argument("spec", metavar="SPEC", help="the pipeline spec file (YAML or JSON)")
    p.add_argument("--set", action="append", metavar="PATH=VALUE",
                   help="override a spec key before validation, repeatable")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the picture to FILE, .svg or .png (default: SVG on standard "
                        "output)")
    p.add_argument("--scale", type=float, default=DEFAULT_SCALE, metavar="F",
                   help="PNG: pixels per SVG unit (default: 2.0)")
    p.set_defaults(func=run_graph)
    return p


def run_graph(args: argparse.Namespace) -> int:
    from surestream.ops.graph_svg import render_png, render_svg
    from surestream.ops.pipeline_graph import pipeline_graph

    out = Path(args.output) if args.output else None
    if out is not None and out.suffix.lower() not in FORMATS:
        print(f"-o {args.output}: name a .svg or .png file (the extension picks the "
              "format)", file=sys.stderr)
        return EXIT_USAGE
    if args.scale <= 0:
        print(f"--scale {args.scale}: give a number above 0", file=sys.stderr)
        return EXIT_USAGE
    try:
        spec = load_spec(args.spec, args.set or ())
    except SpecError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    graph = pipeline_graph(spec)
    svg = render_svg(graph)
    if out is None:
        sys.stdout.write(svg)
        return EXIT_OK
    data = render_png(svg, args.scale) if out.suffix.lower() == ".png" else svg.encode()
    try:
        out.write_bytes(data)
    except OSError as e:
        print(f"-o {args.output}: cannot write it: {e}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"{out}: pipeline {spec.pipeline!r}, {len(graph.nodes)} nodes, "
          f"{len(graph.edges)} edges", file=sys.stderr)
    return EXIT_OK
