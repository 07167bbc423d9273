"""Differential runs: the same spec on the local runner and on Flink, outputs compared
record for record (issue 15 item 4).

A ``DiffCase`` is a spec document plus the input files it reads. ``run_differential``
translates every case (a case the Flink runner refuses is kept with its ``FlinkUnsupported``
-- field path and reason -- and not run), runs the accepted ones on the local runner, and
runs all of them on Flink in **one** job-driver call (``submit``'s driver: one JVM for the
whole batch, since a JVM start costs 10-30 s and a job inside it ~1-3 s). Each case runs in
two folders of its own (``<work>/<case>/local`` and ``.../flink``) with the same relative
paths, so its outputs land side by side.

Outputs are compared per output tag (every JSON-lines file output, and the errors output).
Order is normalised by a documented key, since neither runner promises an order across
keys or partitions (docs/flink.md, "How results are proven equal"):

- window rows (records with ``window_start`` and ``window_end``): by ``(window_start,
  window_end, the windows' key fields, every other field in name order)``;
- other records: by every field in name order.

The ``raw`` field of error records (the record as JSON text) is compared as the object it
holds: key order and spacing in the text are not data (Flink's JSON_OBJECT orders keys its
own way).

The comparison is of multisets: a record twice on one side must be there twice on the
other. Floats are compared bit for bit, with one measured, documented exception: the float
``sum``/``avg`` of a *sliding* window (``loose_fields``; see ``float_equal``).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from surestream.model.loader import build_spec
from surestream.model.spec import ERRORS_TAG, FileSink, PipelineSpec
from surestream.runners.flink.runner import flink_job
from surestream.runners.flink.sql_refusals import FlinkUnsupported
from surestream.runners.flink.submit import (
    driver_command,
    driver_environment,
    parse_driver_output,
    ship_user_code,
)
from surestream.runners.flink.translate import translate

#: the relative tolerance for the float sums/avgs of sliding windows (``float_equal``)
SLIDING_FLOAT_TOLERANCE = 1e-9


@dataclass
class DiffCase:
    """One spec to run on both runners.

    ``doc``: the spec document; relative paths resolve in each runner's own folder.
    ``inputs``: relative path -> records, written as JSON lines into both folders first
    (or the file's text or bytes as they are: lines that are not records, blank lines,
    bytes that are not UTF-8).
    ``note``: what the case is meant to exercise (printed in reports).
    """

    name: str
    doc: dict[str, Any]
    inputs: dict[str, list[dict[str, Any]] | str | bytes] = field(default_factory=dict)
    note: str = ""


@dataclass
class OutputDiff:
    """One output's comparison: records only on one side (after normalising order)."""

    tag: str
    local_count: int
    flink_count: int
    only_local: list[dict[str, Any]] = field(default_factory=list)
    only_flink: list[dict[str, Any]] = field(default_factory=list)
    #: float values equal only within SLIDING_FLOAT_TOLERANCE (not bit for bit)
    approx_values: int = 0

    @property
    def equal(self) -> bool:
        return not self.only_local and not self.only_flink


@dataclass
class CaseResult:
    """What became of one case: refused (``refusal``), failed (``failure``) or compared
    (``outputs``)."""

    case: DiffCase
    refusal: FlinkUnsupported | None = None
    failure: str | None = None
    outputs: list[OutputDiff] = field(default_factory=list)
    #: tag -> the output's path on each runner (to read the records themselves)
    local_paths: dict[str, Path] = field(default_factory=dict)
    flink_paths: dict[str, Path] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        return self.refusal is not None

    @property
    def equal(self) -> bool:
        return (self.refusal is None and self.failure is None
                and all(o.equal for o in self.outputs))

    @property
    def records(self) -> int:
        """Records compared (local side), over every output."""
        return sum(o.local_count for o in self.outputs)

    def report(self, limit: int = 5) -> str:
        """A readable account: the verdict, then each differing output's extra records."""
        head = f"{self.case.name}" + (f" ({self.case.note})" if self.case.note else "")
        if self.refusal is not None:
            return f"{head}: refused by the Flink runner: {self.refusal}"
        if self.failure is not None:
            return f"{head}: FAILED: {self.failure}"
        approx = sum(o.approx_values for o in self.outputs)
        verdict = "DIFFERENT" if not self.equal else "equal" + (
            f" ({approx} sliding-window float values within {SLIDING_FLOAT_TOLERANCE:g})"
            if approx else "")
        lines = [f"{head}: {verdict} -- " + ", ".join(
            f"{o.tag} {o.local_count}/{o.flink_count}" for o in self.outputs)
            + " (local/flink records)"]
        for o in self.outputs:
            if o.equal:
                continue
            lines.append(f"  output {o.tag}: {len(o.only_local)} only on local, "
                         f"{len(o.only_flink)} only on Flink")
            for side, rows in (("local", o.only_local), ("flink", o.only_flink)):
                for row in rows[:limit]:
                    lines.append(f"    only {side}: {canonical(row)}")
                if len(rows) > limit:
                    lines.append(f"    ... {len(rows) - limit} more only on {side}")
        return "\n".join(lines)


