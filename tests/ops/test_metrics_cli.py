"""``surestream run --metrics-file`` / ``--metrics-port`` / ``--metrics-host`` as a user runs
them: the file a bounded run leaves, checked against the input and the run's summary (and
by ``promtool``); the trading alerts job's alerts by severity; where the endpoint listens.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from metrics_scrape import build_input, lines_in, parse, pipeline_doc, value

import surestream
from surestream.cli.main import build_parser
from surestream.cli.run_ops import operations, read_endpoints
from surestream.connectors.file_sinks import read_parquet_dataset
from surestream.model.loader import build_spec
from surestream.ops.logs import LOGGER
from surestream.runners.local.runner import LocalRunner

#: promtool's lint finds the contract's millisecond names (HELPERS.md: dashboards and alert
#: rules use exactly these, the hardening plan's flink_* among them) "abbreviated units";
#: any other problem is ours to fix
CONTRACT_MS_NAMES = {"flink_watermark_lag_ms", "flink_checkpoint_duration_ms",
                     "surestream_watermark_ms", "surestream_watermark_lag_ms",
                     "surestream_partition_watermark_ms", "surestream_partition_watermark_lag_ms",
                     # issue 14's late-data range (its brief names them so)
                     "surestream_late_event_time_min_ms", "surestream_late_event_time_max_ms"}


def surestream_run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(surestream.__file__).parents[1])}
    return subprocess.run([sys.executable, "-m", "surestream", "run", *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=120)


def promtool_problems(text: str) -> list[str]:
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
    lines = (check.stdout + check.stderr).splitlines()
    problems = [line for line in lines if line.strip()]
    assert check.returncode in (0, 3), (check.returncode, problems)  # 3: lint problems
    assert (check.returncode == 3) == bool(problems)
    return problems


def test_metrics_file_of_a_bounded_run_holds_the_runs_counts(tmp_path):
    inp = build_input(tmp_path / "in")
    out = tmp_path / "out"
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(json.dumps(pipeline_doc(inp, out)))
    metrics_file = tmp_path / "metrics" / "run.prom"
    done = surestream_run(str(spec), "--metrics-file", str(metrics_file),
                          "--summary", str(tmp_path / "summary.json"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    text = metrics_file.read_text()
    m = parse(text)
    assert value(m, "surestream_up", pipeline="metrics-trades") == 0
    assert value(m, "surestream_run_info", state="finished") == 1
    assert value(m, "surestream_records_in_total") == len(inp.lines) == summary["records_in"]
    assert value(m, "flink_late_records_total", operator="late_trades") == inp.late == \
        lines_in(out / "late.jsonl")
    assert value(m, "flink_dedup_duplicates_dropped", operator="dedup_id") == \
        inp.duplicates == summary["counters"]["duplicates"]
    assert value(m, "surestream_checkpoints_total") == summary["checkpoints"] > 1
    assert value(m, "surestream_errors_total", error_type="deserialization_error") == \
        inp.bad_lines
    for tag, name in (("main", "windows.jsonl"), ("late", "late.jsonl"),
                      ("errors", "errors.jsonl")):
        assert value(m, "surestream_output_committed_records_total", output=tag) == \
            lines_in(out / name) == summary["written"][tag]
    # replaced atomically at each write: no temporary file left beside it
    assert [p.name for p in metrics_file.parent.iterdir()] == ["run.prom"]
    problems = promtool_problems(text)
    flagged = {line.split()[0] for line in problems}
    assert flagged <= CONTRACT_MS_NAMES, problems
    assert all("abbreviated units" in line for line in problems), problems


SPECS = Path(surestream.__file__).parent / "examples" / "trading"
T0 = 1_767_225_600_000


def price(symbol: str, at_s: int, value: float) -> dict:
    return {"trade_id": f"{symbol}-{at_s}", "symbol": symbol, "side": "BUY", "quantity": 1,
            "price": value, "status": "FILLED", "timestamp_ms": T0 + at_s * 1000}


def test_alerts_fired_by_severity_in_the_trading_alerts_job(tmp_path):
    """The alerts job (examples/trading/alerts.yaml): moves of 3, 6 and 12 % from each
    symbol's first price give MEDIUM, HIGH and CRITICAL alerts."""
    moves = {"M1": 103.0, "M2": 97.0, "M3": 102.5, "H1": 106.0, "H2": 94.0, "C1": 112.0}
    prices = [price(s, 0, 100.0) for s in moves] + [price(s, 10, p) for s, p in moves.items()]
    prices.append(price("LATE", -120, 100.0))  # far behind the watermark: quarantined
    source = tmp_path / "prices.jsonl"
    source.write_text("".join(json.dumps(p) + "\n" for p in prices) + "not json\n")
    metrics_file = tmp_path / "alerts.prom"
    done = surestream_run(str(SPECS / "alerts.yaml"), "--base-dir", str(tmp_path),
                          "--set", f"source.path={source}", "--metrics-file",
                          str(metrics_file), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    alerts = read_parquet_dataset(tmp_path / "warehouse" / "price_alerts").to_dicts()
    by_severity = Counter(a["severity"] for a in alerts)
    assert by_severity == {"MEDIUM": 3, "HIGH": 2, "CRITICAL": 1}
    m = parse(metrics_file.read_text())
    for severity, n in by_severity.items():
        assert value(m, "surestream_alerts_fired_total", output="main",
                     severity=severity, pipeline="trading-alerts") == n
    assert value(m, "surestream_late_records_total", operator="quarantine_late_prices") == 1
    assert value(m, "surestream_dlq_records_total", output="dlq.deserialization") == 1 == \
        lines_in(tmp_path / "warehouse" / "alerts_dlq_deserialization.jsonl")


def listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(5)
        return s.connect_ex((host, port)) == 0


@pytest.fixture
def surestream_logger():
    """``operations`` configures the ``surestream`` logger as ``surestream run`` would
    (its own handler, no propagation): put it back for the tests after this one."""
    logger = logging.getLogger(LOGGER)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_metrics_endpoint_listens_on_loopback_only_unless_told(tmp_path, surestream_logger):
    """Linux routes all of 127.0.0.0/8 to the loopback interface: a server bound to
    127.0.0.1 alone refuses 127.0.0.2, one bound to every address accepts it."""
    inp = build_input(tmp_path / "in", n=10)
    doc = pipeline_doc(inp, tmp_path / "out")
    spec_file = tmp_path / "pipeline.yaml"
    spec_file.write_text(json.dumps(doc))
    parser = build_parser()
    runner = LocalRunner(build_spec(doc))
    args = parser.parse_args(["run", str(spec_file), "--metrics-port", "0"])
    with operations(args, runner) as endpoints:
        url = endpoints["metrics"]
        host, port = re.fullmatch(r"http://([\d.]+):(\d+)/metrics", url).groups()
        assert host == "127.0.0.1"
        assert read_endpoints(runner.store.dir)["metrics"] == url  # for `surestream status`
        with urllib.request.urlopen(url, timeout=10) as response:
            assert value(parse(response.read().decode()), "surestream_up") == 0  # not started
        assert not listening("127.0.0.2", int(port))
    assert read_endpoints(runner.store.dir) is None
    assert not listening("127.0.0.1", int(port))  # shut down with the run
    args = parser.parse_args(["run", str(spec_file), "--metrics-port", "0",
                              "--metrics-host", "0.0.0.0"])
    with operations(args, LocalRunner(build_spec(doc))) as endpoints:
        port = int(endpoints["metrics"].rsplit(":", 1)[1].split("/")[0])
        assert listening("127.0.0.2", port)


def test_a_port_in_use_stops_the_run_before_it_starts(tmp_path):
    inp = build_input(tmp_path / "in", n=10)
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(json.dumps(pipeline_doc(inp, tmp_path / "out")))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = surestream_run(str(spec), "--metrics-port", str(port), cwd=tmp_path)
    assert done.returncode == 2
    assert "cannot start the operations endpoints" in done.stderr
    assert not (tmp_path / "out" / "windows.jsonl").exists()  # nothing ran
