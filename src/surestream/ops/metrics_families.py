"""A run's telemetry snapshot as Prometheus metric families: the one mapping, pure.

``snapshot_families(snapshot, now_s)`` turns the plain dict the runner publishes
(``runners/local/telemetry``, its docstring gives the shape) into prometheus-client metric
families, at scrape time. Nothing here reads the runner: the same snapshot always gives the
same metrics (``now_s`` only sets ``surestream_seconds_since_last_checkpoint``), so this is
tested from hand-made snapshots, and a snapshot that lacks a part (no Kafka probes, no
watermark yet, no checkpoint yet) gives no series for it rather than a made-up value.

The names and labels are the shared contract of the dashboards and alert rules
(docs/metrics.md lists them); every series has the label ``pipeline``. Four appear twice,
under the hardening plan's Flink-style names too (``FLINK_ALIASES``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    UnknownMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

import surestream

#: the hardening plan's names, exactly as its dashboards and alerts use them, and ours
FLINK_ALIASES = {
    "flink_watermark_lag_ms": "surestream_watermark_lag_ms",
    "flink_late_records_total": "surestream_late_records_total",
    "flink_dedup_duplicates_dropped": "surestream_duplicates_dropped_total",
    "flink_checkpoint_duration_ms": "surestream_checkpoint_duration_seconds (the last one)",
}
#: operator counters that count late records (``late``: sent to a late output or dropped;
#: ``late_flagged``: kept, marked late)
LATE_COUNTERS = ("late", "late_flagged")


class _Families:
    """Families being built, each labelled ``pipeline`` first; empty ones are dropped."""

    def __init__(self, pipeline: str) -> None:
        self.pipeline = pipeline
        self._all: list[Metric] = []

    def _add(self, family: Metric) -> Any:
        self._all.append(family)
        return family

    def counter(self, name: str, doc: str, *labels: str) -> CounterMetricFamily:
        return self._add(CounterMetricFamily(name, doc, labels=["pipeline", *labels]))

    def gauge(self, name: str, doc: str, *labels: str) -> GaugeMetricFamily:
        return self._add(GaugeMetricFamily(name, doc, labels=["pipeline", *labels]))

    def untyped(self, name: str, doc: str, *labels: str) -> UnknownMetricFamily:
        return self._add(UnknownMetricFamily(name, doc, labels=["pipeline", *labels]))

    def histogram(self, name: str, doc: str, *labels: str) -> HistogramMetricFamily:
        return self._add(HistogramMetricFamily(name, doc, labels=["pipeline", *labels]))

    def labels(self, *values: Any) -> list[str]:
        return [self.pipeline, *("" if v is None else str(v) for v in values)]

    def done(self) -> list[Metric]:
        return [f for f in self._all if f.samples]


def add_histogram(family: HistogramMetricFamily, labels: list[str], h: dict[str, Any]
                  ) -> None:
    """One series of ``family`` from a telemetry histogram (per-bucket counts, the last
    one +Inf) -- Prometheus wants cumulative buckets."""
    buckets, running = [], 0
    for bound, count in zip([*h["buckets"], float("inf")], h["counts"], strict=True):
        running += count
        buckets.append((floatToGoString(bound), running))
    family.add_metric(labels, buckets, h["sum"])


def _sum_histograms(histograms: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Several histograms of the same buckets as one (several sinks on one topic)."""
    first = histograms[0]
    counts = [sum(col) for col in zip(*(h["counts"] for h in histograms), strict=True)]
    return {"buckets": first["buckets"], "counts": counts,
            "sum": sum(h["sum"] for h in histograms)}


def snapshot_families(snap: dict[str, Any], now_s: float, pipeline: str = "") -> list[Metric]:
    """Every metric of ``snap`` (a telemetry snapshot; ``{}`` before the first one, which
    gives ``surestream_up 0`` only). ``now_s``: the wall clock, epoch seconds."""
    f = _Families(snap.get("pipeline", pipeline))
    up = f.gauge("surestream_up", "1 while the run is running, 0 once it has ended")
    up.add_metric(f.labels(), 1 if snap.get("state") == "running" else 0)
    if not snap:
        return f.done()
    _run(f, snap)
    _operators(f, snap)
    _watermarks(f, snap)
    _outputs(f, snap)
    _late_and_quality(f, snap)
    _checkpoints(f, snap, now_s)
    _kafka(f, snap)
    return f.done()


