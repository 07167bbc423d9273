"""The pipeline as a graph: sources, operators and outputs, wired by tags.

One picture serves two readers: ``surestream graph SPEC`` draws it (``graph_svg``) and the
web view (``ops/web``) draws the same picture and writes the live figures into it. Both
build it here, from a validated ``PipelineSpec`` alone, wiring the streams as the local
runner does (``runners/local/graph.py`` and its loop):

- a stream's steps run in order; each step passes its results to the next on the tag
  ``main``; the last step's results carry the stream's name as their tag;
- a stream reads a source, another stream's results or a side-output tag (``from``); a
  list is a union: several edges into its first step, each labelled by the tag it reads;
- side outputs leave the step that makes them, labelled by their tag (``late``, a
  window's ``late_output_tag``, ``duplicates_output_tag``, route names, a process step's
  side outputs); a broadcast step's ``updates`` stream comes in as an ``updates`` edge;
- a stream without steps only renames what it reads: it gets no node, and its records go
  straight from their producer to its readers, labelled by the stream's name;
- every source and every operator may give records up as error records: an ``errors``
  edge from each to the errors output -- or, when outputs split error records by kind
  (``error_kinds``), to one ``errors:by-kind`` node with an edge per error output,
  labelled by the kinds it takes (the runner's ``ErrorOutputs.split``).

Node ids are the names the telemetry uses: an operator's id is its step name,
``source:<name>`` a source, ``output:<tag>`` an output. ``graph_counts`` reads the figures
of each node and edge from a telemetry snapshot (``runners/local/telemetry``), so the
picture's numbers are the run's own counters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from surestream.model.error_outputs import error_tags
from surestream.model.spec import PipelineSpec
from surestream.model.steps import BroadcastEnrichStep
from surestream.model.stream_graph import ERRORS_TAG, step_side_tags, stream_order

#: the node errors records pass through when outputs split them by kind
ERROR_SPLIT = "errors:by-kind"
#: node kinds
SOURCE, OPERATOR, OUTPUT, ERROR_OUTPUT, SPLIT = (
    "source", "operator", "output", "error_output", "error_split")
#: edge roles: what the producer puts on it -- its results (``main``, and a stream's
#: results), a side output, or error records
MAIN, SIDE, ERRORS = "main", "side", "errors"


@dataclass(frozen=True)
class GraphNode:
    id: str
    kind: str  # SOURCE, OPERATOR, OUTPUT, ERROR_OUTPUT or SPLIT
    name: str  # what the box says: the step name, source name or output tag
    detail: str  # the step type, the source type, the sink type
    stream: str | None = None  # an operator's stream


@dataclass(frozen=True)
class GraphEdge:
    source: str
    target: str
    tag: str
    role: str  # MAIN, SIDE or ERRORS
    label: str = ""  # what the edge says (the tag unless given)
    updates: bool = False  # into a broadcast step's state, not its input

    @property
    def id(self) -> str:
        """Stable and unique: the ids of its ends and its tag."""
        return f"{self.source}->{self.target}[{self.tag}]"

    def text(self) -> str:
        return self.label or self.tag


@dataclass
class PipelineGraph:
    pipeline: str
    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[GraphEdge] = field(default_factory=list)

    def node(self, node_id: str) -> GraphNode:
        return next(n for n in self.nodes if n.id == node_id)

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline,
                "nodes": [asdict(n) for n in self.nodes],
                "edges": [{"id": e.id, **asdict(e), "label": e.text()} for e in self.edges]}


def source_id(name: str) -> str:
    return f"source:{name}"


def output_id(tag: str) -> str:
    return f"output:{tag}"


def pipeline_graph(spec: PipelineSpec) -> PipelineGraph:
    """The graph of a validated spec (see the module docstring for its rules)."""
    streams = spec.all_streams
    order = stream_order(streams)
    graph = PipelineGraph(spec.pipeline)
    edges: dict[str, GraphEdge] = {}

    def add(edge: GraphEdge) -> None:
        edges.setdefault(edge.id, edge)

    for name, src in spec.all_sources.items():
        graph.nodes.append(GraphNode(source_id(name), SOURCE, name, _source_detail(src)))
    side_producer: dict[str, str] = {}  # side tag -> the step that makes it
    for sname in order:
        steps = streams[sname].steps
        for step in steps:
            graph.nodes.append(GraphNode(step.name, OPERATOR, step.name, step.type, sname))
            for tag in step_side_tags(step):
                side_producer.setdefault(tag, step.name)

    def producers(tag: str, seen: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
        """(node, role) of what puts records on ``tag``: a stream's last step, a step's
        side output, a source; through streams without steps to what they read."""
        if tag in streams and tag not in seen:
            stream = streams[tag]
            if stream.steps:
                return [(stream.steps[-1].name, MAIN)]
            found: list[tuple[str, str]] = []
            for read in stream.inputs:
                found += [p for p in producers(read, seen | {tag}) if p not in found]
            return found
        if tag in side_producer:
            return [(side_producer[tag], SIDE)]
        if tag in spec.all_sources:
            return [(source_id(tag), MAIN)]
        return []

    for sname in order:
        stream = streams[sname]
        if not stream.steps:
            continue
        first = stream.steps[0].name
        for read in stream.inputs:
            for node, role in producers(read):
                add(GraphEdge(node, first, read, role))
        for i, step in enumerate(stream.steps):
            if isinstance(step, BroadcastEnrichStep) and step.updates:
                for node, role in producers(step.updates):
                    add(GraphEdge(node, step.name, step.updates, role, updates=True))
            if i:
                add(GraphEdge(stream.steps[i - 1].name, step.name, "main", MAIN))
    outputs = dict(spec.outputs)
    err_tags = error_tags(outputs)  # ``errors`` first: the runner always has one
    for tag, sink in outputs.items():
        if tag in err_tags:
            continue
        graph.nodes.append(GraphNode(output_id(tag), OUTPUT, tag, _sink_detail(sink)))
        for node, role in producers(tag):
            add(GraphEdge(node, output_id(tag), tag, role))
    for tag in err_tags:
        sink = outputs.get(tag)
        graph.nodes.append(GraphNode(output_id(tag), ERROR_OUTPUT, tag,
                                     _sink_detail(sink) if sink is not None else "file"))
    _error_edges(graph, outputs, err_tags, add)
    graph.edges = list(edges.values())
    return graph


def _error_edges(graph: PipelineGraph, outputs: dict[str, Any], err_tags: list[str],
                 add: Callable[[GraphEdge], None]) -> None:
    """Every source and operator to the errors output, or through the split by kind."""
    givers = [n.id for n in graph.nodes if n.kind in (SOURCE, OPERATOR)]
    if len(err_tags) == 1:
        for node in givers:
            add(GraphEdge(node, output_id(ERRORS_TAG), ERRORS_TAG, ERRORS))
        return
    graph.nodes.append(GraphNode(ERROR_SPLIT, SPLIT, "errors", "by kind"))
    for node in givers:
        add(GraphEdge(node, ERROR_SPLIT, ERRORS_TAG, ERRORS))
    for tag in err_tags:
        kinds = getattr(outputs.get(tag), "error_kinds", None)
        add(GraphEdge(ERROR_SPLIT, output_id(tag), tag, ERRORS,
                      ", ".join(kinds) if kinds else "other"))


def _source_detail(src: Any) -> str:
    kind = getattr(src, "type", "source")
    if kind == "kafka":
        return f"kafka {', '.join(src.topics)}"
    if kind == "file":
        return f"file {src.format}"
    return kind


def _sink_detail(sink: Any) -> str:
    kind = getattr(sink, "type", "file")
    if kind == "file":
        return f"file {getattr(sink, 'format', '')}".strip()
    if kind == "kafka":
        return f"kafka {getattr(sink, 'topic', '')}".strip()
    return kind


# -- the run's figures on the graph ----------------------------------------------------
def graph_counts(graph: PipelineGraph, snapshot: dict[str, Any]
                 ) -> tuple[dict[str, int | None], dict[str, int | None]]:
    """(node id -> records, edge id -> records) so far, from a telemetry snapshot.

    An operator counts the records it took in, an output those written to it, a source
    those read from it; an edge the records its producer put on its tag. None where the
    snapshot does not tell (a source several streams read besides ``updates``)."""
    ops = {o["name"]: o for o in snapshot.get("operators", [])}
    written = {o["tag"]: o.get("written", 0) for o in snapshot.get("outputs", [])}
    source_errors: dict[str, int] = {}
    for key, n in snapshot.get("errors", {}).get("by_reason", {}).items():
        op = key.split("|", 1)[0]
        if op.startswith("source:"):
            source_errors[op] = source_errors.get(op, 0) + n
    sources = [n for n in graph.nodes if n.kind == SOURCE]
    read: dict[str, int | None] = {}
    for node in sources:
        taken = [ops[e.target]["records_in"] for e in graph.edges
                 if e.source == node.id and e.role == MAIN and e.target in ops]
        if len(sources) == 1:
            read[node.id] = snapshot.get("records_in")
        elif taken:
            read[node.id] = max(taken) + source_errors.get(node.id, 0)
        else:
            read[node.id] = None
    nodes: dict[str, int | None] = {}
    for node in graph.nodes:
        if node.kind == OPERATOR:
            nodes[node.id] = ops.get(node.id, {}).get("records_in")
        elif node.kind in (OUTPUT, ERROR_OUTPUT):
            nodes[node.id] = written.get(node.name)
        elif node.kind == SOURCE:
            nodes[node.id] = read[node.id]
        else:
            nodes[node.id] = sum(written.get(e.tag, 0) for e in graph.edges
                                 if e.source == node.id)
    edges: dict[str, int | None] = {}
    for e in graph.edges:
        edges[e.id] = _edge_count(e, ops, written, read, source_errors)
    return nodes, edges


def _edge_count(e: GraphEdge, ops: dict[str, Any], written: dict[str, int],
                read: dict[str, int | None], source_errors: dict[str, int]) -> int | None:
    if e.source == ERROR_SPLIT:
        return written.get(e.tag, 0)
    if e.source.startswith("source:"):
        if e.role == ERRORS:
            return source_errors.get(e.source, 0)
        if e.role == MAIN and e.target in ops and not e.updates:
            return ops[e.target]["records_in"]
        good = read.get(e.source)
        return None if good is None else good - source_errors.get(e.source, 0)
    op = ops.get(e.source)
    if op is None:
        return None
    if e.role == MAIN:
        return op.get("records_out", 0)
    return op.get("emitted", {}).get(e.tag if e.role != ERRORS else ERRORS_TAG, 0)
