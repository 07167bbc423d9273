"""`surestream demo iso` with small options: exit 0, and the figures it reports reconciled
are the truth file's; without ClickHouse it says so and reconciles Iceberg alone."""

from __future__ import annotations

import re
import subprocess
import sys

import orjson


def demo(*args: str):
    return subprocess.run([sys.executable, "-m", "surestream", "demo", "iso", *args],
                          capture_output=True, text=True, timeout=600)


def figures(stdout: str) -> dict[str, tuple[str, int, int]]:
    found = {}
    for line in stdout.splitlines():
        m = re.match(r"\s+(PASS|FAIL)\s+(.+?)\s+expected\s+([\d,]+)\s+got\s+([\d,]+)$", line)
        if m:
            found[m.group(2)] = (m.group(1), int(m.group(3).replace(",", "")),
                                 int(m.group(4).replace(",", "")))
    return found


def test_demo_reconciles_exactly_with_clickhouse(clickhouse_server, tmp_path):
    out = tmp_path / "demo"
    proc = demo("--hours", "2", "--seed", "3", "--out", str(out),
                "--clickhouse", f"{clickhouse_server.host}:{clickhouse_server.port}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    truth = orjson.loads((out / "data" / "truth.json").read_bytes())
    exp = truth["expected"]
    got = figures(proc.stdout)
    assert {status for status, _, _ in got.values()} == {"PASS"}
    assert got["curated rows (Iceberg curated.rt_lmp_5m)"][2] == exp["curated_rows"]
    assert got["quarantined late messages (quarantine.late_iso_lmp)"][2] == exp["late"]
    assert got["re-sent duplicates dropped (dedup_messages)"][2] == exp["duplicates"]
    assert got["keys ending on a correction (event_version > 1)"][2] == exp["corrected_keys"]
    assert got["malformed lines in errors (bad JSON, missing fields, non-numeric "
               "price)"][2] == exp["errors"]
    assert got["ClickHouse rows with FINAL (ReplacingMergeTree)"][2] == exp["curated_rows"]
    assert got["every line in exactly one place (curated + late + duplicate + superseded "
               "+ error)"][2] == truth["lines"]
    assert "surestream tables scan" in proc.stdout and "clickhouse-client" in proc.stdout
    # the next commands work: scan the curated table of the spec the demo left
    scan = subprocess.run([sys.executable, "-m", "surestream", "tables", "scan",
                           str(out / "pipeline.yaml"), "--output", "late_iso_lmp",
                           "--format", "json"], capture_output=True, text=True, timeout=120)
    assert scan.returncode == 0, scan.stderr
    assert len(orjson.loads(scan.stdout)) == exp["late"]


def test_demo_without_clickhouse_says_so_and_reconciles_iceberg(tmp_path):
    # a machine without clickhouse-server: the server's program name found nowhere
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from surestream.cli.main import main; "
         "import surestream.connectors.tables.clickhouse_server as c; "
         "c.SERVER = 'clickhouse-server-not-installed'; "
         f"sys.exit(main(['demo', 'iso', '--hours', '1', '--out', '{tmp_path}']))"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "clickhouse-server is not installed" in proc.stdout
    assert "Iceberg alone" in proc.stdout
    got = figures(proc.stdout)
    assert not any(name.startswith("ClickHouse") for name in got)
    truth = orjson.loads((tmp_path / "data" / "truth.json").read_bytes())
    assert got["curated rows (Iceberg curated.rt_lmp_5m)"] == (
        "PASS", truth["expected"]["curated_rows"], truth["expected"]["curated_rows"])
