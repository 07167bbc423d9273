"""Output modes into real tables (docs/etl.md): a complete result into a
PostgreSQL and a DuckDB table in `mode: replace` holds every key's result once, however
many checkpoints replaced it; an update result upserted into PostgreSQL (`version_column:
version`) ends with the same final results. `surestream run` killed with SIGKILL at kill
points in update and complete mode, then restarted, ends with the table of a clean run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import psycopg
import pytest
import yaml
from postgres_server import postgres_dsn, postgres_server  # noqa: F401

import surestream
from surestream.model.loader import load_spec
from surestream.runners.local.runner import run

KEYS = 7


def write_records(path: Path, n: int = 420) -> list[dict]:
    """Keys k0..k6 in turn, values 0..12, timestamps mostly increasing (a few behind)."""
    records = [{"k": f"k{i % KEYS}", "v": i % 13, "ts": 1000 * i - (1500 if i % 10 == 3 else 0)}
               for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return records


def expected_table(records: list[dict]) -> list[tuple]:
    """(key, count, sum, max, version) per key, by hand from the records."""
    out: dict[str, list[int]] = {}
    for r in records:
        n, s, hi = out.get(r["k"], [0, 0, r["v"]])
        out[r["k"]] = [n + 1, s + r["v"], max(hi, r["v"])]
    return sorted((k, n, s, hi, n) for k, (n, s, hi) in out.items())


def write_spec(folder: Path, inp: Path, mode: str, sink: dict, every: int = 60) -> Path:
    doc = {
        "pipeline": f"outmodes_{mode}",
        "source": {"type": "file", "path": str(inp)},
        "steps": [{"type": "watermark", "timestamp_column": "ts",
                   "max_out_of_orderness_ms": 2000},
                  {"type": "aggregate", "name": "totals", "key_fields": ["k"],
                   "aggregations": {"n": "count()", "total": "sum(v)", "top": "max(v)"},
                   "output_mode": mode}],
        "outputs": {"main": sink, "errors": {"type": "file",
                                             "path": str(folder / "errors.jsonl")}},
        "checkpoint": {"dir": str(folder / "chk"), "interval_records": every},
        "runtime": {"batch_size": 25},
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def surestream_run(spec: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(surestream.__file__).parents[1])}
    env.pop("SURESTREAM_FAULT", None)
    if fault:
        env["SURESTREAM_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "surestream", "run", str(spec)], env=env,
                          capture_output=True, text=True, timeout=180)


def pg_table(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as con:
        return sorted(con.execute("select k, n, total, top, version from totals").fetchall())


PG_SINKS = {
    "complete": {"mode": "replace"},
    "update": {"mode": "upsert", "key_columns": ["k"], "version_column": "version"},
}


def test_complete_into_postgres_replace_and_update_into_upsert_end_with_the_results(
        tmp_path, postgres_server):  # noqa: F811
    records = write_records(tmp_path / "in.jsonl")
    for mode, sink in PG_SINKS.items():
        db = postgres_server.create_database()
        dsn = postgres_server.dsn(db)
        folder = tmp_path / mode
        folder.mkdir()
        spec = write_spec(folder, tmp_path / "in.jsonl", mode,
                          {"type": "postgres", "dsn": dsn, "table": "totals", **sink})
        result = run(load_spec(spec))
        assert result.checkpoints >= 5  # the table was replaced (or upserted) at each
        assert pg_table(dsn) == expected_table(records), mode
        postgres_server.drop_database(db)


def test_complete_into_duckdb_replace_holds_each_key_once(tmp_path):
    records = write_records(tmp_path / "in.jsonl")
    spec = write_spec(tmp_path, tmp_path / "in.jsonl", "complete",
                      {"type": "duckdb", "path": str(tmp_path / "t.duckdb"),
                       "table": "totals", "mode": "replace"}, every=30)
    result = run(load_spec(spec))
    assert result.checkpoints >= 8  # the table was replaced at each of them
    with duckdb.connect(str(tmp_path / "t.duckdb"), read_only=True) as con:
        got = sorted(con.execute("select k, n, total, top, version from totals").fetchall())
    assert got == expected_table(records)


@pytest.mark.parametrize(("mode", "fault"), [
    ("complete", "checkpoint.durable:3"), ("complete", "postgres.staged:4"),
    ("update", "checkpoint.pre_committed:3"), ("update", "postgres.committed:2")])
def test_killed_and_restarted_the_table_equals_a_clean_run(
        tmp_path, postgres_dsn, mode, fault):  # noqa: F811
    records = write_records(tmp_path / "in.jsonl")
    spec = write_spec(tmp_path, tmp_path / "in.jsonl", mode,
                      {"type": "postgres", "dsn": postgres_dsn, "table": "totals",
                       **PG_SINKS[mode]})
    killed = surestream_run(spec, fault)
    assert killed.returncode == -9, (fault, killed.returncode, killed.stderr[-2000:])
    for _ in range(3):
        done = surestream_run(spec)
        if done.returncode == 0:
            break
    assert done.returncode == 0, done.stderr[-2000:]
    assert pg_table(postgres_dsn) == expected_table(records)
