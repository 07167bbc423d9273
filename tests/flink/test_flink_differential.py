"""The differential suite (issue 15 item 4): the same specs on the local runner and on Flink,
outputs equal record for record (runners/flink/differential.py; docs/flink.md, "How results
are proven equal").

What runs, all in ONE job-driver call (one JVM; a module fixture):

- every shared Flink case (tests/data/flink-cases) as given, with only the aggregations
  Flink SQL has, and without its allowed lateness; a case Flink refuses must be refused
  with a field and a reason that the supported-step table lists;
- every example pipeline shipped in the project (flink_diff_cases.example_files) that the
  Flink runner accepts, on a small input; the refused ones are listed with their reasons;
- every probe of the supported-step table (runners/flink/support.py) that Flink accepts:
  each "yes" of the table is shown by an equal run;
- property-generated streams (hypothesis): disorder, duplicates, late records, records
  without a valid timestamp, several keys, several input files (each file's records never
  behind its own watermark: flink_diff_cases.files_in_bound), random window kinds,
  sizes, offsets and out-of-orderness, optional late split / where / with_columns.

The suite takes whatever the translation accepts: nothing here lists what is supported.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flink_diff_cases import (
    CASES_DIR,
    RESENT,
    ExampleVerdict,
    example_files,
    example_verdicts,
    named_stream_cases,
    probe_cases,
    read_lines,
    regression_cases,
    shared_cases,
    stream_cases,
    stream_records,
)
from hypothesis import HealthCheck, Phase, given, settings

from surestream.model.loader import build_spec
from surestream.runners.flink.differential import (
    CaseResult,
    DiffCase,
    read_jsonl,
    run_differential,
    summary,
)
from surestream.runners.flink.distribution import flink_python
from surestream.runners.flink.sql_refusals import FlinkUnsupported
from surestream.runners.flink.support import SupportRow, support_probes
from surestream.runners.flink.translate import translate

#: property-generated streams per run (all in the one driver call)
PROPERTY_CASES = 20
#: an example in the shape of the shipped ones (no schema, relative paths, trades columns)
#: using only translated steps: the example path (small input, declared schema, both
#: runners) is shown working before any shipped example is accepted
EXAMPLE_SHAPE = """\
pipeline: trades-window-shape
source: {type: file, path: data/trades.jsonl, format: jsonl}
steps:
  - {type: watermark, name: event_time, timestamp_column: timestamp_ms,
     max_out_of_orderness_ms: 5000}
  - {type: late_data_side_output, name: quarantine_late, output_tag: late}
  - type: route
    name: by_status
    field: status
    routes: {NEW: main, FILLED: main, CANCELLED: cancelled}
    default: other
  - type: window
    name: w1m
    key_fields: [symbol]
    kind: tumbling
    size_ms: 60000
    late_output_tag: late_window
    aggregations: {trade_count: count(), total_volume: sum(quantity), high: max(price),
                   low: min(price)}
outputs:
  main: {type: file, path: out/windows.jsonl}
  late: {type: file, path: out/late.jsonl}
  late_window: {type: file, path: out/late_window.jsonl}
  cancelled: {type: file, path: out/cancelled.jsonl}
  other: {type: file, path: out/other.jsonl}
  errors: {type: file, path: out/errors.jsonl}
