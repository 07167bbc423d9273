"""The cases of the Flink differential suite (tests/flink/test_flink_differential.py):
the shared Flink cases, the project's example pipelines on a small input, and
property-generated streams (hypothesis strategies).

Every case is a ``DiffCase`` (runners/flink/differential.py); the suite runs them all on
Flink in one job-driver call.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from surestream.model.loader import SpecError, build_spec, load_spec_dict
from surestream.model.spec import FileSink, FileSource
from surestream.runners.flink.differential import DiffCase
from surestream.runners.flink.sql_refusals import FlinkUnsupported
from surestream.runners.flink.translate import translate

REPO = Path(__file__).resolve().parents[2]
CASES_DIR = REPO / "tests" / "data" / "flink-cases"
CASE_SCHEMA = {"k": "string", "ts": "int", "v": "float", "id": "string"}
#: the aggregations of the cases' expected files (first/last included: they are the cases')
CASE_AGGS = {"count": "count()", "sum": "sum(v)", "min": "min(v)", "max": "max(v)",
             "first": "first(v)", "last": "last(v)"}
INPUT = "in/input.jsonl"


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _outputs(*tags: str) -> dict[str, dict[str, Any]]:
    return {tag: {"type": "file", "path": f"out/{tag}.jsonl"} for tag in tags}


# -- the shared Flink cases ------------------------------------------------------------------

def shared_case_names() -> list[str]:
    return sorted(p.name for p in CASES_DIR.iterdir() if (p / "case.json").exists())


def shared_case_doc(name: str, *, aggregations: dict[str, str], lateness: int | None = None
                    ) -> dict[str, Any]:
    c = json.loads((CASES_DIR / name / "case.json").read_text())
    win = dict(c["window"])
    if not win.get("offset_ms"):
        win.pop("offset_ms", None)
    window = {"type": "window", "name": "w", "key_fields": ["k"], **win,
              "allowed_lateness_ms": c["allowed_lateness_ms"] if lateness is None
              else lateness, "aggregations": aggregations}
    return {"pipeline": name, "source": {"type": "file", "path": INPUT, "schema": CASE_SCHEMA},
            "steps": [{"type": "watermark", "timestamp_column": "ts",
                       "max_out_of_orderness_ms": c["max_out_of_orderness_ms"]}, window],
            "outputs": _outputs("main", "late_window", "errors"), "checkpoint": {"dir": "ck"}}


def shared_cases() -> list[DiffCase]:
    """Each shared case as given (its window, lateness and every aggregation of its expected
    file), and as given with only the aggregations Flink SQL has (so a refusal of
    first/last does not hide the rest); plus each case without allowed lateness (no
    DataStream truth for it: the local runner is the reference)."""
    exact = {k: v for k, v in CASE_AGGS.items() if k not in ("first", "last")}
    exact["avg"] = "avg(v)"
    out = []
    for name in shared_case_names():
        records = read_lines(CASES_DIR / name / "input.jsonl")
        out.append(DiffCase(f"shared/{name}", shared_case_doc(name, aggregations=CASE_AGGS),
                            {INPUT: records}, "as given"))
        out.append(DiffCase(f"shared/{name}/exact-aggs",
                            shared_case_doc(name, aggregations=exact), {INPUT: records},
                            "count/sum/min/max/avg"))
        lateness = json.loads((CASES_DIR / name / "case.json").read_text())
        if lateness["allowed_lateness_ms"]:
            out.append(DiffCase(f"shared/{name}/no-lateness",
                                shared_case_doc(name, aggregations=exact, lateness=0),
                                {INPUT: records}, "allowed_lateness_ms 0"))
    return out


# -- the project's example pipelines ----------------------------------------------------------

def example_files() -> list[Path]:
    """Every example pipeline shipped in the project: src/surestream/examples (specs and ETL
    framework configs), the templates' YAML, docs/examples, benchmarks/*.yaml."""
    found = [*sorted((REPO / "src" / "surestream" / "examples").rglob("*.yaml")),
             *sorted((REPO / "src" / "surestream" / "examples" / "etl").glob("*.json")),
             *sorted((REPO / "src" / "surestream" / "apps" / "templates").glob("*.yaml")),
             *sorted((REPO / "docs" / "examples").glob("*.yaml")),
             *sorted((REPO / "benchmarks").glob("*.yaml"))]
    return [p for p in found if p.is_file()]