# -- reading and normalising outputs -------------------------------------------------------

def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """A local output file, or every committed part file of a Flink filesystem sink's
    folder (in-progress files start with a dot and are not committed)."""
    if not path.exists():
        return []
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")) \
        if path.is_dir() else [path]
    return [json.loads(line) for f in files for line in f.read_text().splitlines()
            if line.strip()]


def canonical(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def _sortable(value: Any) -> tuple:
    """Values of any JSON type in one total order (None first, then by type, then value)."""
    if value is None:
        return (0,)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, (int, float)):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    return (4, json.dumps(value, sort_keys=True, default=str))


def order_key(row: dict[str, Any], keys: tuple[str, ...] = ()) -> tuple:
    """The documented order: window rows by (window_start, window_end, the key fields, the
    other fields by name), other records by every field by name."""
    head: tuple = ()
    if "window_start" in row and "window_end" in row:
        head = (_sortable(row["window_start"]), _sortable(row["window_end"]),
                *(_sortable(row.get(k)) for k in keys))
        first = {"window_start", "window_end", *keys}
    else:
        first = set()
    rest = tuple((name, _sortable(row[name])) for name in sorted(row) if name not in first)
    return (*head, rest)


def key_fields(spec: PipelineSpec) -> tuple[str, ...]:
    """The key fields of the spec's window steps, in order (the window rows' sort key)."""
    keys: dict[str, None] = {}
    for stream in spec.all_streams.values():
        for step in stream.steps:
            if getattr(step, "type", None) == "window":
                keys |= dict.fromkeys(step.key_fields)
    return tuple(keys)


#: fields holding a record as JSON text, compared as the object they hold
JSON_TEXT_FIELDS = ("raw",)


