"""Keyed deduplication on Flink (issue 15 item 1): the Java operator against our runner.

``keyed_dedup`` (strategy ``first``, SEMANTICS §4) runs on Flink as the Java process table
function ``surestream.flink.KeyedDedup``. Hand-written inputs (their expected records
written here by hand, from the rule) and the trades-1m pipeline on the reference
generator's 20 000 trades (``trades_small``) run on both runners; the outputs must be
equal, and the duplicates must be counted on Flink too.

All Flink jobs of the module run in one job driver (one JVM): the ``runs`` fixture
translates every spec, runs them together, and runs each spec on the local runner.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from surestream.model.loader import build_spec, load_spec_dict
from surestream.model.spec import PipelineSpec
from surestream.runners.flink import operator_jar
from surestream.runners.flink.differential import read_jsonl
from surestream.runners.flink.distribution import flink_python
from surestream.runners.flink.operator_jar import operator_jar_path
from surestream.runners.flink.runner import flink_job
from surestream.runners.flink.sql_dedup import duplicates_dropped
from surestream.runners.flink.sql_refusals import FlinkUnsupported
from surestream.runners.flink.submit import run_jobs
from surestream.runners.flink.translate import translate
from surestream.runners.local.runner import LocalRunner

ROOT = Path(__file__).resolve().parents[2]
TRADES_SPEC = ROOT / "benchmarks" / "trades_1m.yaml"
TRADES_SCHEMA = {"trade_id": "string", "symbol": "string", "side": "string",
                 "price": "float", "quantity": "float", "status": "string",
                 "timestamp_ms": "int"}
LATE_META = ("watermark_ms", "lateness_ms", "original_timestamp", "pipeline", "operator")
#: a failed job must fail the test, not restart forever
NO_RESTART = {"restart-strategy.type": "none"}

# -- the hand-written cases: (id, k, ts) in arrival order ---------------------------------
# window 2000, ttl 5000, no disorder allowed (W = max ts - 1)
RESTART_AND_TTL = [
    (1, "a", 1000),   # keep: a's first record, t0 = 1000
    (2, "a", 2999),   # duplicate: 2999 < 1000 + 2000
    (3, "a", 3000),   # keep: 3000 >= t0 + window restarts a's window, t0 = 3000
    (4, "b", 3500),   # keep: b's first
    (5, "a", 4000),   # duplicate of 3
    (6, "c", 9000),   # keep; W becomes 8999
    (7, "b", 9100),   # keep: b's state expired (3500 + 5000 <= 8999)
    (8, "a", 4500),   # keep: a's state expired (3000 + 5000 <= 9099), though 4500 < 5000
    (9, "c", 8000),   # duplicate: before c's t0 = 9000, within its window
    (10, "a", 4600),  # duplicate of 8 (t0 = 4500)
    (11, "d", 20000),  # keep; W becomes 19999
    (12, "c", 10500),  # keep: c's state (9000 + 5000 <= 19999) expired
]
RESTART_AND_TTL_KEPT = [1, 3, 4, 6, 7, 8, 11, 12]

# window 1000, ttl 10000, 3 s of disorder allowed: duplicates arrive before and after the
# record kept, out of order
OUT_OF_ORDER = [
    (1, "x", 5000),   # keep, t0 = 5000
    (2, "x", 4200),   # duplicate: earlier than t0, still within the window
    (3, "y", 4800),   # keep
    (4, "x", 6100),   # keep: 6100 >= 5000 + 1000, t0 = 6100
    (5, "x", 5500),   # duplicate: 5500 < 6100 + 1000
    (6, "y", 4800),   # duplicate: the very same record again
    (7, "x", 5999),   # duplicate
    (8, "y", 5900),   # keep: 5900 >= 4800 + 1000
]
OUT_OF_ORDER_KEPT = [1, 3, 4, 8]

# key [k, r]; window 10000: id -> (k, r, ts)
NULL_KEYS = [
    (1, "a", 1, 1000),     # keep
    (2, None, 1, 1100),    # error: k is null
    (3, "a", None, 1200),  # error: r is null
    (4, None, None, 1300),  # error: both are null
    (5, "a", 1, 1400),     # duplicate of 1
    (6, None, 1, 1500),    # error again: a null key is no duplicate of another
]


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def dedup_doc(name: str, rows: list[dict], base: Path, *, schema: dict[str, str],
              dedup: dict[str, Any], disorder: int) -> dict:
    """A spec: the watermark, one keyed_dedup step, its records to ``main``."""
    source = _write(base / "input" / f"{name}.jsonl", rows)
    outputs = {"main": {"type": "file", "path": "out/main.jsonl"},
               "errors": {"type": "file", "path": "out/errors.jsonl"}}
    if dedup.get("duplicates_output_tag"):
        outputs[dedup["duplicates_output_tag"]] = {"type": "file", "path": "out/dups.jsonl"}
    return {"pipeline": name, "source": {"type": "file", "path": str(source),
                                         "schema": schema},
            "steps": [{"type": "watermark", "timestamp_column": "ts",
                       "max_out_of_orderness_ms": disorder},
                      {"type": "keyed_dedup", "name": "dedup", **dedup}],
            "outputs": outputs, "checkpoint": {"dir": "ck"}}


def trades_doc(source: str) -> dict:
    """benchmarks/trades_1m.yaml on ``source`` (the reference generator's 20 000 trades:
    the ``trades_small`` fixture), with a declared schema (Flink needs the column types)
    and JSON-lines outputs (the translated output format)."""
    doc = load_spec_dict(TRADES_SPEC)
    doc["source"] = {**doc["source"], "path": source, "schema": TRADES_SCHEMA}
    doc["outputs"] = {tag: {"type": "file", "path": f"out/{tag}.jsonl"}
                      for tag in ("main", "late_window", "errors")}
    doc["checkpoint"] = {"dir": "ck"}
    return doc


def case_docs(base: Path, trades: str) -> dict[str, dict]:
    """Every spec of the module by name, its files under ``base``."""
    kv = {"k": "string", "ts": "int", "id": "int"}
    null_schema = {"k": "string", "r": "int", "ts": "int", "id": "int"}
    null_rows = [{"id": i, "k": k, "r": r, "ts": ts} for i, k, r, ts in NULL_KEYS]
    return {
        "restart_ttl": dedup_doc(
            "restart_ttl", [{"id": i, "k": k, "ts": t} for i, k, t in RESTART_AND_TTL],
            base, schema=kv, disorder=0,
            dedup={"key_fields": ["k"], "time_window_ms": 2000, "state_ttl_ms": 5000}),
        "out_of_order": dedup_doc(
            "out_of_order", [{"id": i, "k": k, "ts": t} for i, k, t in OUT_OF_ORDER],
            base, schema=kv, disorder=3000,
            dedup={"key_fields": ["k"], "time_window_ms": 1000, "state_ttl_ms": 10000,
                   "duplicates_output_tag": "dups"}),
        "null_error": dedup_doc(
            "null_error", null_rows, base, schema=null_schema, disorder=0,
            dedup={"key_fields": ["k", "r"], "time_window_ms": 10000}),
        "null_keep": dedup_doc(
            "null_keep", null_rows, base, schema=null_schema, disorder=0,
            dedup={"key_fields": ["k", "r"], "time_window_ms": 10000,
                   "on_null_key": "keep"}),
        "trades": trades_doc(trades),
        "trades_p2": trades_doc(trades),  # on Flink at parallelism 2
    }


class Runs:
    """Each spec run on both runners: its outputs' folders and the local counters."""

    def __init__(self, root: Path, trades_manifest: dict) -> None:
        self.root = root
        self.trades_manifest = trades_manifest
        self.specs: dict[str, dict[str, PipelineSpec]] = {}
        self.local_counters: dict[str, dict[str, dict[str, int]]] = {}

    def out(self, name: str, runner: str, tag: str) -> list[dict]:
        return read_jsonl(self.root / runner / name / "out" / f"{tag}.jsonl")

    def flink_duplicates(self, name: str) -> int:
        step = "dedup_trade_id" if name.startswith("trades") else "dedup"
        return duplicates_dropped(self.specs[name]["flink"])[step]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, trades_small: dict) -> Runs:
    flink_python()  # raises FlinkNotInstalled naming the install script
    root = tmp_path_factory.mktemp("dedup")
    result = Runs(root, trades_small)
    jobs = []
    for runner in ("flink", "local"):
        base = root / runner
        for name, doc in case_docs(base, trades_small["path"]).items():
            spec = build_spec(doc, base_dir=base / name)
            result.specs.setdefault(name, {})[runner] = spec
            if runner == "flink":
                parallelism = 2 if name == "trades_p2" else 1
                jobs.append(flink_job(spec, parallelism=parallelism, extra=NO_RESTART))
            elif name != "trades_p2":  # compared with the local run of "trades"
                result.local_counters[name] = LocalRunner(spec).run().operator_counters
    run_jobs(jobs, root / "flink-jobs")
    return result


