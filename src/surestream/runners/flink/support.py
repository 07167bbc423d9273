"""Which steps and options each runner supports, derived from the code (issue 15 item 4).

The table is not written by hand: every row is a small spec (a *probe*) that the model
validates (the local runner runs every valid spec) and that ``translate`` accepts or refuses
with its ``FlinkUnsupported`` path and reason. What is probed is taken from the model too:

- every step type of the ``Step`` union, with every value of each of its ``Literal`` options
  (``window.kind``, ``late_data_side_output.strategy``, ``keyed_dedup.strategy`` ...);
- every built-in aggregation function (``aggregations.BUILTIN_ARITY``);
- every source type of ``SourceSpec`` and every output type of the outputs union, and the
  file formats;
- the options that are numbers or shapes rather than literals (``allowed_lateness_ms``,
  ``offset_ms``, a glob of several files, named streams, a trigger ...): ``EXTRA_PROBES``.

So a translation that starts accepting a step turns its row to "yes" without an edit here;
a new step type or source/output type without a minimal example here gets a "no probe"
row, which fails ``tests/flink/test_flink_differential.py`` (it must get a real row).
``surestream explain --runner flink --support`` prints the table as markdown.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from surestream.model.aggregations import BUILTIN_ARITY
from surestream.model.loader import SpecError, build_spec
from surestream.model.spec import PipelineSpec
from surestream.runners.flink.sql_refusals import FlinkUnsupported

#: the source schema every probe reads (one JSON-lines file)
SCHEMA = {"k": "string", "ts": "int", "v": "float", "n": "int", "id": "string"}
WATERMARK = {"type": "watermark", "name": "wm", "timestamp_column": "ts",
             "max_out_of_orderness_ms": 1000}
AGGS = {"count": "count()", "total": "sum(v)"}
#: the user functions the probes name: a package of their own, as a user's would be (the
#: Flink runner refuses functions of surestream itself, which its workers cannot import)
PROBE_FUNCTIONS = "surestream_flink_probes"

#: a minimal valid step of each type (placed after the watermark)
STEP_EXAMPLES: dict[str, dict[str, Any]] = {
    "watermark": WATERMARK,
    "late_data_side_output": {"type": "late_data_side_output", "name": "late_split",
                              "output_tag": "late"},
    "keyed_dedup": {"type": "keyed_dedup", "name": "dedup", "key_fields": ["id"],
                    "time_window_ms": 60000},
    "window": {"type": "window", "name": "w", "key_fields": ["k"], "kind": "tumbling",
               "size_ms": 10000, "aggregations": AGGS},
    "route": {"type": "route", "name": "by_k", "field": "k", "routes": {"A": "main",
                                                                        "B": "b_out"}},
    "with_columns": {"type": "with_columns", "name": "cols",
                     "columns": {"v2": "CAST(v * 2 AS DOUBLE)"}},
    "where": {"type": "where", "name": "positive", "condition": "v > 0"},
    "map_batches": {"type": "map_batches", "name": "mb",
                    "function": f"{PROBE_FUNCTIONS}:identity_batch", "output_schema": SCHEMA},
    "map": {"type": "map", "name": "m", "function": f"{PROBE_FUNCTIONS}:identity",
            "output_schema": SCHEMA},
    "filter": {"type": "filter", "name": "f", "function": f"{PROBE_FUNCTIONS}:keep_positive"},
    "process": {"type": "process", "name": "p", "key_fields": ["k"],
                "function": f"{PROBE_FUNCTIONS}:process_element"},
    "broadcast_enrich": {"type": "broadcast_enrich", "name": "enrich", "key_fields": ["k"],
                         "fields": ["label"],
                         "reference": {"rows": [{"k": "A", "label": "a"}]}},
    "processing_time": {"type": "processing_time", "name": "stamp", "column": "seen_at"},
    "aggregate": {"type": "aggregate", "name": "running", "key_fields": ["k"],
                  "aggregations": AGGS},
    "data_quality": {"type": "data_quality", "name": "dq",
                     "rules": [{"name": "v_set", "rule": "not_null", "column": "v"}]},
}

#: what a Literal option's value needs beside it to be a valid step
LITERAL_CHANGES: dict[tuple[str, str, Any], dict[str, Any]] = {
    ("window", "kind", "sliding"): {"slide_ms": 5000},
    ("window", "kind", "session"): {"gap_ms": 5000, "size_ms": None},
    ("late_data_side_output", "strategy", "flag"): {"flag_column": "is_late",
                                                    "output_tag": None},
    ("aggregate", "output_mode", "append"): {"state_timeout_ms": 60000},
}
#: what a Literal option's value needs of the spec: the output it must go to
LITERAL_OUTPUTS: dict[tuple[str, str, Any], dict[str, Any]] = {
    ("window", "output_mode", "complete"): {"type": "duckdb", "path": "out/db.duckdb",
                                            "table": "t", "mode": "replace"},
    ("aggregate", "output_mode", "complete"): {"type": "duckdb", "path": "out/db.duckdb",
                                               "table": "t", "mode": "replace"},
}

#: options that are not Literals: (step type, option label, changes to the step)
EXTRA_PROBES: list[tuple[str, str, dict[str, Any]]] = [
    ("watermark", "idle_source_timeout_ms", {"idle_source_timeout_ms": 60000}),
    ("window", "allowed_lateness_ms > 0", {"allowed_lateness_ms": 5000}),
    ("window", "offset_ms in (0, period)", {"offset_ms": 2500}),
    ("window", "offset_ms < 0", {"offset_ms": -2500}),
    ("window", "sliding, size not a multiple of slide",
     {"kind": "sliding", "size_ms": 10000, "slide_ms": 3000}),
    ("window", "key_fields: []", {"key_fields": []}),
    ("window", "session, two key fields",
     {"kind": "session", "gap_ms": 5000, "size_ms": None, "key_fields": ["k", "id"]}),
    ("window", "sliding, avg of a float column",
     {"kind": "sliding", "slide_ms": 5000, "aggregations": {"count": "count()",
                                                            "mean": "avg(v)"}}),
    ("keyed_dedup", "state_ttl_ms", {"state_ttl_ms": 120000}),
    ("with_columns", "expression without CAST", {"columns": {"v2": "v * 2"}}),
    ("route", "default", {"default": "b_out"}),
]

#: a minimal source of each type
SOURCE_EXAMPLES: dict[str, dict[str, Any]] = {
    "file": {"type": "file", "path": "in/input.jsonl", "schema": SCHEMA},
    "generator": {"type": "generator",
                  "function": f"{PROBE_FUNCTIONS}:no_records"},
    "memory": {"type": "memory", "records": [{"k": "A", "ts": 1, "v": 1.0, "n": 1,
                                              "id": "a"}]},
    "kafka": {"type": "kafka", "bootstrap": "127.0.0.1:9092", "topics": ["trades"],
              "format": "json", "schema": SCHEMA, "stop_at": "end"},
    "iceberg": {"type": "iceberg", "catalog": {"uri": "sqlite:///cat.db",
                                               "warehouse": "wh"}, "table": "ns.t"},
    "delta": {"type": "delta", "path": "delta-table"},
}
#: source options that are shapes: (label, changes to the file source)
SOURCE_PROBES: list[tuple[str, dict[str, Any]]] = [
    # (a glob is listed when the spec is translated: with no file there, it is refused)
    ("several files (a list, or a glob)", {"path": ["in/input.jsonl", "in/more.jsonl"]}),
    ("no schema (types inferred)", {"schema": None}),
    ("format: csv", {"format": "csv", "path": "in/input.csv"}),
]

#: a minimal output of each type (as ``main``)
OUTPUT_EXAMPLES: dict[str, dict[str, Any]] = {
    "file": {"type": "file", "path": "out/main.jsonl"},
    "duckdb": {"type": "duckdb", "path": "out/db.duckdb", "table": "t"},
    "memory": {"type": "memory"},
    "stdout": {"type": "stdout"},
    "kafka": {"type": "kafka", "bootstrap": "127.0.0.1:9092", "topic": "out"},
    "iceberg": {"type": "iceberg", "catalog": {"uri": "sqlite:///cat.db", "warehouse": "wh"},
                "table": "ns.out"},
    "delta": {"type": "delta", "path": "out/delta"},
    "clickhouse": {"type": "clickhouse", "host": "127.0.0.1", "port": 8123,
                   "database": "default", "table": "t", "key_columns": ["id"],
                   "version_column": "ts"},
    "postgres": {"type": "postgres", "dsn": "postgresql://127.0.0.1/db", "table": "t"},
}
OUTPUT_PROBES: list[tuple[str, dict[str, Any]]] = [
    ("format: csv", {"type": "file", "path": "out/main.csv", "format": "csv"}),
    ("format: parquet", {"type": "file", "path": "out/main.parquet", "format": "parquet"}),
]



@dataclass(frozen=True)
class SupportRow:
    """One probed step/option: whether the local runner and the Flink runner run it."""

    subject: str  # "step window", "source kafka", "output file", "spec"
    option: str  # "kind: sliding", "" for the minimal example
    local: str  # "yes", or "invalid: <why>" when the model refuses the combination
    flink: str  # "yes" or "refused"
    path: str = ""  # FlinkUnsupported.path (the probe's field) when refused
    reason: str = ""  # FlinkUnsupported.reason

    @property
    def flink_supported(self) -> bool:
        return self.flink == "yes"


@dataclass(frozen=True)
class Probe:
    subject: str
    option: str
    doc: dict[str, Any] | None  # None: the type has no example here yet

#: the row of a type without an example (the tests fail on it; the CLI still prints)
NO_PROBE = "no probe"


def base_doc(step: dict[str, Any] | None = None) -> dict[str, Any]:
    """The probes' spec: one schema'd file, the watermark, ``step``, and file outputs for
    every tag a probe uses."""
    steps = [dict(WATERMARK)] + ([step] if step is not None else [])
    outputs = {tag: {"type": "file", "path": f"out/{tag}.jsonl"}
               for tag in ("main", "late", "late_window", "b_out", "errors")}
    return {"pipeline": "probe", "source": dict(SOURCE_EXAMPLES["file"]), "steps": steps,
            "outputs": outputs, "checkpoint": {"dir": "ck"}}


def _changed(step: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(step)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def _literals(annotation: Any) -> list[Any]:
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    if get_origin(annotation) in (dict, list, tuple, set, frozenset):
        return []  # a mapping or list of Literals (output_schema) is not a one-value option
    return [v for arg in get_args(annotation) for v in _literals(arg)]


def step_types() -> dict[str, type]:
    """Step type -> model class, from the ``Step`` union."""
    from surestream.model.steps import Step

    union = get_args(Step)[0]
    return {cls.model_fields["type"].default: cls for cls in get_args(union)}


def source_types() -> list[str]:
    from surestream.model.spec import SourceSpec

    return [v for cls in get_args(get_args(SourceSpec)[0])
            for v in _literals(cls.model_fields["type"].annotation)]


def output_types() -> list[str]:
    from surestream.model.spec import PipelineSpec

    value = get_args(PipelineSpec.model_fields["outputs"].annotation)[1]
    union = get_args(value)[0]
    return [v for cls in get_args(union) for v in _literals(cls.model_fields["type"].annotation)]


def probes() -> list[Probe]:
    """Every probe, in table order."""
    out: list[Probe] = []
    for type_, cls in step_types().items():
        example = STEP_EXAMPLES.get(type_)
        subject = f"step {type_}"
        if example is None:  # add a minimal valid step to STEP_EXAMPLES
            out.append(Probe(subject, "", None))
            continue
        out.append(Probe(subject, "", _step_doc(type_, example)))
        for name, field in cls.model_fields.items():
            values = _literals(field.annotation)
            if name == "type" or len(values) < 2:
                continue
            for value in values:
                if example.get(name, field.default) == value and name != "kind":
                    continue  # the minimal example's own value: its row above
                changes = {name: value, **LITERAL_CHANGES.get((type_, name, value), {})}
                doc = _step_doc(type_, _changed(example, changes))
                if (type_, name, value) in LITERAL_OUTPUTS:
                    doc["outputs"]["main"] = dict(LITERAL_OUTPUTS[type_, name, value])
                out.append(Probe(subject, f"{name}: {value}", doc))
        for t, label, changes in EXTRA_PROBES:
            if t == type_:
                out.append(Probe(subject, label, _step_doc(type_, _changed(example, changes))))
    for fn in BUILTIN_ARITY:
        args = ", ".join(["v", "n"][:BUILTIN_ARITY[fn]])
        window = _changed(STEP_EXAMPLES["window"], {"aggregations": {"x": f"{fn}({args})"}})
        out.append(Probe("aggregation", f"{fn}({args})", _step_doc("window", window)))
    for type_ in source_types():
        example = SOURCE_EXAMPLES.get(type_)
        if example is None:  # add one to SOURCE_EXAMPLES
            out.append(Probe(f"source {type_}", "", None))
            continue
        doc = base_doc()
        doc["source"] = copy.deepcopy(example)
        out.append(Probe(f"source {type_}", "", doc))
    for label, changes in SOURCE_PROBES:
        doc = base_doc()
        doc["source"] = _changed(doc["source"], changes)
        out.append(Probe("source file", label, doc))
    for type_ in output_types():
        example = OUTPUT_EXAMPLES.get(type_)
        if example is None:  # add one to OUTPUT_EXAMPLES
            out.append(Probe(f"output {type_}", "", None))
            continue
        doc = base_doc()
        doc["outputs"]["main"] = copy.deepcopy(example)
        out.append(Probe(f"output {type_}", "" if type_ != "file" else "format: jsonl", doc))
    for label, sink in OUTPUT_PROBES:
        doc = base_doc()
        doc["outputs"]["main"] = sink
        out.append(Probe("output file", label, doc))
    streams = base_doc()
    streams["streams"] = {"clean": {"from": "source", "steps": streams.pop("steps")}}
    streams["outputs"]["clean"] = streams["outputs"].pop("main")
    out.append(Probe("spec", "named streams", streams))
    out += [Probe("spec", label, doc) for label, doc in stream_probes()]
    sources = base_doc()
    sources["sources"] = {"trades": sources.pop("source"),
                          "more": dict(SOURCE_EXAMPLES["file"], path="in/more.jsonl")}
    sources["streams"] = {"clean": {"from": "trades", "steps": sources.pop("steps")},
                          "other": {"from": "more",
                                    "steps": [_changed(WATERMARK, {"name": "wm2"})]}}
    sources["outputs"] = {t: {"type": "file", "path": f"out/{t}.jsonl"}
                          for t in ("clean", "other", "errors")}
    out.append(Probe("spec", "several named sources (`sources:`)", sources))
    trigger = base_doc()
    trigger["trigger"] = "once"
    out.append(Probe("spec", "trigger: once", trigger))
    return out


def stream_probes() -> list[tuple[str, dict[str, Any]]]:
    """The shapes of named streams (runners/flink/sql_streams.py): fan-out with a window in
    each branch, a union, a stream reading a side output, two streams reading the source."""
    def doc(streams: dict[str, Any], *outputs: str) -> dict[str, Any]:
        out = base_doc()
        del out["steps"]
        out["streams"] = streams
        out["outputs"] = {t: {"type": "file", "path": f"out/{t}.jsonl"}
                          for t in (*outputs, "errors")}
        return out

    window = STEP_EXAMPLES["window"]
    clean = {"from": "source", "steps": [dict(WATERMARK)]}
    return [
        ("two streams reading one (fan-out), a window in each", doc(
            {"clean": clean,
             "w10": {"from": "clean", "steps": [_changed(window, {
                 "name": "w10", "late_output_tag": "late_10"})]},
             "w20": {"from": "clean", "steps": [_changed(window, {
                 "name": "w20", "size_ms": 20000, "late_output_tag": "late_20"})]}},
            "w10", "w20", "late_10", "late_20")),
        ("a union of streams (`from: [a, b]`)", doc(
            {"clean": clean,
             "a": {"from": "clean", "steps": [{"type": "where", "name": "a_only",
                                               "condition": "k = 'A'"}]},
             "b": {"from": "clean", "steps": [{"type": "where", "name": "b_only",
                                               "condition": "k = 'B'"}]},
             "both": {"from": ["a", "b"], "steps": []}}, "both")),
        ("a stream reading a side output (`from: late`)", doc(
            {"clean": {"from": "source", "steps": [dict(WATERMARK),
                                                   STEP_EXAMPLES["late_data_side_output"]]},
             "late_records": {"from": "late", "steps": []}}, "clean", "late_records")),
        ("two streams reading the source", doc(
            {"clean": clean,
             "other": {"from": "source", "steps": [_changed(WATERMARK, {"name": "wm2"})]}},
            "clean", "other")),
    ]


def _step_doc(type_: str, step: dict[str, Any]) -> dict[str, Any]:
    if type_ == "watermark":
        doc = base_doc()
        doc["steps"] = [step]
        return doc
    doc = base_doc(step)
    if type_ == "data_quality":
        doc["outputs"]["dq_failed"] = {"type": "file", "path": "out/dq_failed.jsonl"}
    return doc


_UNPRODUCED = re.compile(r"outputs\.([A-Za-z0-9_.\-]+): no stream or step produces tag")


def runnable_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """The probe's document without the outputs of tags that nothing in it produces (the
    base declares an output for every tag a probe may use)."""
    doc = copy.deepcopy(doc)
    while True:
        try:
            build_spec(copy.deepcopy(doc), base_dir="/nonexistent/probe")
            return doc
        except SpecError as e:
            unproduced = _UNPRODUCED.search(str(e))
            if unproduced is None or unproduced.group(1) not in doc["outputs"]:
                raise
            del doc["outputs"][unproduced.group(1)]


def probe_spec(doc: dict[str, Any]) -> PipelineSpec:
    return build_spec(runnable_doc(doc), base_dir="/nonexistent/probe")


def evaluate(probe: Probe) -> SupportRow:
    """Validate the probe (local) and translate it (Flink)."""
    from surestream.runners.flink.translate import translate

    if probe.doc is None:
        return SupportRow(probe.subject, probe.option, NO_PROBE, NO_PROBE, "",
                          "no example in runners/flink/support.py yet")
    try:
        spec = probe_spec(probe.doc)
    except (SpecError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return SupportRow(probe.subject, probe.option, f"invalid: {first}", "-")
    try:
        translate(spec)
    except FlinkUnsupported as refused:
        return SupportRow(probe.subject, probe.option, "yes", "refused", refused.path,
                          refused.reason)
    return SupportRow(probe.subject, probe.option, "yes", "yes")


def support_table() -> list[SupportRow]:
    """The supported-step table: one row per probe."""
    return [evaluate(p) for p in probes()]


def support_probes() -> list[tuple[SupportRow, Probe]]:
    """Each row with its probe (the differential suite runs the supported ones)."""
    return [(evaluate(p), p) for p in probes()]


def markdown(rows: list[SupportRow] | None = None) -> str:
    """The table as markdown (``surestream explain --runner flink --support``)."""
    rows = support_table() if rows is None else rows
    lines = ["| step / option | local | Flink | refused at: reason |", "|---|---|---|---|"]
    for r in rows:
        what = f"{r.subject}" + (f" — {r.option}" if r.option else "")
        why = f"`{r.path}`: {r.reason}" if r.flink == "refused" else ""
        lines.append(f"| {what} | {r.local} | {r.flink} | {_cell(why)} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
