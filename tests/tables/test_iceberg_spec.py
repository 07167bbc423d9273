"""Iceberg output keys: what ``validate`` refuses, with the field and what to do."""

from __future__ import annotations

import subprocess
import sys

import yaml


def validate(tmp_path, output: dict) -> subprocess.CompletedProcess:
    spec = {"pipeline": "p", "source": {"type": "file", "path": "in.jsonl"},
            "outputs": {"main": {"type": "iceberg", **output}}}
    (tmp_path / "in.jsonl").write_text("")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return subprocess.run([sys.executable, "-m", "surestream", "validate",
                           str(tmp_path / "spec.yaml")], capture_output=True, text=True)


def test_a_table_name_without_a_namespace_is_refused(tmp_path):
    r = validate(tmp_path, {"table": "prices"})
    assert r.returncode == 2
    assert "outputs.main.table" in r.stderr and "not `namespace.table`" in r.stderr


def test_quarantine_needs_a_quarantine_table_and_audit_needs_wap(tmp_path):
    r = validate(tmp_path, {"table": "a.b", "on_audit_failure": "quarantine"})
    assert r.returncode == 2 and "needs quarantine_table" in r.stderr
    r = validate(tmp_path, {"table": "a.b", "write_audit_publish": False,
                            "audit": {"not_null": ["x"]}})
    assert r.returncode == 2 and "audit needs write_audit_publish: true" in r.stderr


def test_a_full_iceberg_output_is_valid(tmp_path):
    r = validate(tmp_path, {"table": "curated.rt_lmp_5m",
                            "catalog": {"uri": "sqlite:///wh/catalog.db", "warehouse": "wh"},
                            "partition_by": ["day(ts)", "iso"], "sort_by": ["iso"],
                            "audit": {"unique": ["iso", "ts"], "ranges": {"lmp": {"min": 0}}},
                            "on_audit_failure": "quarantine",
                            "quarantine_table": "quarantine.rt_lmp_5m"})
    assert r.returncode == 0, r.stderr