def ids(rows: list[dict]) -> list[int]:
    return sorted(r["id"] for r in rows)


def test_window_restart_and_ttl_expiry_keep_the_same_records(runs: Runs) -> None:
    """A key's window restarts time_window_ms after the record kept; after state_ttl_ms of
    event time (by the watermark) the key is forgotten, so even a record inside the old
    window is kept again."""
    assert ids(runs.out("restart_ttl", "flink", "main")) == RESTART_AND_TTL_KEPT
    assert ids(runs.out("restart_ttl", "local", "main")) == RESTART_AND_TTL_KEPT
    assert runs.flink_duplicates("restart_ttl") == 4
    assert runs.local_counters["restart_ttl"]["dedup"]["duplicates"] == 4


def test_out_of_order_duplicates_are_dropped_and_audited_alike(runs: Runs) -> None:
    flink_main = runs.out("out_of_order", "flink", "main")
    assert ids(flink_main) == OUT_OF_ORDER_KEPT
    assert ids(runs.out("out_of_order", "local", "main")) == OUT_OF_ORDER_KEPT
    assert sorted(json.dumps(r, sort_keys=True) for r in flink_main) == sorted(
        json.dumps(r, sort_keys=True) for r in runs.out("out_of_order", "local", "main"))
    # the duplicates output holds exactly the dropped records, on both runners
    assert ids(runs.out("out_of_order", "flink", "dups")) == [2, 5, 6, 7]
    assert ids(runs.out("out_of_order", "local", "dups")) == [2, 5, 6, 7]