def example_doc(path: Path) -> dict[str, Any]:
    if path.suffix == ".json" and path.parent.name == "etl":
        from surestream.apps.etl.translate import load_etl_config, translate_etl_config

        return translate_etl_config(load_etl_config(path))
    return load_spec_dict(path)


@dataclass
class ExampleVerdict:
    """An example as shipped (``refusal``) and, when the only obstacle was the missing
    source schema, with the schema of its small input declared (``declared``)."""

    name: str
    refusal: FlinkUnsupported | None
    invalid: str | None = None
    declared_refusal: FlinkUnsupported | None = None
    case: DiffCase | None = None  # the case run on both runners, when accepted

    @property
    def accepted(self) -> bool:
        return self.case is not None

    def line(self) -> str:
        if self.invalid:
            return f"{self.name}: not a runnable spec here ({self.invalid})"
        if self.case is not None:
            how = "as shipped" if self.refusal is None else "with the source schema declared"
            return f"{self.name}: accepted ({how}): run on both runners"
        text = f"{self.name}: refused: {self.refusal}"
        if self.declared_refusal is not None:
            text += f"; with the schema declared: {self.declared_refusal}"
        return text


def _columns(doc: dict[str, Any]) -> dict[str, str]:
    """The columns the example's steps name, with a type for a synthetic input: the event
    time (int ms), keys and route fields (strings), dedup keys (``id``: one value a record),
    aggregated columns (floats); an example
    that declares its source ``schema``: those columns, with their types (other integers
    than the event time as ``small_int``)."""
    cols: dict[str, str] = {}
    steps = list(doc.get("steps") or [])
    for stream in (doc.get("streams") or {}).values():
        steps += stream.get("steps") or []
    for step in steps:
        kind = step.get("type")
        if kind == "watermark":
            cols[step["timestamp_column"]] = "int"
        for key in step.get("key_fields") or []:
            cols.setdefault(key, "string")
            if kind == "keyed_dedup" and cols[key] != "int":  # (not the event time)
                # one value a record: its duplicates are the re-sent ones
                cols[key] = "id"
        if kind == "route":
            cols.setdefault(step["field"], "string")
        aggs = step.get("aggregations")
        if isinstance(aggs, dict):
            for text in aggs.values():
                call = re.match(r"\s*\w+\((.*)\)\s*$", str(text))
                for arg in (call.group(1).split(",") if call else []):
                    if arg.strip():
                        cols.setdefault(arg.strip(), "float")
        elif isinstance(aggs, str):
            for part in aggs.split(","):
                cols.setdefault(part.split(":")[0].strip(), "float")
    declared = (doc.get("source") or {}).get("schema")
    if isinstance(declared, dict):  # the example's own columns, as it types them
        own = {c: t for c, t in cols.items() if t in ("int", "id")}
        return {c: own.get(c) or {"int": "small_int"}.get(t, t) for c, t in declared.items()}
    return cols