def _run(f: _Families, snap: dict[str, Any]) -> None:
    info = f.gauge("surestream_run_info", "the run (always 1): its id, surestream's version, "
                   "its state (running, finished, stopped, failed)",
                   "run_id", "version", "state")
    info.add_metric(f.labels(snap.get("run_id"), surestream.__version__, snap.get("state")), 1)
    f.counter("surestream_records_in_total", "records read from the sources (bad lines included)"
              ).add_metric(f.labels(), snap.get("records_in", 0))
    errors = f.counter("surestream_errors_total", "records sent to the errors outputs, by the "
                       "operator that refused them and the reason", "operator", "error_type")
    for key, n in sorted(snap.get("errors", {}).get("by_reason", {}).items()):
        operator, _, error_type = key.rpartition("|")
        errors.add_metric(f.labels(operator, error_type), n)
    hists = snap.get("histograms", {})
    latency = f.histogram("surestream_e2e_latency_seconds", "end-to-end latency of the "
                          "records an output published, at the commit that published them: "
                          "from their event time, or from when they were read (ingestion)",
                          "from")
    for label, key in (("event_time", "latency_event_time_seconds"),
                       ("ingestion", "latency_ingestion_seconds")):
        if key in hists:
            add_histogram(latency, f.labels(label), hists[key])


def _operators(f: _Families, snap: dict[str, Any]) -> None:
    ops = snap.get("operators", [])
    rin = f.counter("surestream_operator_records_in_total", "records an operator was given",
                    "operator", "stream", "kind")
    rout = f.counter("surestream_operator_records_out_total", "records an operator emitted, by "
                     "output tag (main: passed on down its stream)",
                     "operator", "stream", "kind", "tag")
    late = f.counter("surestream_late_records_total", "records an operator found late (sent to "
                     "a late output, dropped, or flagged)", "operator")
    flink_late = f.counter("flink_late_records_total", "alias of surestream_late_records_total "
                           "(the hardening plan's name)", "operator")
    dups = f.counter("surestream_duplicates_dropped_total", "records a keyed_dedup step dropped "
                     "as duplicates", "operator")
    flink_dups = f.untyped("flink_dedup_duplicates_dropped", "alias of "
                           "surestream_duplicates_dropped_total (the hardening plan's name; "
                           "a monotone count, untyped so it keeps its name)", "operator")
    keys = f.gauge("surestream_state_keys", "keys an operator holds state for", "operator")
    size = f.gauge("surestream_state_bytes", "an estimate of an operator's state in memory "
                   "(arrays and frames exactly, Python entries at a fixed cost)", "operator")
    pending = f.gauge("surestream_window_pending", "windows a window step holds (not yet "
                      "fired, or kept for the allowed lateness)", "operator")
    timers = f.gauge("surestream_state_timers", "timers a process step has registered and "
                     "not yet fired", "operator")
    for op in ops:
        name, stream, kind = op["name"], op.get("stream"), op.get("kind")
        rin.add_metric(f.labels(name, stream, kind), op.get("records_in", 0))
        rout.add_metric(f.labels(name, stream, kind, "main"), op.get("records_out", 0))
        for tag, n in sorted(op.get("emitted", {}).items()):
            rout.add_metric(f.labels(name, stream, kind, tag), n)
        counters = op.get("counters", {})
        if any(c in counters for c in LATE_COUNTERS):
            n = sum(counters.get(c, 0) for c in LATE_COUNTERS)
            late.add_metric(f.labels(name), n)
            flink_late.add_metric(f.labels(name), n)
        if "duplicates" in counters:
            dups.add_metric(f.labels(name), counters["duplicates"])
            flink_dups.add_metric(f.labels(name), counters["duplicates"])
        state = op.get("state") or {}
        for family, key in ((keys, "keys"), (size, "bytes"), (pending, "windows"),
                            (timers, "timers")):
            if key in state:
                family.add_metric(f.labels(name), state[key])
    seconds = f.histogram("surestream_operator_processing_seconds", "time an operator "
                          "spent on one step's batch", "operator")
    for name, h in sorted(snap.get("histograms", {}).get("operator_seconds", {}).items()):
        add_histogram(seconds, f.labels(name), h)