def test_null_keys_go_to_errors_with_the_reason(runs: Runs) -> None:
    assert ids(runs.out("null_error", "flink", "main")) == [1]
    assert ids(runs.out("null_error", "local", "main")) == [1]

    def errors(runner: str) -> list[tuple]:
        return sorted((json.loads(r["raw"])["id"], r["error_type"], r["operator"],
                       r["error_message"]) for r in runs.out("null_error", runner, "errors"))

    flink = errors("flink")
    assert [(i, t, op) for i, t, op, _ in flink] == [
        (2, "null_key", "dedup"), (3, "null_key", "dedup"), (4, "null_key", "dedup"),
        (6, "null_key", "dedup")]
    assert "key field 'k' is null" in flink[0][3]
    assert "key field 'r' is null" in flink[1][3]
    assert "key fields 'k', 'r' are null" in flink[2][3]
    assert flink == errors("local")
    assert runs.flink_duplicates("null_error") == 1


def test_null_keys_pass_through_with_on_null_key_keep(runs: Runs) -> None:
    assert ids(runs.out("null_keep", "flink", "main")) == [1, 2, 3, 4, 6]
    assert ids(runs.out("null_keep", "local", "main")) == [1, 2, 3, 4, 6]
    assert runs.out("null_keep", "flink", "errors") == []


def _windows(rows: list[dict]) -> dict[tuple, dict]:
    return {(r["symbol"], r["window_start"], r["window_end"]): r for r in rows}


def test_trades_1m_pipeline_equals_the_local_runner(runs: Runs) -> None:
    """benchmarks/trades_1m.yaml (watermark, keyed dedup, 1-minute windows with vwap) on a
    generated input: the same windows -- every value bit for bit, floats included (the
    same float64 operations in arrival order) -- the same late records, and the generator's
    count of duplicates dropped."""
    manifest = runs.trades_manifest
    flink, local = (_windows(runs.out("trades", r, "main")) for r in ("flink", "local"))
    assert flink.keys() == local.keys()
    assert flink == local  # count, total_volume, vwap, high, low, revision: exactly
    assert sum(r["trade_count"] for r in flink.values()) == \
        manifest["expected_sum_trade_count"]
    assert runs.flink_duplicates("trades") == manifest["duplicates"]
    assert runs.local_counters["trades"]["dedup_trade_id"]["duplicates"] == \
        manifest["duplicates"]

    def late(runner: str) -> list[tuple]:
        return sorted((r["trade_id"], *(r[m] for m in LATE_META))
                      for r in runs.out("trades", runner, "late_window"))

    assert len(late("flink")) == manifest["late"]
    assert late("flink") == late("local")