def small_input(doc: dict[str, Any], n: int = 60) -> list[dict[str, Any]]:
    """A small synthetic input with the example's columns: event times in disorder, a few
    keys, duplicates, route values (listed and unlisted)."""
    cols = _columns(doc)
    route_values: dict[str, list[str]] = {}
    for step in [*(doc.get("steps") or []),
                 *(s for st_ in (doc.get("streams") or {}).values()
                   for s in st_.get("steps") or [])]:
        if step.get("type") == "route":
            route_values[step["field"]] = [*map(str, step["routes"]), "UNLISTED"]
    records = []
    for i in range(n):
        row: dict[str, Any] = {}
        for c, t in cols.items():
            if t == "int":
                jitter = (i * 7919 % 9) * 1000 - 4000  # within D of a typical 5 s
                late = 90_000 if i % 11 == 10 else 0  # far behind: late
                row[c] = 1_700_000_000_000 + i * 2500 + jitter - late
            elif c in route_values:
                row[c] = route_values[c][i % len(route_values[c])]
            elif t == "string":
                row[c] = f"{c}{i % 3}" if i % 10 else f"{c}0"
            elif t == "id":
                row[c] = f"{c}{i}"
            elif t == "small_int":
                row[c] = i * 13 % 9 + 1
            elif t == "bool":
                row[c] = i % 3 == 0
            else:
                row[c] = round((i * 37 % 101) / 10, 1)
        records.append(row)
    return records + records[:5]  # duplicates


def _infer_schema(records: list[dict[str, Any]]) -> dict[str, str]:
    names = {bool: "bool", int: "int", float: "float", str: "string"}
    return {c: names[type(v)] for c, v in records[0].items()}


def _small_paths(doc: dict[str, Any]) -> dict[str, Any]:
    """The example with its input at ``in/input.jsonl``, file outputs under ``out/`` and its
    checkpoints in ``ck``: runnable in a case folder."""
    doc = copy.deepcopy(doc)
    src = doc.get("source")
    if isinstance(src, dict) and src.get("type", "file") == "file":
        src["path"] = INPUT
    for tag, sink in (doc.get("outputs") or {}).items():
        if isinstance(sink, dict) and sink.get("type", "file") == "file" and "path" in sink:
            suffix = {"csv": ".csv", "parquet": ".parquet"}.get(sink.get("format"), ".jsonl")
            sink["path"] = f"out/{re.sub(r'[^A-Za-z0-9_.-]', '_', tag)}{suffix}"
    doc["checkpoint"] = {**(doc.get("checkpoint") or {}), "dir": "ck"}
    return doc


def example_verdicts(work: Path, files: list[Path] | None = None) -> list[ExampleVerdict]:
    """Each example translated as shipped and, if refused only for its missing schema, with
    the schema of its small input declared; the accepted ones become cases."""
    out = []
    for path in example_files() if files is None else files:
        name = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else path.name
        try:
            doc = _small_paths(example_doc(path))
            spec = build_spec(copy.deepcopy(doc), base_dir=work)
        except (SpecError, ValueError, OSError) as e:
            out.append(ExampleVerdict(name, None, invalid=str(e).splitlines()[0]))
            continue
        records = small_input(doc)
        verdict = ExampleVerdict(name, None)
        try:
            translate(spec)
        except FlinkUnsupported as refused:
            verdict.refusal = refused
        if verdict.refusal is not None and verdict.refusal.path == "source.schema" \
                and isinstance(spec.source, FileSource):
            doc["source"]["schema"] = _infer_schema(records)
            try:
                translate(build_spec(copy.deepcopy(doc), base_dir=work))
            except FlinkUnsupported as refused:
                verdict.declared_refusal = refused
        if verdict.refusal is None or (verdict.refusal.path == "source.schema"
                                       and verdict.declared_refusal is None):
            verdict.case = DiffCase(f"example/{path.stem}", doc, {INPUT: records}, name)
            verdict.case.doc["pipeline"] = re.sub(r"[^A-Za-z0-9_-]", "_", path.stem)
        out.append(verdict)
    return out


def jsonl_outputs(doc: dict[str, Any]) -> list[str]:
    spec = build_spec(copy.deepcopy(doc), base_dir="/nonexistent")
    return [t for t, s in spec.outputs.items() if isinstance(s, FileSink) and s.format == "jsonl"]


# -- property-generated streams ----------------------------------------------------------------