def _watermarks(f: _Families, snap: dict[str, Any]) -> None:
    wm = f.gauge("surestream_watermark_ms", "a watermark step's event-time watermark, epoch "
                 "ms (absent before the first one and after the end of input)", "operator")
    lag = f.gauge("surestream_watermark_lag_ms", "how far (event time, ms) a watermark step's "
                  "watermark trails the newest record it has seen", "operator")
    flink_lag = f.gauge("flink_watermark_lag_ms", "alias of surestream_watermark_lag_ms "
                        "(the hardening plan's name)", "operator")
    for op in snap.get("operators", []):
        if op.get("watermark") is not None:
            wm.add_metric(f.labels(op["name"]), op["watermark"])
        if op.get("watermark_lag_ms") is not None:
            lag.add_metric(f.labels(op["name"]), op["watermark_lag_ms"])
            flink_lag.add_metric(f.labels(op["name"]), op["watermark_lag_ms"])
    pwm = f.gauge("surestream_partition_watermark_ms", "the watermark one input partition "
                  "alone would give (its newest event time minus the out-of-orderness), "
                  "epoch ms", "operator", "source", "partition")
    plag = f.gauge("surestream_partition_watermark_lag_ms", "how far (event time, ms) a "
                   "partition's own watermark trails the newest partition's",
                   "operator", "source", "partition")
    for p in snap.get("partitions", []):
        labels = f.labels(p.get("operator"), p.get("source"), p.get("partition"))
        if p.get("watermark") is not None:
            pwm.add_metric(labels, p["watermark"])
        if p.get("lag_ms") is not None:
            plag.add_metric(labels, p["lag_ms"])


def _late_and_quality(f: _Families, snap: dict[str, Any]) -> None:
    """Late steps' event-time range and data_quality steps' per-rule counts (issue 14)."""
    lo = f.gauge("surestream_late_event_time_min_ms", "the earliest event time (epoch ms) of "
                 "the late records a late step found, over the whole job", "operator")
    hi = f.gauge("surestream_late_event_time_max_ms", "the latest event time (epoch ms) of "
                 "the late records a late step found, over the whole job", "operator")
    checked = f.counter("surestream_dq_records_checked_total", "records a data_quality rule "
                        "checked (those not sent to errors), over the whole job",
                        "operator", "rule")
    failures = f.counter("surestream_dq_failures_total", "records that failed a "
                         "data_quality rule, by its severity and on_failure action",
                         "operator", "rule", "severity", "action")
    for op in snap.get("operators", []):
        late = op.get("late") or {}
        if late.get("min_ms") is not None:
            lo.add_metric(f.labels(op["name"]), late["min_ms"])
        if late.get("max_ms") is not None:
            hi.add_metric(f.labels(op["name"]), late["max_ms"])
        for rule in op.get("quality") or ():
            checked.add_metric(f.labels(op["name"], rule["rule"]), rule["checked"])
            failures.add_metric(f.labels(op["name"], rule["rule"], rule["severity"],
                                         rule["action"]), rule["failed"])


def _outputs(f: _Families, snap: dict[str, Any]) -> None:
    written = f.counter("surestream_output_records_total", "records written to an output, the "
                        "open checkpoint's included", "output", "type")
    committed = f.counter("surestream_output_committed_records_total", "records an output has "
                          "committed (visible to its readers)", "output", "type")
    dlq = f.counter("surestream_dlq_records_total", "records written to an errors output "
                    "(dead-letter queue), the open checkpoint's included", "output")
    alerts = f.counter("surestream_alerts_fired_total", "records written to an output with a "
                       "severity column (alerts), by severity", "output", "severity")
    for o in snap.get("outputs", []):
        tag, kind = o["tag"], o.get("type")
        written.add_metric(f.labels(tag, kind), o.get("written", 0))
        committed.add_metric(f.labels(tag, kind), o.get("committed", 0))
        if o.get("errors_output"):
            dlq.add_metric(f.labels(tag), o.get("written", 0))
        for severity, n in sorted(o.get("by_severity", {}).items()):
            alerts.add_metric(f.labels(tag, severity), n)