def test_trades_1m_at_parallelism_2_differs_only_in_float_rounding(runs: Runs) -> None:
    """At parallelism 2 the window receives the kept records from two dedup subtasks, in
    another interleaving than the file's: every record decision, count, max, min and late
    record is still the local runner's, but a float sum folds in another order, so those
    are equal up to rounding (docs/flink.md: exact float equality at parallelism 1 only)."""
    flink, local = (_windows(runs.out(n, r, "main"))
                    for n, r in (("trades_p2", "flink"), ("trades", "local")))
    assert flink.keys() == local.keys()
    for key, row in flink.items():
        want = local[key]
        assert {f: row[f] for f in ("trade_count", "high", "low", "revision")} == \
            {f: want[f] for f in ("trade_count", "high", "low", "revision")}
        for f in ("total_volume", "vwap"):
            assert row[f] == pytest.approx(want[f], rel=1e-12, abs=0)
    assert runs.flink_duplicates("trades_p2") == runs.trades_manifest["duplicates"]
    late = sorted(r["trade_id"] for r in runs.out("trades_p2", "flink", "late_window"))
    assert late == sorted(r["trade_id"] for r in runs.out("trades", "local", "late_window"))


def test_other_strategies_are_refused_with_the_reason(tmp_path: Path) -> None:
    doc = dedup_doc("last", [{"id": 1, "k": "a", "ts": 1}], tmp_path,
                    schema={"k": "string", "ts": "int", "id": "int"}, disorder=0,
                    dedup={"key_fields": ["k"], "time_window_ms": 10, "strategy": "last"})
    with pytest.raises(FlinkUnsupported) as refused:
        translate(build_spec(doc, base_dir=tmp_path))
    assert refused.value.path == "steps[1].strategy"
    assert "holds each key's record back" in refused.value.reason
    assert "event time" in refused.value.reason


def test_the_translation_calls_the_java_operator_with_its_jar(tmp_path: Path,
                                                             trades_small: dict) -> None:
    """What ``surestream explain --runner flink`` prints for trades-1m: the operator
    registered from its jar, called partitioned by the key with the event time."""
    spec = build_spec(trades_doc(trades_small["path"]), base_dir=tmp_path)
    translation = translate(spec)
    script = translation.script()
    assert ("CREATE TEMPORARY SYSTEM FUNCTION surestream_keyed_dedup AS "
            "'surestream.flink.KeyedDedup' LANGUAGE JAVA") in script
    assert "PARTITION BY `trade_id`" in script and "on_time => DESCRIPTOR(rt)" in script
    assert "window_ms => CAST(600000 AS BIGINT), ttl_ms => CAST(3600000 AS BIGINT)" in script
    assert translation.jars == [operator_jar_path()]
    assert f"ADD JAR '{operator_jar_path()}';" in script  # for a SQL client


def test_the_operator_jar_is_rebuilt_only_when_its_sources_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SURESTREAM_FLINK_OPERATORS", str(tmp_path / "cache"))
    sources = tmp_path / "java"
    shutil.copytree(operator_jar.JAVA_SOURCES, sources)
    monkeypatch.setattr(operator_jar, "JAVA_SOURCES", sources)
    jar = operator_jar.ensure_operator_jar()
    built = jar.stat().st_mtime_ns
    with zipfile.ZipFile(jar) as z:
        assert "surestream/flink/KeyedDedup.class" in z.namelist()
    assert operator_jar.ensure_operator_jar() == jar  # unchanged sources: the same jar,
    assert jar.stat().st_mtime_ns == built  # not rebuilt
    source = next(sources.rglob("KeyedDedup.java"))
    source.write_text(source.read_text() + "\n// changed\n")
    changed = operator_jar.ensure_operator_jar()
    assert changed != jar and changed.is_file()