AGG_CHOICES = {"count": "count()", "sum_v": "sum(v)", "min_v": "min(v)", "max_v": "max(v)",
               "avg_v": "avg(v)", "sum_n": "sum(n)", "max_n": "max(n)", "min_g": "min(g)",
               "first_v": "first(v)", "last_v": "last(v)"}


@st.composite
def stream_cases(draw: st.DrawFn, index: int = 0) -> DiffCase:
    """A random stream and pipeline: keys, disorder, duplicates, late records, records
    without a valid timestamp, one file or several, a tumbling/sliding (rarely session)
    window of random size, offset and out-of-orderness, optional late split / where /
    with_columns before it."""
    files = draw(st.sampled_from([1] * 6 + [2, 3]), label="files")
    n = draw(st.integers(1, 80), label="records")
    keys = draw(st.lists(st.sampled_from("ABCDE"), min_size=1, max_size=4, unique=True))
    base = draw(st.sampled_from([0, 1_700_000_000_000, 86_400_000 * 3]))
    step_ms = draw(st.sampled_from([1, 10, 100, 250, 1000]))
    jitter = draw(st.integers(0, 20)) * step_ms
    records = []
    for i in range(n):
        ts = base + i * step_ms + draw(st.integers(-jitter, jitter))
        if draw(st.integers(0, 19)) == 0:  # a straggler from far behind
            ts = base + draw(st.integers(0, max(1, i * step_ms)))
        # 0.1 steps, not exact in binary; with several files quarters, exact: float sums
        # are then the same in any order, and the files' interleaving is Flink's to choose
        v = draw(st.integers(-10_000, 10_000)) / (10 if files == 1 else 4)
        records.append({"k": draw(st.sampled_from(keys)), "g": draw(st.sampled_from("xy")),
                        "ts": max(ts, 0), "v": v, "n": draw(st.integers(-50, 50)),
                        "id": f"r{i}"})
    for _ in range(draw(st.integers(0, 4))):  # exact duplicates, later in the stream
        if records:
            dup = dict(draw(st.sampled_from(records)))
            records.insert(draw(st.integers(0, len(records))), dup)
    if draw(st.integers(0, 9)) == 0:  # records without a valid timestamp
        records.append({"k": keys[0], "g": "x", "v": 1.0, "n": 1, "id": "no_ts"})
        records.append({"k": keys[0], "g": "x", "ts": 20_000_000_000_000, "v": 1.0, "n": 1,
                        "id": "year_2603"})
    kind = draw(st.sampled_from(["tumbling"] * 6 + ["sliding"] * 5 + ["session"]))
    size = draw(st.sampled_from([1, 2, 5, 10, 20, 50])) * max(step_ms, 10) * 10
    window: dict[str, Any] = {"type": "window", "name": "w", "kind": kind,
                              "key_fields": draw(st.sampled_from([["k"], ["k", "g"], []]))}
    if kind == "session":
        window["gap_ms"] = size
        period = None
    elif kind == "tumbling":
        window["size_ms"] = period = size
    else:
        # a slide dividing the size, or not (3/5 of it: each record in 2 windows)
        slide = size * 3 // 5 if draw(st.integers(0, 5)) == 0 \
            else size // draw(st.sampled_from([1, 2, 4, 5]))
        window |= {"size_ms": size, "slide_ms": slide}
        period = slide
    if period and period > 1 and draw(st.integers(0, 3)) == 0:
        window["offset_ms"] = draw(st.integers(1, period - 1))
    if files == 1 and draw(st.integers(0, 11)) == 0:  # (refused: with one file only)
        window["allowed_lateness_ms"] = size
    names = draw(st.lists(st.sampled_from(sorted(AGG_CHOICES)), min_size=1, max_size=5,
                          unique=True))
    if files > 1 or draw(st.integers(0, 7)) != 0:  # first/last are refused: mostly (with
        # several files always: their cases should run) leave them out, and float sums of
        # sliding windows too
        refused = ("first", "last", *(("sum_v", "avg_v") if kind == "sliding" else ()))
        names = [a for a in names if not a.startswith(refused if files > 1 else refused[:2])
                 ] or ["count"]
    window["aggregations"] = {a: AGG_CHOICES[a] for a in names}
    steps: list[dict[str, Any]] = [{"type": "watermark", "timestamp_column": "ts",
                                    "max_out_of_orderness_ms": draw(st.sampled_from(
                                        [0, 1, step_ms, 5 * step_ms, 50 * step_ms]))}]
    outputs = ["main", "late_window", "errors"]
    if draw(st.booleans()):
        steps.append({"type": "late_data_side_output", "name": "late_split",
                      "output_tag": "late"})
        outputs.append("late")
    if draw(st.integers(0, 3)) == 0:
        steps.append({"type": "where", "name": "some",
                      "condition": f"v > {draw(st.integers(-500, 500))}"})
    if draw(st.integers(0, 3)) == 0:
        steps.append({"type": "with_columns", "name": "double",
                      "columns": {"v": "CAST(v * 2 AS DOUBLE)"}})
    steps.append(window)
    schema = {"k": "string", "g": "string", "ts": "int", "v": "float", "n": "int",
              "id": "string"}
    if files == 1:
        inputs, path = {INPUT: records}, INPUT
    else:
        parts = files_in_bound(records, files, steps[0]["max_out_of_orderness_ms"], draw)
        inputs = {f"in/part-{p}.jsonl": part for p, part in enumerate(parts)}
        path = "in/part-*.jsonl"
    doc = {"pipeline": f"prop{index}", "source": {"type": "file", "path": path,
                                                   "schema": schema},
           "steps": steps, "outputs": _outputs(*outputs), "checkpoint": {"dir": "ck"}}
    return DiffCase(f"property/{index}", doc, inputs,
                    f"{n} records, {len(keys)} keys, {kind} window, {files} file(s)")