def _last_ok(history: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    ok = [cp for cp in history if cp.get("ok")]
    return ok[-1] if ok else None


def _checkpoints(f: _Families, snap: dict[str, Any], now_s: float) -> None:
    cps = snap.get("checkpoints", {})
    f.counter("surestream_checkpoints_total", "checkpoints taken (durable and committed)"
              ).add_metric(f.labels(), cps.get("taken", 0))
    f.counter("surestream_checkpoint_failures_total", "checkpoints that failed"
              ).add_metric(f.labels(), cps.get("failures", 0))
    hist = snap.get("histograms", {}).get("checkpoint_seconds")
    if hist is not None:
        add_histogram(f.histogram("surestream_checkpoint_duration_seconds", "how long a "
                                  "checkpoint took, state written and outputs committed"),
                      f.labels(), hist)
    last = _last_ok(cps.get("history", []))
    size = f.gauge("surestream_checkpoint_size_bytes", "the state of the last checkpoint, "
                   "bytes (chunks it references included)")
    written = f.gauge("surestream_checkpoint_written_bytes", "bytes the last checkpoint "
                      "wrote (new chunks only)")
    flink = f.gauge("flink_checkpoint_duration_ms", "the last checkpoint's duration, ms "
                    "(the hardening plan's name)")
    if last is not None:
        if last.get("bytes_total") is not None:
            size.add_metric(f.labels(), last["bytes_total"])
        if last.get("bytes_written") is not None:
            written.add_metric(f.labels(), last["bytes_written"])
        if last.get("duration_ms") is not None:
            flink.add_metric(f.labels(), last["duration_ms"])
    success_ms = cps.get("last_success_ms")
    if success_ms is not None:
        f.gauge("surestream_checkpoint_last_success_timestamp_seconds", "when the last "
                "checkpoint succeeded, epoch seconds").add_metric(f.labels(), success_ms / 1000)
    since_ms = success_ms if success_ms is not None else snap.get("started_at_ms")
    if since_ms is not None:
        f.gauge("surestream_seconds_since_last_checkpoint", "seconds since the last "
                "checkpoint succeeded (since the run started, before the first one), at "
                "scrape time").add_metric(f.labels(), max(0.0, now_s - since_ms / 1000))


def _kafka(f: _Families, snap: dict[str, Any]) -> None:
    """The Kafka probes' figures, where the snapshot has them (``partitions[i]["kafka"]``,
    ``outputs[j]["sink"]``)."""
    lag = f.gauge("surestream_source_lag_records", "records a source partition has not read "
                  "yet (Kafka: end offset - position)", "source", "partition", "topic",
                  "group")
    consumed: dict[tuple[str, str], int] = {}
    for p in snap.get("partitions", []):
        k = p.get("kafka")
        if not k:
            continue
        if k.get("lag") is not None:
            lag.add_metric(f.labels(p.get("source"), k.get("partition"), k.get("topic"),
                                    k.get("group")), k["lag"])
        key = (str(k.get("topic")), str(k.get("group")))
        consumed[key] = consumed.get(key, 0) + int(k.get("consumed") or 0)
    fam = f.counter("surestream_kafka_consumed_records_total", "records consumed from a topic by "
                    "a consumer group", "topic", "group")
    for (topic, group), n in sorted(consumed.items()):
        fam.add_metric(f.labels(topic, group), n)
    produced: dict[tuple[str, str], int] = {}
    latencies: dict[str, list[dict[str, Any]]] = {}
    for o in snap.get("outputs", []):
        s = o.get("sink")
        if not s or "produced" not in s:
            continue
        topic = str(s.get("topic"))
        for status, key in (("delivered", "produced"), ("failed", "failed")):
            produced[(topic, status)] = produced.get((topic, status), 0) + int(s.get(key) or 0)
        if s.get("latency"):
            latencies.setdefault(topic, []).append(s["latency"])
    fam = f.counter("surestream_kafka_produced_records_total", "records produced to a topic, by "
                    "delivery status (delivered, failed)", "topic", "status")
    for (topic, status), n in sorted(produced.items()):
        fam.add_metric(f.labels(topic, status), n)
    hist = f.histogram("surestream_kafka_producer_latency_seconds", "from produce to "
                       "delivery report, per record", "topic")
    for topic, hs in sorted(latencies.items()):
        add_histogram(hist, f.labels(topic), _sum_histograms(hs))