def _json_text(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for name in JSON_TEXT_FIELDS:
        value = out.get(name)
        if isinstance(value, str) and value.startswith("{"):
            with contextlib.suppress(ValueError):  # not JSON: compared as text
                out[name] = json.dumps(json.loads(value), sort_keys=True)
    return out


def normalise(rows: list[dict[str, Any]], keys: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The rows in the documented order, JSON-text fields re-serialised canonically."""
    return sorted((_json_text(r) for r in rows), key=lambda r: order_key(r, keys))


def float_equal(a: Any, b: Any, *, loose: bool = False) -> bool:
    """Values equal, floats bit for bit (NaN equals NaN; -0.0 does not equal 0.0), or, for
    a ``loose`` field, within ``SLIDING_FLOAT_TOLERANCE`` (relative, and absolute near 0).

    Why bit for bit holds: every float Flink computes here is a min/max (a choice, no
    arithmetic), a sum, or an avg = sum/count. Our runner folds a window's values left to
    right in arrival order (docs/concepts.md, "Result types"), and so does Flink's
    one-phase window aggregate (``FLINK_CONFIG``: ``table.optimizer.agg-phase-strategy =
    ONE_PHASE``; the two-phase default pre-aggregates records into partial sums between
    watermarks and adds those: measured, the last bits differed). Exception, measured: a
    sliding window (HOP) is aggregated per slice (``slide_ms``) and a window's result is the
    merge of its slices' accumulators, ``(s1 + s2) + s3``, where ours is one fold over the
    window's records; float sums and averages then differ in their last bits (about 1e-15
    relative), so ``loose_fields`` marks them and they are compared within the tolerance.
    Integer sums, counts, min and max of sliding windows stay exact."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True
        if a == b and math.copysign(1, a) == math.copysign(1, b):
            return True
        return loose and math.isclose(a, b, rel_tol=SLIDING_FLOAT_TOLERANCE,
                                      abs_tol=SLIDING_FLOAT_TOLERANCE)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b and type(a) is type(b)
    return a == b


def rows_equal(a: dict[str, Any], b: dict[str, Any], loose: frozenset[str] = frozenset()
               ) -> bool:
    return a.keys() == b.keys() and all(float_equal(a[k], b[k], loose=k in loose)
                                        for k in a)


def loose_fields(spec: PipelineSpec) -> frozenset[str]:
    """The output columns of float ``sum``/``avg`` aggregations of sliding windows (see
    ``float_equal``): the only values compared within a tolerance."""
    names = set()
    for stream in spec.all_streams.values():
        for step in stream.steps:
            if getattr(step, "type", None) == "window" and step.kind == "sliding":
                names |= {out for out, agg in step.aggregations.items()
                          if agg.function in ("sum", "avg")}
    return frozenset(names)


def compare_rows(tag: str, local: list[dict[str, Any]], flink: list[dict[str, Any]],
                 loose: frozenset[str] = frozenset(), keys: tuple[str, ...] = ()
                 ) -> OutputDiff:
    """Multiset comparison in the documented order; the records without a partner on the
    other side are the difference. Rows are paired by their fields other than ``loose``
    ones, then compared whole."""
    diff = OutputDiff(tag, len(local), len(flink))
    remaining = normalise(flink, keys)

    def strict_part(row: dict[str, Any]) -> str:
        return canonical({k: v for k, v in row.items() if k not in loose})

    candidates: dict[str, list[int]] = {}
    for i, row in enumerate(remaining):
        candidates.setdefault(strict_part(row), []).append(i)
    used = [False] * len(remaining)
    for row in normalise(local, keys):
        slots = [i for i in candidates.get(strict_part(row), []) if not used[i]]
        exact = next((i for i in slots if rows_equal(row, remaining[i])), None)
        match = exact if exact is not None else next(
            (i for i in slots if rows_equal(row, remaining[i], loose)), None)
        if match is None:
            diff.only_local.append(row)
            continue
        used[match] = True
        if exact is None:
            diff.approx_values += sum(row[k] != remaining[match][k] for k in loose
                                      if k in row)
    diff.only_flink = [row for i, row in enumerate(remaining) if not used[i]]
    return diff


def output_paths(spec: PipelineSpec) -> dict[str, Path]:
    """The outputs compared: every JSON-lines file output, and the errors output."""
    paths = {tag: spec.resolve(sink.path) for tag, sink in spec.outputs.items()
             if isinstance(sink, FileSink) and sink.format == "jsonl"}
    paths.setdefault(ERRORS_TAG, spec.errors_default_path())
    return paths


# -- running -----------------------------------------------------------------------------

_JOB_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def _prepare(case: DiffCase, folder: Path) -> PipelineSpec:
    folder.mkdir(parents=True, exist_ok=True)
    for rel, records in case.inputs.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(records, bytes):
            target.write_bytes(records)
        else:
            target.write_text(records if isinstance(records, str)
                              else "".join(json.dumps(r) + "\n" for r in records))
    return build_spec(json.loads(json.dumps(case.doc)), base_dir=folder)


def _run_flink_batch(jobs: list[tuple[int, Any]], work: Path, timeout_s: float | None
                     ) -> dict[int, str | None]:
    """Run the jobs in as few driver calls as possible: one, unless a job fails; then the
    failed job is recorded and the driver is started again for the rest. Returns
    index -> None (finished) or the failure text."""
    outcome: dict[int, str | None] = {}
    pending = list(jobs)
    attempt = 0
    while pending:
        folder = work / f"driver-{attempt}"
        folder.mkdir(parents=True, exist_ok=True)
        files = [ship_user_code(job, folder / f"user-code-{i}")  # (a case's own functions)
                 .write(folder / f"job-{i}-{job.name}.json") for i, job in pending]
        try:
            done = subprocess.run(driver_command(files), env=driver_environment(folder),
                                  capture_output=True, text=True, timeout=timeout_s)
            stdout, stderr, code = done.stdout, done.stderr, done.returncode
        except subprocess.TimeoutExpired as e:
            stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            stderr, code = f"timed out after {timeout_s} s", -1
        runs = parse_driver_output(stdout, [job for _, job in pending])
        rest = []
        failed_one = False
        for (index, _job), run in zip(pending, runs, strict=True):
            if run.state == "FINISHED":
                outcome[index] = None
            elif not failed_one:  # the driver stops at the first failing job
                failed_one = True
                outcome[index] = (f"the Flink job driver exited {code} on this job: "
                                  f"{flink_error(stderr)}")
            else:
                rest.append((index, _job))
        if code == 0 and rest:  # exited cleanly yet some job did not end: no retry
            for index, _job in rest:
                outcome[index] = f"the job did not report FINISHED:\n{stderr[-2000:]}"
            rest = []
        pending = rest
        attempt += 1
    return outcome


def flink_error(stderr: str) -> str:
    """The cause lines of a driver's Java/Python error output (a stack trace's frames are
    noise in a report), or its end when none is found."""
    causes = [line.strip() for line in stderr.splitlines()
              if re.match(r"\s*(Caused by: |[\w.$]+(Exception|Error)\b:?)", line)
              and not line.strip().startswith("at ")]
    return "\n  ".join(dict.fromkeys(causes[:6])) if causes else stderr[-2000:]


def run_differential(cases: list[DiffCase], work: Path, *, timeout_s: float | None = None,
                     parallelism: int = 1) -> list[CaseResult]:
    """Translate, run and compare every case (see the module docstring). The local runs
    go first; the Flink jobs of all accepted cases then run in one driver call."""
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise ValueError(f"case names must be unique: {names}")
    results = [CaseResult(c) for c in cases]
    jobs: list[tuple[int, Any]] = []
    specs: dict[int, tuple[PipelineSpec, PipelineSpec]] = {}
    for i, (case, result) in enumerate(zip(cases, results, strict=True)):
        folder = work / _JOB_NAME.sub("_", case.name)
        flink_spec = _prepare(case, folder / "flink")
        try:
            translation = translate(flink_spec)
        except FlinkUnsupported as refused:
            result.refusal = refused
            continue
        local_spec = _prepare(case, folder / "local")
        try:
            from surestream.runners.local.runner import LocalRunner

            LocalRunner(local_spec).run()
        except Exception as e:  # noqa: BLE001 - reported per case, the batch goes on
            result.failure = f"the local runner failed: {type(e).__name__}: {e}"
            continue
        job = flink_job(flink_spec, translation, parallelism=parallelism)
        job.name = f"c{i}_{_JOB_NAME.sub('_', case.name)}"
        jobs.append((i, job))
        specs[i] = (local_spec, flink_spec)
    outcome = _run_flink_batch(jobs, work / "flink-driver", timeout_s) if jobs else {}
    for i, failure in outcome.items():
        result = results[i]
        if failure is not None:
            result.failure = failure
            continue
        local_spec, flink_spec = specs[i]
        local_paths, flink_paths = output_paths(local_spec), output_paths(flink_spec)
        result.local_paths, result.flink_paths = local_paths, flink_paths
        loose, keys = loose_fields(local_spec), key_fields(local_spec)
        for tag in sorted(local_paths):
            result.outputs.append(compare_rows(tag, read_jsonl(local_paths[tag]),
                                               read_jsonl(flink_paths[tag]), loose, keys))
    return results


def summary(results: list[CaseResult]) -> str:
    """One line per case, then the counts."""
    lines = [r.report() for r in results]
    equal = sum(r.equal for r in results)
    refused = sum(r.refused for r in results)
    lines.append(f"{equal} equal, {refused} refused, "
                 f"{len(results) - equal - refused} different or failed, of {len(results)}")
    return "\n".join(lines)