#: timestamps from here on are outside the watermark's valid range (never move it)
_VALID_TS_BELOW = 10**13


def _in_bound(part: list[dict[str, Any]], bound: int) -> bool:
    """No record behind its file's watermark: each valid timestamp at most ``bound`` below
    the largest before it in the file (SEMANTICS §2: the watermark is max - bound - 1)."""
    top = None
    for r in part:
        ts = r.get("ts")
        if ts is None or ts >= _VALID_TS_BELOW:
            continue
        if top is not None and ts < top - bound:
            return False
        top = ts if top is None else max(top, ts)
    return True


def files_in_bound(records: list[dict[str, Any]], files: int, bound: int,
                   draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    """Several files (partitions) whose records are never behind their own file's
    watermark -- then none is late against the stream's (the minimum over the files, never
    above a file's own) in whatever order the files are interleaved, so both runners must
    agree (docs/flink.md, "The file source"). Records are dealt round-robin, each file's
    stragglers moved up to its bound; the exact duplicates of the stream (copies of a
    record, possibly into another file) are drawn again where their file stays in bound."""
    seen: set[str] = set()
    originals, copies = [], []
    for r in records:
        key = json.dumps(r, sort_keys=True)
        (copies if key in seen else originals).append(r)
        seen.add(key)
    parts: list[list[dict[str, Any]]] = [[] for _ in range(files)]
    tops: list[int | None] = [None] * files
    for i, r in enumerate(originals):
        p, r = i % files, dict(r)
        ts, top = r.get("ts"), tops[i % files]
        if ts is not None and ts < _VALID_TS_BELOW:
            if top is not None:
                r["ts"] = ts = max(ts, top - bound)
            tops[p] = ts if top is None else max(top, ts)
        parts[p].append(r)
    for _ in copies:  # as many copies as the stream had, of any record, anywhere in bound
        dup = dict(draw(st.sampled_from([r for part in parts for r in part])))
        p = draw(st.integers(0, files - 1))
        fits = [j for j in range(len(parts[p]) + 1)
                if _in_bound([*parts[p][:j], dup, *parts[p][j:]], bound)]
        if fits:
            parts[p].insert(draw(st.sampled_from(fits)), dup)
    return parts


# -- the support table's probes, run ------------------------------------------------------------

def probe_records() -> list[dict[str, Any]]:
    """A fixed small input for the probes (schema ``support.SCHEMA``): three keys, event
    times in disorder across several windows, late records, exact duplicates, negative and
    non-representable values."""
    records = []
    for i in range(48):
        ts = 20_000 + i * 700 + (i * 7919 % 11) * 450 - 2_500
        if i % 13 == 7:
            ts -= 9_000  # late behind any D of the probes
        records.append({"k": "ABC"[i * 5 % 3], "ts": ts, "v": round((i * 37 % 23 - 11) / 10, 1),
                        "n": i * 3 % 17 - 8, "id": f"p{i}"})
    return records + [dict(records[3]), dict(records[20])]


def probe_inputs(path: str | list[str]) -> dict[str, list[dict[str, Any]]]:
    """The probe input at the probe's source path; for several files, the records in
    event-time order dealt round-robin (no record behind its own file's watermark: a result
    that depends on the interleaving of files is not claimed equal, docs/flink.md)."""
    if isinstance(path, str):
        return {path: probe_records()}
    ordered = sorted(probe_records(), key=lambda r: (r["ts"], r["id"]))
    return {p: ordered[i::len(path)] for i, p in enumerate(path)}


def probe_cases(rows_and_probes: list[tuple[Any, Any]]
                ) -> tuple[list[DiffCase], dict[str, str], list[str]]:
    """A case for every probe the Flink runner accepts whose source and outputs are files
    (others need an external system: Kafka, a database); probes translated to the same job
    share one case. Returns the cases, table label -> case name, and the labels left out."""
    cases: list[DiffCase] = []
    labels: dict[str, str] = {}
    left_out: list[str] = []
    seen: dict[str, str] = {}
    for row, probe in rows_and_probes:
        if not row.flink_supported:
            continue
        from surestream.runners.flink.support import runnable_doc

        label = f"{row.subject}" + (f" — {row.option}" if row.option else "")
        doc = runnable_doc(probe.doc)
        kinds = {s.get("type", "file") for s in doc["outputs"].values()}
        if doc.get("source", {}).get("type", "file") != "file" or kinds != {"file"}:
            left_out.append(f"{label}: not a file source and file outputs")
            continue
        key = translate(build_spec(copy.deepcopy(doc), base_dir="/probe")).script()
        if key not in seen:  # else the same job as another probe's (e.g. the default kind)
            doc["pipeline"] = f"probe{len(cases)}"
            seen[key] = f"probe/{len(cases)}"
            cases.append(DiffCase(seen[key], doc, probe_inputs(doc["source"]["path"]), label))
        labels[label] = seen[key]
    return cases, labels, left_out


# -- regressions found by the suite, as fixed cases -----------------------------------------------

def regression_cases() -> list[DiffCase]:
    """Fixed cases for what the generated streams found (docs/flink.md): window starts
    before 1970 with a non-whole second (Flink's EXTRACT(MILLISECOND) keeps the epoch's
    sign), and error records (missing / out-of-range timestamps, unroutable values: the
    messages, ``raw`` with nulls, ``traceback``)."""
    schema = {"k": "string", "ts": "int", "v": "float", "id": "string"}
    early = [{"k": "AB"[i % 2], "ts": (i * 137) % 1900 + (i // 7) * 300, "v": i / 10,
              "id": f"e{i}"} for i in range(40)]
    sliding = {"pipeline": "pre1970", "source": {"type": "file", "path": INPUT,
                                                  "schema": schema},
               "steps": [{"type": "watermark", "timestamp_column": "ts",
                          "max_out_of_orderness_ms": 300},
                         {"type": "window", "name": "w", "key_fields": ["k"],
                          "kind": "sliding", "size_ms": 2000, "slide_ms": 500,
                          "offset_ms": 250,
                          "aggregations": {"count": "count()", "max": "max(v)"}}],
               "outputs": _outputs("main", "late_window", "errors"),
               "checkpoint": {"dir": "ck"}}
    bad = [{"k": "A", "ts": 1000, "v": 1.0, "id": "a"}, {"k": "A", "v": 2.0, "id": "no_ts"},
           {"k": "B", "ts": 20_000_000_000_000, "v": 3.0, "id": "year_2603"},
           {"k": "C", "ts": 1500, "v": None, "id": "unroutable"},
           {"k": "B", "ts": 1800, "v": 5.0, "id": "to_b"},
           {"k": "A", "ts": 2000, "v": 4.0, "id": "b"}]
    errors = {"pipeline": "errors", "source": {"type": "file", "path": INPUT,
                                                "schema": schema},
              "steps": [{"type": "watermark", "timestamp_column": "ts",
                         "max_out_of_orderness_ms": 1000},
                        {"type": "route", "name": "by_k", "field": "k",
                         "routes": {"A": "main", "B": "b_out"}}],
              "outputs": _outputs("main", "b_out", "errors"), "checkpoint": {"dir": "ck"}}
    return [DiffCase("regression/pre-1970-window-starts", sliding, {INPUT: early},
                     "sliding 2 s / 0.5 s, offset 250 ms, event times from 0"),
            DiffCase("regression/error-records", errors, {INPUT: bad},
                     "missing / out-of-range timestamps, an unroutable key, a null value")]


# -- named streams ---------------------------------------------------------------------------------

#: the named-stream cases' input columns (a few symbols, an int quantity, a float value)
STREAM_SCHEMA = {"k": "string", "ts": "int", "v": "float", "q": "int", "id": "string"}
#: how many records of ``stream_records`` are sent twice (the same ``id``): duplicates
RESENT = 6


def stream_records() -> list[dict[str, Any]]:
    """Trades for the named-stream cases: three keys, event times in disorder within 2 s,
    stragglers 30 s behind (late), ``RESENT`` records sent again a little later
    (duplicates), one record without a timestamp (an error)."""
    records = []
    for i in range(90):
        ts = 1_700_000_000_000 + i * 700 + (i * 7919 % 7) * 300 - 900
        if i % 17 == 9:
            ts -= 30_000  # far behind the watermark: late
        records.append({"k": "ABC"[i * 5 % 3], "ts": ts, "v": round((i * 37 % 29) / 4, 2),
                        "q": i % 7 + 1, "id": f"t{i}"})
    for j in range(RESENT):  # re-sent 3 records later (same id, same event time)
        records.insert(13 * j + 10, dict(records[13 * j + 7]))
    records.append({"k": "A", "v": 1.0, "q": 1, "id": "no_ts"})
    return records


def _window(name: str, late_tag: str, **shape: Any) -> dict[str, Any]:
    """A window per key; float sums and averages only in tumbling ones (a sliding window's
    are refused: Flink adds per-slide partial sums)."""
    aggs = {"trades": "count()", "volume": "sum(q)", "high": "max(v)", "low": "min(v)"}
    if shape["kind"] == "tumbling":
        aggs |= {"mean": "avg(v)", "vwap": "vwap(v, q)"}
    return {"type": "window", "name": name, "key_fields": ["k"], "late_output_tag": late_tag,
            "aggregations": aggs, **shape}


def _streams_doc(pipeline: str, streams: dict[str, Any], *outputs: str) -> dict[str, Any]:
    return {"pipeline": pipeline,
            "source": {"type": "file", "path": INPUT, "schema": STREAM_SCHEMA},
            "streams": streams, "outputs": _outputs(*outputs, "errors"),
            "checkpoint": {"dir": "ck"}}


WATERMARK_2S = {"type": "watermark", "name": "event_time", "timestamp_column": "ts",
                "max_out_of_orderness_ms": 2000}


def named_stream_cases() -> list[DiffCase]:
    """Fixed cases of named ``streams`` (runners/flink/sql_streams.py): one deduplicated
    stream feeding a tumbling and a sliding window; a late split and new columns in a
    parent stream, read by a filtered session window and by a stream without steps; two
    windows of one size each and two filtered streams, each pair as a union; a Python
    filter in a parent stream, read by a window and by a late split."""
    fan_out = _streams_doc("streams_fan_out", {
        "clean": {"from": "source", "steps": [
            WATERMARK_2S,
            {"type": "keyed_dedup", "name": "dedup", "key_fields": ["id"],
             "time_window_ms": 600_000, "duplicates_output_tag": "dups"}]},
        "tumbling": {"from": "clean", "steps": [
            _window("w10s", "late_tumbling", kind="tumbling", size_ms=10_000)]},
        "sliding": {"from": "clean", "steps": [
            _window("w20s", "late_sliding", kind="sliding", size_ms=20_000,
                    slide_ms=5_000)]}},
        "tumbling", "sliding", "late_tumbling", "late_sliding", "dups")
    late_split = _streams_doc("streams_late_split", {
        "on_time": {"from": "source", "steps": [
            WATERMARK_2S,
            {"type": "late_data_side_output", "name": "late_split", "output_tag": "late"},
            {"type": "with_columns", "name": "value",
             "columns": {"value": "CAST(v * q AS DOUBLE)"}}]},
        "big": {"from": "on_time", "steps": [
            {"type": "where", "name": "big_only", "condition": "value > 20"},
            {"type": "window", "name": "sessions", "key_fields": ["k"], "kind": "session",
             "gap_ms": 1500, "late_output_tag": "late_sessions",
             "aggregations": {"trades": "count()", "total": "sum(value)"}}]},
        "copy": {"from": "on_time", "steps": []}},
        "on_time", "big", "copy", "late", "late_sessions")
    unions = _streams_doc("streams_unions", {
        "trades": {"from": "source", "steps": [WATERMARK_2S]},
        "w_a": {"from": "trades", "steps": [
            _window("wa", "late_a", kind="tumbling", size_ms=10_000)]},
        "w_b": {"from": "trades", "steps": [
            _window("wb", "late_b", kind="tumbling", size_ms=20_000)]},
        "sizes": {"from": ["w_a", "w_b"], "steps": []},
        "key_a": {"from": "trades", "steps": [
            {"type": "where", "name": "only_a", "condition": "k = 'A'"}]},
        "key_b": {"from": "trades", "steps": [
            {"type": "where", "name": "only_b", "condition": "k = 'B'"}]},
        "a_and_b": {"from": ["key_a", "key_b"], "steps": [
            {"type": "with_columns", "name": "doubled",
             "columns": {"v2": "CAST(v * 2 AS DOUBLE)"}}]}},
        "sizes", "a_and_b", "late_a", "late_b")
    user_code = _streams_doc("streams_user_code", {
        "kept": {"from": "source", "steps": [
            WATERMARK_2S,
            {"type": "filter", "name": "keep_big",
             "function": "flink_udf_functions:keep"}]},
        "windows": {"from": "kept", "steps": [
            _window("w5s", "late_windows", kind="tumbling", size_ms=5_000)]},
        "in_time": {"from": "kept", "steps": [
            {"type": "late_data_side_output", "name": "split_kept", "output_tag": "late"}]}},
        "windows", "in_time", "late_windows", "late")
    records = stream_records()
    return [DiffCase("streams/fan-out", fan_out, {INPUT: records},
                     "dedup in a parent stream; a tumbling and a sliding window read it"),
            DiffCase("streams/late-split", late_split, {INPUT: records},
                     "a late split in a parent stream; a session window and a stream "
                     "without steps read it"),
            DiffCase("streams/unions", unions, {INPUT: records},
                     "two windows as one output; two filtered streams as one"),
            DiffCase("streams/user-code", user_code, {INPUT: records},
                     "a Python filter in a parent stream; a window and a late split read "
                     "it (the watermark carried past the UDF)")]