"""


@dataclass
class Batch:
    results: dict[str, CaseResult]
    examples: list[ExampleVerdict]
    table: list[SupportRow]
    probes_left_out: list[str]
    shape: ExampleVerdict | None = None
    property_names: list[str] = field(default_factory=list)
    probe_names: dict[str, str] = field(default_factory=dict)  # table label -> case name


def property_cases(n: int) -> list[DiffCase]:
    """``n`` streams drawn by hypothesis (seeded by ``--hypothesis-seed``), collected first
    so that they run as jobs of the one driver call: a JVM per example would take hours."""
    drawn: list[DiffCase] = []

    @settings(max_examples=n, phases=[Phase.generate], database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(stream_cases())
    def collect(case: DiffCase) -> None:
        drawn.append(case)

    collect()
    unique = list({json.dumps([c.doc, c.inputs], sort_keys=True): c for c in drawn}.values())
    for i, case in enumerate(unique):  # (hypothesis may draw a stream twice: run it once)
        case.name = f"property/{i}"
        case.doc["pipeline"] = f"prop{i}"
    return unique


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    flink_python()  # Flink must be installed (scripts/flink-deps.sh): fail, never skip
    work = tmp_path_factory.mktemp("differential")
    examples = example_verdicts(work / "examples")
    shape_file = work / "shape" / "trades_window_shape.yaml"
    shape_file.parent.mkdir()
    shape_file.write_text(EXAMPLE_SHAPE)
    shape = example_verdicts(work / "shape", [shape_file])[0]
    rows_probes = support_probes()
    probes, labels, left_out = probe_cases(rows_probes)
    props = property_cases(PROPERTY_CASES)
    cases = [*shared_cases(), *regression_cases(), *named_stream_cases(),
             *(v.case for v in [*examples, shape] if v.case), *probes, *props]
    results = run_differential(cases, work / "runs")
    print("\n" + summary(results))
    print("\n".join(v.line() for v in examples))
    return Batch({r.case.name: r for r in results}, examples, [r for r, _ in rows_probes],
                 left_out, shape, [c.name for c in props], labels)


def table_lists(table: list[SupportRow], refusal: FlinkUnsupported) -> bool:
    """The refusal is one the supported-step table shows (the same reason up to the
    numbers in it, the same field up to the step index and the names of aggregations,
    columns and outputs)."""
    def tail(path: str) -> str:
        path = re.sub(r"^streams\.[^.]+\.", "", path)
        path = re.sub(r"^steps\[\d+\]", "steps[i]", path)
        return re.sub(r"^((?:steps\[i\]\.)?(?:aggregations|columns)|outputs)\..+$",
                      r"\1.*", path)

    def shape(reason: str) -> str:  # the spec's own numbers (sizes, periods) masked
        return re.sub(r"\d+", "#", reason)

    return any(r.flink == "refused" and shape(r.reason) == shape(refusal.reason)
               and tail(r.path) == tail(refusal.path) for r in table)


def assert_equal_or_refused(result: CaseResult, table: list[SupportRow]) -> None:
    assert result.failure is None, result.report()
    if result.refused:
        assert result.refusal.path and result.refusal.reason, result.report()
        assert table_lists(table, result.refusal), (
            f"{result.report()}\nthis refusal is not in the supported-step table "
            "(runners/flink/support.py): add a probe for the option")
    else:
        assert result.equal, result.report()


# -- the shared Flink cases -----------------------------------------------------------------

SHARED = [c.name for c in shared_cases()]


def test_the_shared_cases_are_all_here() -> None:
    names = {p.name for p in CASES_DIR.iterdir() if p.is_dir()}
    assert names and {n.split("/")[1] for n in SHARED} == names


@pytest.mark.parametrize("name", SHARED)
def test_shared_case(batch: Batch, name: str) -> None:
    result = batch.results[name]
    assert_equal_or_refused(result, batch.table)
    if result.refused or name.endswith("/no-lateness"):
        return
    # accepted as given: Flink's firings and late records are the DataStream truth too
    case_dir = CASES_DIR / name.split("/")[1]
    expected = read_lines(case_dir / "expected_main.jsonl")
    got = read_jsonl(result.flink_paths["main"])
    assert got, result.report()
    columns = [c for c in got[0] if c in expected[0]]

    def key(row: dict) -> tuple:
        return tuple(row[c] for c in columns)

    assert sorted(map(key, got)) == sorted(key(r) for r in expected)
    expected_late = sorted(r["id"] for r in read_lines(case_dir / "expected_late.jsonl"))
    assert sorted(r["id"] for r in read_jsonl(result.flink_paths["late_window"])) \
        == expected_late


def test_shared_cases_with_allowed_lateness_are_refused_with_the_reason(batch: Batch) -> None:
    """Refused, not skipped: each case with allowed lateness is refused at its window's
    ``allowed_lateness_ms`` unless the translation runs it -- then it must be equal."""
    lateness = [n for n in SHARED if n.endswith("/exact-aggs")
                and f"{n.rsplit('/', 1)[0]}/no-lateness" in batch.results]
    assert lateness, "the shared cases include allowed lateness (t03, s03, w02)"
    for name in lateness:
        result = batch.results[name]
        if result.refused:
            assert result.refusal.path.endswith("allowed_lateness_ms") or \
                result.refusal.path.endswith(".kind"), result.report()
        else:
            assert result.equal, result.report()


def test_window_starts_before_1970_are_equal(batch: Batch) -> None:
    """Found by the generated streams: Flink's window starts before 1970 with a non-whole
    second came out 1 s early (sql_time.epoch_ms)."""
    result = batch.results["regression/pre-1970-window-starts"]
    assert result.equal, result.report()
    starts = {r["window_start"] for r in read_jsonl(result.flink_paths["main"])}
    assert any(s < 0 and s % 1000 for s in starts), sorted(starts)


def test_error_records_are_equal(batch: Batch) -> None:
    """Error records field for field: the messages, ``raw`` (nulls included) and
    ``traceback``, for missing and out-of-range timestamps and an unroutable key."""
    result = batch.results["regression/error-records"]
    assert result.equal, result.report()
    errors = read_jsonl(result.flink_paths["errors"])
    assert sorted(r["error_type"] for r in errors) == [
        "missing_timestamp", "timestamp_out_of_range", "unroutable"]
    assert all("traceback" in r for r in errors)


# -- named streams ----------------------------------------------------------------------------

def flink_rows(result: CaseResult, tag: str) -> list[dict]:
    return read_jsonl(result.flink_paths[tag])


def test_named_streams_run_equal(batch: Batch) -> None:
    """Every named-stream case (flink_diff_cases.named_stream_cases) equal on both runners,
    and each shows what it is for in its outputs."""
    names = [c.name for c in named_stream_cases()]
    for name in names:
        result = batch.results[name]
        assert result.equal, result.report()
    sent = stream_records()
    # dedup in a parent stream: each re-sent record once among the duplicates; both windows
    # that read the deduplicated stream have results, and late records of their own
    fan_out = batch.results["streams/fan-out"]
    assert len(flink_rows(fan_out, "dups")) == RESENT
    for tag in ("tumbling", "sliding", "late_tumbling", "late_sliding"):
        assert flink_rows(fan_out, tag), f"streams/fan-out: {tag} is empty"
    spans = {r["window_end"] - r["window_start"] for r in flink_rows(fan_out, "sliding")}
    assert spans == {20_000}
    # a late split in a parent stream: every record once in the stream or late or errors;
    # the stream without steps holds exactly its parent's records
    late_split = batch.results["streams/late-split"]
    on_time = sorted(r["id"] for r in flink_rows(late_split, "on_time"))
    late = [r["id"] for r in flink_rows(late_split, "late")]
    errors = flink_rows(late_split, "errors")
    assert late and len(errors) == 1
    assert sorted(on_time + late + ["no_ts"]) == sorted(r["id"] for r in sent)
    assert sorted(r["id"] for r in flink_rows(late_split, "copy")) == on_time
    assert flink_rows(late_split, "big")
    # unions: both window sizes in one output; two filtered streams in one
    unions = batch.results["streams/unions"]
    sizes = {r["window_end"] - r["window_start"] for r in flink_rows(unions, "sizes")}
    assert sizes == {10_000, 20_000}
    both = flink_rows(unions, "a_and_b")
    assert {r["k"] for r in both} == {"A", "B"} and all(r["v2"] == 2 * r["v"] for r in both)
    # a Python filter in a parent stream, read by a window and by a late split
    user_code = batch.results["streams/user-code"]
    assert flink_rows(user_code, "windows") and flink_rows(user_code, "in_time")


# -- the example pipelines -----------------------------------------------------------------

def test_every_example_is_run_or_refused_as_the_translation_says(batch: Batch) -> None:
    names = {v.name for v in batch.examples}
    assert len(batch.examples) == len(example_files()) >= 10
    assert {"benchmarks/trades_1m.yaml", "src/surestream/examples/trades_vwap.yaml",
            "docs/examples/outmodes_page_views.yaml"} <= names
    for verdict in batch.examples:
        assert verdict.invalid is None, verdict.line()
        if verdict.accepted:
            result = batch.results[verdict.case.name]
            assert result.equal, result.report()
            assert result.records > 0, f"{verdict.name}: the small input produced nothing"
        else:
            assert verdict.refusal is not None and verdict.refusal.reason, verdict.line()
    # the same verdicts from the translation directly: nothing listed by hand
    for verdict in batch.examples:
        doc = verdict.case.doc if verdict.case else None
        if doc is not None:
            translate(build_spec(copy.deepcopy(doc), base_dir="/nonexistent"))
    flink_example = "src/surestream/examples/flink/trades_windows.yaml"
    accepted = {v.name: v for v in batch.examples}[flink_example]
    assert accepted.refusal is None and accepted.accepted, accepted.line()
    counts = {o.tag: o.local_count for o in batch.results[accepted.case.name].outputs}
    assert counts["windows_1m"] > 0 and counts["activity_5m"] > 0, counts
    ran = {n for n in batch.results if n.startswith("example/")}
    assert ran == {v.case.name for v in [*batch.examples, batch.shape] if v.accepted}


def test_an_example_the_translation_accepts_runs_equal_on_a_small_input(batch: Batch) -> None:
    """The example path end to end: refused as written for its missing schema, accepted
    with the schema of its small input declared, equal on both runners on every output."""
    shape = batch.shape
    assert shape.refusal is not None and shape.refusal.path == "source.schema"
    assert shape.accepted, shape.line()
    result = batch.results[shape.case.name]
    assert result.equal, result.report()
    counts = {o.tag: o.local_count for o in result.outputs}
    assert counts["main"] > 0 and counts["cancelled"] > 0 and counts["other"] > 0, counts


# -- the supported-step table, proven --------------------------------------------------------

def test_every_supported_row_runs_equal(batch: Batch) -> None:
    """Each "yes" of the table with file input/outputs is a run equal on both runners."""
    supported = [r for r in batch.table if r.flink_supported]
    assert any(r.subject == "step window" for r in supported)
    labels = {r.subject + (f" — {r.option}" if r.option else "") for r in supported}
    assert labels == set(batch.probe_names) | {x.split(":")[0] for x in batch.probes_left_out}
    for label, name in batch.probe_names.items():
        result = batch.results[name]
        assert result.equal, f"support row {label!r}: {result.report()}"
        assert result.records > 0, f"support row {label!r}: no records compared"


def test_refused_rows_are_refused_by_translate(batch: Batch, tmp_path: Path) -> None:
    """A few rows against the behaviour: the refusals of the shared cases and of a keyed
    dedup are the table's rows, and a row marked refused is refused by ``translate``."""
    rows = {(r.subject, r.option): r for r in batch.table}
    lateness = rows[("step window", "allowed_lateness_ms > 0")]
    t03 = batch.results["shared/t03_tumble_lateness_revisions/exact-aggs"]
    if lateness.flink == "refused":
        assert t03.refusal is not None and t03.refusal.reason == lateness.reason
    else:
        assert t03.equal, t03.report()
    first = rows[("aggregation", "first(v)")]
    t01 = batch.results["shared/t01_tumble_boundaries"]
    assert (first.flink == "refused") == t01.refused
    for row in batch.table:
        assert row.local == "yes", f"{row.subject} {row.option}: {row.local}"
    from surestream.runners.flink.support import probe_spec, probes

    by_label = {(p.subject, p.option): p for p in probes()}
    for (subject, option), row in rows.items():
        if row.flink != "refused":
            continue
        with pytest.raises(FlinkUnsupported) as refused:
            translate(probe_spec(by_label[subject, option].doc))
        assert (refused.value.path, refused.value.reason) == (row.path, row.reason)


