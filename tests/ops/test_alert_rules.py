"""The Prometheus alert rules and the Grafana dashboard are checked (issue 12, item 2).

The rules (monitoring/prometheus/surestream-alerts.yml) must load in Prometheus
(``promtool check rules``) and pass their unit tests (``promtool test rules``: input series,
the alerts they must and must not raise, with exact labels and annotations). Those unit tests
must pin each alert: a threshold or a ``for:`` moved a little makes them fail. Rules and
dashboard may use only the metric names and labels the pipeline exposes, and the dashboard
(monitoring/grafana/surestream-dashboard.json) must have the panels the issue names, each
querying a metric that exists, through the dashboard's data-source variable.

promtool comes with Debian's prometheus package, which scripts/test-deps.sh installs: without
it these tests fail (they are never skipped).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "monitoring" / "prometheus" / "surestream-alerts.yml"
RULE_TESTS = REPO / "monitoring" / "prometheus" / "surestream-alerts.test.yml"
DASHBOARD = REPO / "monitoring" / "grafana" / "surestream-dashboard.json"
METRICS_DOC = REPO / "docs" / "metrics.md"

SEVERITIES = {"page", "investigate", "ticket"}

# The agreed metrics: name -> (type, labels besides ``pipeline``), exactly as HELPERS.md
# ("Operations (issue 12) -- the shared contract") and docs/metrics.md list them.
# This is the one list the rules and the dashboard are checked against; the last test of
# this file holds it to what the collector (surestream.ops.metrics_families) emits.
AGREED_METRICS: dict[str, tuple[str, frozenset[str]]] = {
    name: (kind, frozenset(labels.split()))
    for name, kind, labels in [
        ("surestream_records_in_total", "counter", ""),
        ("surestream_operator_records_in_total", "counter", "operator stream kind"),
        ("surestream_operator_records_out_total", "counter", "operator stream kind tag"),
        ("surestream_operator_processing_seconds", "histogram", "operator"),
        ("surestream_output_records_total", "counter", "output type"),
        ("surestream_output_committed_records_total", "counter", "output type"),
        ("surestream_watermark_ms", "gauge", "operator"),
        ("surestream_watermark_lag_ms", "gauge", "operator"),
        ("surestream_partition_watermark_ms", "gauge", "operator source partition"),
        ("surestream_partition_watermark_lag_ms", "gauge", "operator source partition"),
        ("surestream_late_records_total", "counter", "operator"),
        ("surestream_duplicates_dropped_total", "counter", "operator"),
        ("surestream_errors_total", "counter", "operator error_type"),
        ("surestream_dlq_records_total", "counter", "output"),
        ("surestream_state_keys", "gauge", "operator"),
        ("surestream_state_bytes", "gauge", "operator"),
        ("surestream_window_pending", "gauge", "operator"),
        ("surestream_checkpoint_duration_seconds", "histogram", ""),
        ("surestream_checkpoints_total", "counter", ""),
        ("surestream_checkpoint_failures_total", "counter", ""),
        ("surestream_checkpoint_size_bytes", "gauge", ""),
        ("surestream_checkpoint_written_bytes", "gauge", ""),
        ("surestream_checkpoint_last_success_timestamp_seconds", "gauge", ""),
        ("surestream_seconds_since_last_checkpoint", "gauge", ""),
        ("surestream_source_lag_records", "gauge", "source partition topic group"),
        ("surestream_e2e_latency_seconds", "histogram", "from"),
        ("surestream_alerts_fired_total", "counter", "output severity"),
        ("surestream_kafka_consumed_records_total", "counter", "topic group"),
        ("surestream_kafka_produced_records_total", "counter", "topic status"),
        ("surestream_kafka_producer_latency_seconds", "histogram", "topic"),
        ("surestream_run_info", "gauge", "run_id version state"),
        ("surestream_up", "gauge", ""),
        # the hardening plan's names, beside ours
        ("flink_watermark_lag_ms", "gauge", "operator"),
        ("flink_late_records_total", "counter", "operator"),
        # monotone, exposed untyped so that the name has no _total: read it like a counter
        ("flink_dedup_duplicates_dropped", "counter", "operator"),
        ("flink_checkpoint_duration_ms", "gauge", ""),
    ]
}
#: labels every scraped series has besides the metric's own
COMMON_LABELS = frozenset({"pipeline", "job", "instance"})
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def agreed_metrics() -> dict[str, tuple[str, frozenset[str]]]:
    return AGREED_METRICS


# -- promtool -------------------------------------------------------------------------------
def promtool_path() -> str:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool is not installed: run scripts/test-deps.sh (it installs "
                    "Debian's prometheus package, which has promtool)", pytrace=False)
    return exe


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([promtool_path(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def output_of(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


# -- reading PromQL -------------------------------------------------------------------------
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_COMMENT = re.compile(r"#[^\n]*")
_MATCHERS = re.compile(r"\{([^{}]*)\}")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()")
_COUNTER_READ = re.compile(r"\b(?:rate|irate|increase)\s*\(\s*([a-zA-Z_:][\w:]*)")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
             "unless", "bool", "offset", "atan2", "inf", "nan"}


def read_promql(expr: str) -> tuple[set[str], set[str], set[str]]:
    """(metric names, label names, labels grouped ``by``) of a PromQL expression.

    Not a parser: enough of PromQL's lexical rules for expressions written by people
    (strings, comments, label matchers, ranges and grouping clauses are taken out, and what remains
    that is a name and not a function call or a keyword is a metric). Grafana's ``$vars``
    only occur in matchers and ranges."""
    text = _COMMENT.sub(" ", _STRING.sub('""', expr))
    labels: set[str] = set()
    grouped: set[str] = set()
    for matchers in _MATCHERS.findall(text):
        labels.update(_MATCHER_LABEL.findall(matchers))
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    for keyword, names in _GROUPING.findall(text):
        found = {n.strip() for n in names.split(",") if n.strip()}
        labels |= found
        if keyword == "by":
            grouped |= found
    text = _GROUPING.sub(" ", text)
    metrics = {m for m in _IDENTIFIER.findall(text) if m.lower() not in _KEYWORDS}
    return metrics, labels, grouped


def base_metric(name: str) -> str:
    """The agreed name a series name belongs to (a histogram's _bucket/_sum/_count)."""
    agreed = agreed_metrics()
    for suffix in HISTOGRAM_SERIES:
        base = name.removesuffix(suffix)
        if base != name and agreed.get(base, ("",))[0] == "histogram":
            return base
    return name


def problems_with(expr: str, recorded: dict[str, frozenset[str]]) -> list[str]:
    """What in ``expr`` is not in the agreed list: unknown metrics (recorded ones must be
    defined by the rules), labels none of its metrics have, rate()/increase() of a gauge,
    a histogram read without its _bucket/_sum/_count series."""
    agreed = agreed_metrics()
    metrics, labels, _ = read_promql(expr)
    problems, known_labels = [], set(COMMON_LABELS)
    for name in metrics:
        if name in recorded:
            known_labels |= recorded[name]
            continue
        base = base_metric(name)
        if base not in agreed:
            problems.append(f"unknown metric {name}")
            continue
        kind, own = agreed[base]
        known_labels |= own
        if kind == "histogram" and base == name:
            problems.append(f"{name} is a histogram: read {name}_bucket, _sum or _count")
        if name.endswith("_bucket"):
            known_labels.add("le")
    for name in _COUNTER_READ.findall(_STRING.sub('""', expr)):
        base = base_metric(name)
        if name in recorded or (base == name and agreed.get(name, ("",))[0] != "counter"):
            problems.append(f"rate/increase of {name}, which is not a counter")
    problems += [f"label {label} is on none of its metrics {sorted(metrics)}"
                 for label in sorted(labels - known_labels)]
    return problems


def test_reading_promql_finds_metrics_labels_and_grouping():
    metrics, labels, grouped = read_promql(
        'histogram_quantile(0.99, sum by (le, pipeline) (rate(surestream_e2e_latency_seconds'
        '_bucket{pipeline=~"$pipeline", from="event_time"}[$__rate_interval]))) > 1e3 '
        "and on (pipeline) (surestream_up offset 10m == 1)  # the pipeline's up\n"
        "unless pipeline:x:rate5m")
    assert metrics == {"surestream_e2e_latency_seconds_bucket", "surestream_up",
                       "pipeline:x:rate5m"}
    assert labels == {"le", "pipeline", "from"}
    assert grouped == {"le", "pipeline"}
    assert problems_with("rate(surestream_up[5m])", {}) == [
        "rate/increase of surestream_up, which is not a counter"]
    assert problems_with("sum by (partiton) (surestream_source_lag_records)", {}) == [
        "label partiton is on none of its metrics ['surestream_source_lag_records']"]
    assert problems_with("surestream_e2e_latency_seconds", {}) == [
        "surestream_e2e_latency_seconds is a histogram: read "
        "surestream_e2e_latency_seconds_bucket, _sum or _count"]
    assert problems_with("flink_watermark_lag_seconds", {}) == [
        "unknown metric flink_watermark_lag_seconds"]


# -- the rules ------------------------------------------------------------------------------
def rule_groups() -> list[dict]:
    return yaml.safe_load(RULES.read_text())["groups"]


def alerts() -> dict[str, dict]:
    return {r["alert"]: r for g in rule_groups() for r in g["rules"] if "alert" in r}


def recorded() -> dict[str, frozenset[str]]:
    """Recording rules: name -> the labels their result keeps (their ``by``)."""
    return {r["record"]: frozenset(read_promql(r["expr"])[2])
            for g in rule_groups() for r in g["rules"] if "record" in r}


def test_promtool_accepts_the_rules():
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, output_of(result)
    assert "SUCCESS" in result.stdout, output_of(result)


def test_the_rules_unit_tests_pass():
    result = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, output_of(result)
    assert "SUCCESS" in result.stdout, output_of(result)


def test_the_issue_asks_for_these_alerts_with_these_severities():
    """The seeds (watermark lag > 15 min pages, late > 1000/min is investigated, checkpoint
    failures page) and the issue's additions (error rate, throughput drop, stalled source),
    on the hardening plan's metric names where it has one."""
    found = alerts()
    severity = {name: rule["labels"]["severity"] for name, rule in found.items()}
    assert severity == {
        "SurestreamWatermarkLagHigh": "page",
        "SurestreamLateRecordsHigh": "investigate",
        "SurestreamCheckpointFailing": "page",
        "SurestreamCheckpointsStale": "page",
        "SurestreamErrorRateHigh": "investigate",
        "SurestreamThroughputDrop": "investigate",
        "SurestreamSourceStalled": "page",
        "SurestreamNoInput": "ticket",
    }
    records = {r["record"]: r["expr"] for g in rule_groups() for r in g["rules"]
               if "record" in r}

    def metrics_of(name: str) -> set[str]:
        names = read_promql(found[name]["expr"])[0]
        return names | {m for n in names & records.keys() for m in read_promql(records[n])[0]}

    assert "flink_watermark_lag_ms" in metrics_of("SurestreamWatermarkLagHigh")
    assert "flink_late_records_total" in metrics_of("SurestreamLateRecordsHigh")
    assert "surestream_checkpoint_failures_total" in metrics_of("SurestreamCheckpointFailing")
    assert "surestream_source_lag_records" in metrics_of("SurestreamSourceStalled")


def test_every_alert_has_a_for_a_severity_and_its_annotations():
    doc = METRICS_DOC.read_text()
    headings = {line.lstrip("#").strip() for line in doc.splitlines() if line.startswith("#")}
    for name, rule in alerts().items():
        assert re.fullmatch(r"\d+m", str(rule.get("for", ""))), f"{name}: no for:"
        assert set(rule["labels"]) == {"severity"}, name
        assert rule["labels"]["severity"] in SEVERITIES, name
        notes = rule["annotations"]
        assert set(notes) == {"summary", "description", "runbook"}, name
        assert "{{ $labels.pipeline }}" in notes["summary"], name
        assert "{{ $labels.pipeline }}" in notes["description"], name
        # the runbook line ends at this alert's section of docs/metrics.md
        assert notes["runbook"].endswith(f"docs/metrics.md#{name.lower()}"), name
        assert name in headings, f"docs/metrics.md has no section {name}"


def test_every_alert_is_unit_tested_firing_and_quiet():
    """For each alert, the unit tests hold a time where it must fire (with its severity) and
    a time where it must not."""
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    found = alerts()
    assert {c["alertname"] for c in cases} == set(found)
    for name, rule in found.items():
        mine = [c for c in cases if c["alertname"] == name]
        firing = [a for c in mine for a in c.get("exp_alerts") or []]
        assert firing, f"{name}: no test where it fires"
        assert any(not c.get("exp_alerts") for c in mine), f"{name}: no test where it is quiet"
        for alert in firing:
            assert alert["exp_labels"]["severity"] == rule["labels"]["severity"], name
            assert set(alert["exp_annotations"]) == set(rule["annotations"]), name


#: small changes to each alert's expression that its unit tests must notice:
#: (alert, text in its expr, replacement)
MUTATIONS = [
    ("SurestreamWatermarkLagHigh", "> 900", "> 901"),
    ("SurestreamWatermarkLagHigh", "> 900", "> 899"),
    ("SurestreamLateRecordsHigh", "> 1000", "> 1015"),
    ("SurestreamLateRecordsHigh", "> 1000", "> 985"),
    ("SurestreamCheckpointFailing", "[10m])) > 0", "[10m])) > 1"),
    ("SurestreamCheckpointFailing", "[10m]", "[9m]"),
    ("SurestreamCheckpointFailing", "offset 10m", "offset 5m"),
    ("SurestreamCheckpointsStale", "> 900", "> 960"),
    ("SurestreamCheckpointsStale", "> 900", "> 840"),
    ("SurestreamErrorRateHigh", "> 0.01", "> 0.011"),
    ("SurestreamErrorRateHigh", "> 0.01", "> 0.0089"),
    ("SurestreamThroughputDrop", "< 0.5 *", "< 0.45 *"),
    ("SurestreamThroughputDrop", "< 0.5 *", "< 0.55 *"),
    ("SurestreamThroughputDrop", "rate1h > 1)", "rate1h > 0.4)"),
    ("SurestreamThroughputDrop", "<= 60 *", "<= 55 *"),
    ("SurestreamThroughputDrop", "<= 60 *", "<= 66 *"),
    ("SurestreamSourceStalled", "lag_records - 1, 0)", "lag_records - 0, 0)"),
    ("SurestreamNoInput", "sum > 0", "sum > 1"),
]


def mutants() -> list[tuple[str, str, str]]:
    """MUTATIONS, and each alert's ``for:`` one minute shorter and one minute longer."""
    found = alerts()
    result = []
    for name, old, new in MUTATIONS:
        assert found[name]["expr"].count(old) == 1, f"{name}: {old!r} is not once in its expr"
        result.append((name, old, new))
    for name, rule in found.items():
        minutes = int(str(rule["for"]).removesuffix("m"))
        result += [(name, f"for: {minutes}m", f"for: {m}m")
                   for m in (minutes - 1, minutes + 1) if m >= 0]
    return result


def test_the_unit_tests_notice_a_moved_threshold_or_for(tmp_path):
    """Each mutant runs against its alert's unit tests, which must fail; unchanged, they
    pass. A mutant folder holds the recording rules and that one alert, and the tests of
    that alert; one promtool run takes all the folders."""
    rules = yaml.safe_load(RULES.read_text())
    tests = yaml.safe_load(RULE_TESTS.read_text())
    cases = [(name, None, None) for name in alerts()] + mutants()
    files = []
    for i, (name, old, new) in enumerate(cases):
        mutant = json.loads(json.dumps(rules))
        for group in mutant["groups"]:
            group["rules"] = [r for r in group["rules"]
                              if "record" in r or r.get("alert") == name]
        rule = next(r for g in mutant["groups"] for r in g["rules"] if r.get("alert") == name)
        if old is None:
            pass
        elif old.startswith("for: "):
            rule["for"] = new.removeprefix("for: ")
        else:
            rule["expr"] = rule["expr"].replace(old, new)
        folder = tmp_path / f"case{i}"
        folder.mkdir()
        (folder / RULES.name).write_text(yaml.safe_dump(mutant, sort_keys=False))
        own = [t for t in tests["tests"]
               if any(c["alertname"] == name for c in t.get("alert_rule_test", []))]
        (folder / RULE_TESTS.name).write_text(yaml.safe_dump({**tests, "tests": own}))
        files.append(f"{folder.name}/{RULE_TESTS.name}")
    # one stream, so that each FAILED (on stderr) stays under its file's heading (stdout)
    run = subprocess.run([promtool_path(), "test", "rules", *files], cwd=tmp_path, timeout=120,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    blocks = {}
    for block in run.stdout.split("Unit Testing:")[1:]:
        file, _, report = block.strip().partition("\n")
        blocks[file.strip()] = report
    assert sorted(blocks) == sorted(files), run.stdout[-3000:]
    passed = {f for f, report in blocks.items()
              if "SUCCESS" in report and "FAILED" not in report}
    broken = [f"{c[0]} unchanged: {blocks[f][-1500:]}" for c, f in zip(cases, files, strict=True)
              if c[1] is None and f not in passed]
    assert broken == [], "an alert's own unit tests fail on the unchanged rules"
    unnoticed = [f"{name}: {old!r} -> {new!r}" for (name, old, new), f in
                 zip(cases, files, strict=True)
                 if old is not None and f in passed]
    assert unnoticed == [], "the unit tests pass with these changes to the rules"


def test_the_rules_use_only_agreed_metrics_and_labels():
    records = recorded()
    problems = [f"{r.get('alert') or r.get('record')}: {p}"
                for g in rule_groups() for r in g["rules"]
                for p in problems_with(r["expr"], records)]
    assert problems == []


# -- the dashboard --------------------------------------------------------------------------
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict]:
    """Every panel, rows' collapsed panels included (rows themselves excluded)."""
    found = []
    for panel in dashboard()["panels"]:
        found += panel.get("panels", [])
        if panel["type"] != "row":
            found.append(panel)
    return found


def exprs_of(panel: dict) -> list[str]:
    return [t["expr"] for t in panel.get("targets", []) if t.get("expr")]


def test_the_dashboard_has_a_data_source_and_a_pipeline_variable():
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    pipeline = variables["pipeline"]
    assert pipeline["type"] == "query"
    assert pipeline["datasource"]["uid"] == "${datasource}"
    query = pipeline["query"]
    query = query["query"] if isinstance(query, dict) else query
    assert query == "label_values(surestream_up, pipeline)"


def test_every_panel_queries_a_known_metric_through_the_variables():
    agreed = agreed_metrics()
    assert panels()
    for panel in panels():
        title = panel["title"]
        exprs = exprs_of(panel)
        assert exprs, f"panel {title!r} has no query"
        named = set().union(*(read_promql(e)[0] for e in exprs))
        assert {base_metric(n) for n in named} & agreed.keys(), title
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", title
            assert 'pipeline=~"$pipeline"' in target["expr"], title
    ids = [p["id"] for p in dashboard()["panels"]]
    ids += [p["id"] for row in dashboard()["panels"] for p in row.get("panels", [])]
    assert len(ids) == len(set(ids)), "panel ids repeat"


def test_the_dashboard_uses_only_agreed_metrics_and_labels():
    problems = []
    for panel in panels():
        for target in panel["targets"]:
            expr = target["expr"]
            problems += [f"{panel['title']!r}: {p}" for p in problems_with(expr, {})]
            # the legend names only labels the query's result keeps
            legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
            kept = read_promql(expr)[2]
            problems += [f"{panel['title']!r}: legend label {x} is not in by ({sorted(kept)})"
                         for x in sorted(legend - kept)]
    assert problems == []


#: the panels the issue names: a word of the title -> metrics the panel must query
REQUIRED_PANELS = {
    "throughput": {"surestream_records_in_total", "surestream_output_records_total"},
    "latency": {"surestream_e2e_latency_seconds"},
    "watermark lag": {"flink_watermark_lag_ms"},
    "watermark lag per partition": {"surestream_partition_watermark_lag_ms"},
    "late": {"flink_late_records_total"},
    "duplicates": {"surestream_duplicates_dropped_total"},
    "errors": {"surestream_errors_total"},
    "checkpoint duration": {"surestream_checkpoint_duration_seconds"},
    "checkpoints and failures": {"surestream_checkpoint_failures_total"},
    "since last checkpoint": {"surestream_seconds_since_last_checkpoint"},
    "checkpoint size": {"surestream_checkpoint_size_bytes"},
    "state size": {"surestream_state_keys", "surestream_state_bytes"},
    "pending windows": {"surestream_window_pending"},
    "source lag": {"surestream_source_lag_records"},
    "kafka consumed": {"surestream_kafka_consumed_records_total"},
    "kafka produced": {"surestream_kafka_produced_records_total"},
    "alerts fired by severity": {"surestream_alerts_fired_total"},
}


def test_the_dashboard_has_the_panels_the_issue_names():
    queried: dict[str, set[str]] = {}
    for panel in panels():
        names = set().union(*(read_promql(e)[0] for e in exprs_of(panel)))
        queried[panel["title"].lower()] = {base_metric(n) for n in names}
    missing = []
    for word, metrics in REQUIRED_PANELS.items():
        together = set().union(*(m for title, m in queried.items() if word in title))
        if not metrics <= together:
            missing.append(f"{word}: {sorted(metrics - together)}")
    assert missing == [], f"panels missing (title word: metrics not queried): {missing}"


def test_the_dashboard_queries_are_valid_promql(tmp_path):
    """promtool parses every query (as a recording rule; Grafana's variables replaced by
    values they take)."""
    values = {"$__rate_interval": "5m", "$__range": "1h", "$pipeline": ".*"}
    rules = []
    for i, expr in enumerate(e for p in panels() for e in exprs_of(p)):
        for var, value in values.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard_query_{i}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, output_of(result)


# -- the agreed list is what the collector emits ------------------------------------------
def test_the_collector_emits_every_agreed_metric_with_its_type_and_labels():
    """The rules and the dashboard are checked against AGREED_METRICS; this holds that list
    to the real collector (``ops/metrics_families``): a snapshot with every part present
    (Kafka probes, a window step's state, alerts by severity) yields each agreed metric
    under its name, type and labels -- so a renamed metric fails here, not on call."""
    from test_metrics_families import snapshot, with_kafka

    from surestream.ops.metrics_families import snapshot_families

    snap = with_kafka(snapshot())
    snap["operators"].append(
        {"name": "win", "stream": "main", "kind": "window", "records_in": 489,
         "records_out": 10, "emitted": {}, "seconds": 0.1, "records_per_s": 1.0,
         "counters": {"late": 0}, "state": {"keys": 5, "windows": 7, "bytes": 800}})
    snap["outputs"][0]["by_severity"] = {"high": 3, "low": 4}
    emitted: dict[str, tuple[str, frozenset[str]]] = {}
    for family in snapshot_families(snap, now_s=1_060.0):
        labels = frozenset(k for s in family.samples for k in s.labels) - COMMON_LABELS
        labels -= {"le"}
        kind = {"unknown": "counter"}.get(family.type, family.type)  # flink_dedup_...
        name = family.name + ("_total" if family.type == "counter" else "")
        emitted[name] = (kind, labels)
    missing = sorted(set(AGREED_METRICS) - set(emitted))
    assert not missing, f"agreed metrics the collector does not emit: {missing}"
    differ = {n: (AGREED_METRICS[n], emitted[n]) for n in AGREED_METRICS
              if AGREED_METRICS[n] != emitted[n]}
    assert not differ, f"(agreed, emitted) type and labels differ: {differ}"