def test_the_table_has_a_row_for_every_step_source_and_output_type() -> None:
    from surestream.runners.flink.support import (
        NO_PROBE,
        output_types,
        source_types,
        step_types,
        support_table,
    )

    table = support_table()
    subjects = {r.subject for r in table}
    assert [r for r in table if r.flink == NO_PROBE] == []
    assert {f"step {t}" for t in step_types()} <= subjects
    assert {f"source {t}" for t in source_types()} <= subjects
    assert {f"output {t}" for t in output_types()} <= subjects


def test_explain_support_prints_the_table(capsys: pytest.CaptureFixture) -> None:
    from surestream.cli.main import main

    assert main(["explain", "--runner", "flink", "--support"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| step / option | local | Flink |")
    assert re.search(r"\| step keyed_dedup \| yes \| (yes|refused) \|", out)


# -- property-generated streams --------------------------------------------------------------

def test_property_generated_streams_are_equal(batch: Batch) -> None:
    """Every generated stream is equal on both runners or refused with a reason the table
    lists; most are run (the generator leans to what SQL translates)."""
    results = [batch.results[n] for n in batch.property_names]
    assert len(results) >= PROPERTY_CASES // 2, "hypothesis drew too few distinct streams"
    for result in results:
        assert_equal_or_refused(result, batch.table)
    equal = [r for r in results if r.equal]
    assert len(equal) >= 3, summary(results)
    assert sum(r.records for r in equal) > 0
    several = [r for r in results if len(r.case.inputs) > 1]
    print(f"\nseveral files: {sum(r.equal for r in several)} equal, "
          f"{sum(r.refused for r in several)} refused, of {len(several)} generated streams")
    assert all(r.equal or r.refusal.path != "source.path" for r in several)
