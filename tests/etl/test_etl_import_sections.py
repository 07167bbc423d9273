"""The ETL framework's configuration, section by section: each translation is compared
with the spec fragment written out by hand from docs/etl.md's mapping table, and
every refusal names the JSON path of the field and the reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from surestream.apps.etl import EtlConfigError, translate_etl_config
from surestream.apps.etl.durations import TriggerMode, parse_duration_ms, parse_trigger_mode

KAFKA = {"type": "kafka", "topic": "user-events", "bootstrapServers": "broker:9092"}
FILE_SINK = {"type": "file", "path": "out/results.jsonl"}
WINDOW = {"type": "aggregation",
          "parameters": {"windowDuration": "10 minutes", "groupByColumns": ["user_id"],
                         "aggregations": "page_views:count,clicks:sum",
                         "windowColumn": "event_time"}}
WATERMARK = {"eventTimeColumn": "event_time", "delayThreshold": "15 minutes"}


def doc(streaming: dict[str, Any] | None = None, *, as_string: bool = True,
        **top: Any) -> dict[str, Any]:
    """A pipeline document: Kafka in, a file out, the streaming config as a JSON string
    (as the framework stores it) unless ``as_string`` is false."""
    out: dict[str, Any] = {"pipelineId": "p1", "mode": "streaming", "source": KAFKA,
                           "sink": FILE_SINK, "transforms": []}
    out |= top
    if streaming is not None:
        out["streamingConfigJson"] = json.dumps(streaming) if as_string else streaming
    return out


def refusals(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(EtlConfigError) as info:
        translate_etl_config(document)
    return dict(info.value.problems)


# -- durations and trigger modes ---------------------------------------------------------
@pytest.mark.parametrize("text, ms", [
    ("15 minutes", 900_000), ("30 seconds", 30_000), ("1 hour 30 minutes", 5_400_000),
    ("interval 2 hours", 7_200_000), ("500 milliseconds", 500), ("10s", 10_000),
    ("1 day", 86_400_000), ("1 minute", 60_000), (2500, 2500), ("2500", 2500)])
def test_durations_as_the_framework_writes_them(text, ms):
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text, says", [
    ("3 months", "no fixed length"), ("fortnight", "not a duration"),
    ("0 seconds", "more than zero"), ("5 parsecs", "unknown unit"), (True, "not a duration")])
def test_durations_that_mean_nothing_in_milliseconds_are_refused(text, says):
    with pytest.raises(ValueError, match=says):
        parse_duration_ms(text)


@pytest.mark.parametrize("text, mode", [
    ("processingtime=30 seconds", TriggerMode("processing_time", 30_000)),
    ("ProcessingTime = 5 seconds", TriggerMode("processing_time", 5_000)),
    ("processingtime:1 minute", TriggerMode("processing_time", 60_000)),
    ("once", TriggerMode("once")), ("AvailableNow", TriggerMode("available_now")),
    ("continuous", TriggerMode("continuous")),
    ("continuous=2 seconds", TriggerMode("continuous", 2_000))])
def test_trigger_modes(text, mode):
    assert parse_trigger_mode(text) == mode


def test_trigger_translations_with_their_checkpoint_intervals():
    def trig(streaming: dict[str, Any], source: dict[str, Any] = KAFKA) -> tuple:
        spec = translate_etl_config(doc(streaming, source=source))
        return spec.get("trigger"), spec.get("checkpoint")

    files = {"type": "file", "path": "in/*.jsonl"}
    assert trig({"triggerMode": "processingtime=30 seconds"}) == (
        {"processing_time": 30_000}, {"interval_ms": 30_000})
    assert trig({"triggerMode": "processingtime=30 seconds",
                 "maxRecordsPerTrigger": 500}) == (
        {"processing_time": 30_000, "max_records_per_trigger": 500}, {"interval_ms": 30_000})
    assert trig({"triggerMode": "once"}) == ("once", None)
    assert trig({"triggerMode": "availablenow"}) == ("available_now", None)
    assert trig({"triggerMode": "availablenow", "maxFilesPerTrigger": 2}, files) == (
        {"available_now": True, "max_files_per_trigger": 2}, None)
    assert trig({"triggerMode": "continuous=2 seconds"}) == (
        "continuous", {"interval_ms": 2_000})
    # no triggerMode: the framework's default, Continuous, checkpointing every second
    assert trig({}) == ("continuous", {"interval_ms": 1_000})
    assert trig({"checkpointLocation": "/data/cp"}) == (
        "continuous", {"dir": "/data/cp", "interval_ms": 1_000})


def test_trigger_limits_that_would_change_nothing_are_refused_at_their_path():
    assert "once reads everything" in refusals(doc(
        {"triggerMode": "once", "maxRecordsPerTrigger": 10}))[
        "streamingConfigJson.maxRecordsPerTrigger"]
    found = refusals(doc({"maxFilesPerTrigger": 3}))  # default: continuous
    assert "the default is continuous" in found["streamingConfigJson.maxFilesPerTrigger"]
    assert "has no files" in refusals(doc(
        {"triggerMode": "availablenow", "maxFilesPerTrigger": 3}))[
        "streamingConfigJson.maxFilesPerTrigger"]
    assert "not a trigger mode" in refusals(doc({"triggerMode": "every 5 seconds"}))[
        "streamingConfigJson.triggerMode"]


# -- watermark, late data, windows, aggregations -----------------------------------------
def test_watermark_late_data_and_a_tumbling_window():
    spec = translate_etl_config(doc(
        {"watermark": WATERMARK, "lateData": {"strategy": "SendToDLQ",
                                              "topic": "late-user-events"}},
        transforms=[WINDOW]))
    assert spec["steps"] == [
        {"type": "watermark", "name": "watermark", "timestamp_column": "event_time",
         "max_out_of_orderness_ms": 900_000},
        {"type": "late_data_side_output", "name": "late_data", "strategy": "dlq",
         "output_tag": "late"},
        {"type": "window", "name": "aggregation", "key_fields": ["user_id"],
         "kind": "tumbling", "size_ms": 600_000,
         "aggregations": {"page_views": "count()", "clicks": "sum(clicks)"}}]
    assert spec["outputs"] == {
        "main": {"type": "file", "path": "out/results.jsonl", "format": "jsonl"},
        "late": {"type": "kafka", "topic": "late-user-events", "bootstrap": "broker:9092"},
        "late_window": {"type": "file", "format": "jsonl",
                        "path": ".surestream/checkpoints/p1-late-window.jsonl"}}


@pytest.mark.parametrize("late, step, output", [
    ({"strategy": "Drop"}, {"strategy": "drop"}, None),
    ({"strategy": "logAndDrop"}, {"strategy": "log_and_drop"}, None),
    ({"strategy": "SeparateStream", "path": "out/late.jsonl"},
     {"strategy": "side_output", "output_tag": "late"},
     {"type": "file", "path": "out/late.jsonl", "format": "jsonl"}),
    ({"strategy": "SendToDLQ", "table": "late_events"},
     {"strategy": "dlq", "output_tag": "late"},
     {"type": "postgres", "dsn": "postgresql://db:5432/a", "table": "late_events",
      "mode": "append"}),
    ({"strategy": "SendToDLQ", "topic": "late", "bootstrapServers": "other:9092"},
     {"strategy": "dlq", "output_tag": "late"},
     {"type": "kafka", "topic": "late", "bootstrap": "other:9092"})])
def test_each_late_data_strategy(late, step, output):
    spec = translate_etl_config(doc(
        {"watermark": WATERMARK, "lateData": late},
        sink={"type": "postgres", "dsn": "postgresql://db:5432/a", "table": "t"}))
    assert spec["steps"][1] == {"type": "late_data_side_output", "name": "late_data", **step}
    assert spec["outputs"].get("late") == output


def test_late_data_refusals_name_the_path():
    assert "exactly one of topic, table or path" in refusals(doc(
        {"watermark": WATERMARK, "lateData": {"strategy": "SeparateStream"}}))[
        "streamingConfigJson.lateData"]
    assert "would receive nothing" in refusals(doc(
        {"watermark": WATERMARK, "lateData": {"strategy": "Drop", "topic": "x"}}))[
        "streamingConfigJson.lateData"]
    assert "is not one of Drop, LogAndDrop, SendToDLQ, SeparateStream" in refusals(doc(
        {"watermark": WATERMARK, "lateData": {"strategy": "Ignore"}}))[
        "streamingConfigJson.lateData.strategy"]
    assert "add streamingConfigJson.watermark" in refusals(doc(
        {"lateData": {"strategy": "Drop"}}))["streamingConfigJson.lateData"]
    assert "postgres or iceberg sink" in refusals(doc(
        {"watermark": WATERMARK, "lateData": {"strategy": "SendToDLQ", "table": "t"}}))[
        "streamingConfigJson.lateData.table"]


def test_a_sliding_window_with_update_output_upserts_into_postgres():
    sliding = {"type": "aggregation", "name": "sales_30m",
               "parameters": {"windowDuration": "30 minutes", "slideDuration": "10 minutes",
                              "groupByColumns": "store_id, region",
                              "aggregations": "orders:count,amount:sum"}}
    spec = translate_etl_config(doc(
        {"watermark": WATERMARK, "outputMode": "update", "enableIdempotence": True},
        transforms=[sliding],
        sink={"type": "postgres", "url": "jdbc:postgresql://db:5432/shop", "user": "etl",
              "password": "s p", "table": "sales"}))
    assert spec["steps"][1] == {
        "type": "window", "name": "sales_30m", "key_fields": ["store_id", "region"],
        "kind": "sliding", "size_ms": 1_800_000, "slide_ms": 600_000,
        "aggregations": {"orders": "count()", "amount": "sum(amount)"},
        "output_mode": "update"}
    assert spec["outputs"]["main"] == {
        "type": "postgres", "dsn": "postgresql://db:5432/shop?user=etl&password=s%20p",
        "table": "sales", "mode": "upsert",
        "key_columns": ["store_id", "region", "window_start"], "version_column": "version",
        "enable_idempotence": True}


def test_complete_output_replaces_the_table_and_append_appends():
    for mode, sink_mode in (("complete", "replace"), ("append", "append")):
        spec = translate_etl_config(doc(
            {"watermark": WATERMARK, "outputMode": mode}, transforms=[WINDOW],
            sink={"type": "postgres", "dsn": "postgresql://db/a", "table": "t"}))
        assert spec["outputs"]["main"]["mode"] == sink_mode
        # append is the window's default and left out; the others are written
        assert spec["steps"][1].get("output_mode") == (None if mode == "append" else mode)


def test_an_aggregation_without_a_window_is_a_running_aggregate_with_its_state_timeout():
    running = {"type": "aggregation", "name": "per_card",
               "parameters": {"groupByColumns": ["card_id"],
                              "aggregations": {"txn_count": "count()",
                                               "total": "sum(amount)", "amount": "max"}}}
    spec = translate_etl_config(doc(
        {"watermark": WATERMARK, "stateTimeout": "30 minutes"}, transforms=[running],
        sink={"type": "postgres", "dsn": "postgresql://db/a", "table": "cards"}))
    assert spec["steps"][1] == {
        "type": "aggregate", "name": "per_card", "key_fields": ["card_id"],
        "aggregations": {"txn_count": "count()", "total": "sum(amount)",
                         "amount": "max(amount)"},
        "output_mode": "update", "state_timeout_ms": 1_800_000}
    assert spec["outputs"]["main"] == {
        "type": "postgres", "dsn": "postgresql://db/a", "table": "cards", "mode": "upsert",
        "key_columns": ["card_id"], "version_column": "version"}


def test_filter_and_deduplicate_transforms_keep_their_order():
    spec = translate_etl_config(doc({"watermark": WATERMARK}, transforms=[
        {"type": "deduplicate", "parameters": {"columns": ["event_id"],
                                               "within": "1 hour"}},
        {"type": "filter", "name": "clicks_only",
         "parameters": {"condition": "event_type = 'click'"}}]))
    assert spec["steps"][1:] == [
        {"type": "keyed_dedup", "name": "deduplicate_0", "key_fields": ["event_id"],
         "time_window_ms": 3_600_000, "strategy": "first"},
        {"type": "where", "name": "clicks_only", "condition": "event_type = 'click'"}]


def test_aggregation_refusals_name_the_path():
    def params(**p: Any) -> dict[str, Any]:
        return {"type": "aggregation", "parameters": {"groupByColumns": ["u"],
                                                      "aggregations": "x:sum", **p}}

    assert "no aggregation 'stddev'" in refusals(doc(
        {"watermark": WATERMARK}, transforms=[params(aggregations="x:stddev")]))[
        "transforms[0].parameters.aggregations"]
    assert "is not the watermark's eventTimeColumn" in refusals(doc(
        {"watermark": WATERMARK},
        transforms=[params(windowDuration="1 minute", windowColumn="ts")]))[
        "transforms[0].parameters.windowColumn"]
    assert "windows are over event time" in refusals(doc(
        {}, transforms=[params(windowDuration="1 minute")]))[
        "transforms[0].parameters.windowDuration"]
    assert "a window's state ends with the window" in refusals(doc(
        {"watermark": WATERMARK, "stateTimeout": "5 minutes"},
        transforms=[params(windowDuration="1 minute")]))["streamingConfigJson.stateTimeout"]
    assert "longer than windowDuration" in refusals(doc(
        {"watermark": WATERMARK},
        transforms=[params(windowDuration="1 minute", slideDuration="2 minutes")]))[
        "transforms[0].parameters.slideDuration"]
    assert "needs windowDuration" in refusals(doc(
        {"watermark": WATERMARK}, transforms=[params(slideDuration="1 minute")]))[
        "transforms[0].parameters.slideDuration"]
    assert "user_id would also be a group-by or result column" in refusals(doc(
        {"watermark": WATERMARK}, transforms=[params(aggregations="u:count,user_id:count",
                                                     groupByColumns=["user_id"])]))[
        "transforms[0].parameters.aggregations"]
    assert "a second aggregation" in refusals(doc(
        {"watermark": WATERMARK}, transforms=[params(), params()]))["transforms[1]"]
    assert "this pipeline has none" in refusals(doc({"outputMode": "complete"}))[
        "streamingConfigJson.outputMode"]
    assert "no aggregation" in refusals(doc({"stateTimeout": "1 minute"}))[
        "streamingConfigJson.stateTimeout"]
    assert "is not one of aggregation, filter, deduplicate" in refusals(doc(
        {}, transforms=[{"type": "pivot", "parameters": {}}]))["transforms[0].type"]


# -- data quality ------------------------------------------------------------------------
def test_each_data_quality_rule():
    rules = [
        {"type": "NotNull", "columns": ["user_id", "event_time"]},
        {"name": "clicks_range", "type": "Range", "column": "clicks", "min": 0, "max": 100,
         "severity": "Warning", "onFailure": "Quarantine"},
        {"type": "Regex", "column": "email", "pattern": "^[^@]+@[^@]+$", "onFailure": "Warn"},
        {"type": "InSet", "column": "event_type", "values": ["click", "view"],
         "severity": "Info", "onFailure": "Continue"},
        {"type": "Unique", "column": "event_id", "within": "batch"},
        {"type": "Unique", "columns": ["user_id", "session"], "within": "10 minutes",
         "onFailure": "Abort"},
        {"type": "Expression", "expression": "clicks <= page_views"},
        {"type": "Function", "function": "mypkg.checks:valid_user"}]
    spec = translate_etl_config(doc({"watermark": WATERMARK,
                                     "dataQuality": {"rules": rules}}))
    assert spec["steps"][1] == {
        "type": "data_quality", "name": "data_quality", "quarantine_output_tag": "dq_failed",
        "rules": [
            {"name": "not_null_user_id_event_time", "rule": "not_null",
             "columns": ["user_id", "event_time"], "severity": "error",
             "on_failure": "quarantine"},
            {"name": "clicks_range", "rule": "range", "column": "clicks", "min": 0,
             "max": 100, "severity": "warning", "on_failure": "quarantine"},
            {"name": "regex_email", "rule": "regex", "column": "email",
             "pattern": "^[^@]+@[^@]+$", "severity": "error", "on_failure": "warn"},
            {"name": "in_set_event_type", "rule": "in_set", "column": "event_type",
             "values": ["click", "view"], "severity": "info", "on_failure": "continue"},
            {"name": "unique_event_id", "rule": "unique", "column": "event_id",
             "within": "batch", "severity": "error", "on_failure": "quarantine"},
            {"name": "unique_user_id_session", "rule": "unique",
             "columns": ["user_id", "session"], "within": {"window_ms": 600_000},
             "severity": "error", "on_failure": "abort"},
            {"name": "expression_6", "rule": "expression", "sql": "clicks <= page_views",
             "severity": "error", "on_failure": "quarantine"},
            {"name": "function_7", "rule": "function", "function": "mypkg.checks:valid_user",
             "severity": "error", "on_failure": "quarantine"}]}
    # a quarantining rule and no quarantine destination: a file beside the checkpoints
    assert spec["outputs"]["dq_failed"] == {
        "type": "file", "path": ".surestream/checkpoints/p1-dq-failed.jsonl",
        "format": "jsonl"}


def test_quarantine_destination_and_disabled_rules():
    rule = {"type": "NotNull", "column": "user_id", "onFailure": "Quarantine"}
    spec = translate_etl_config(doc({"dataQuality": {
        "rules": [rule], "quarantine": {"topic": "bad-events"}}}))
    assert spec["outputs"]["dq_failed"] == {"type": "kafka", "topic": "bad-events",
                                            "bootstrap": "broker:9092"}
    spec = translate_etl_config(doc({"dataQuality": {"enabled": False, "rules": [rule]}}))
    assert spec["steps"] == [] and "dq_failed" not in spec["outputs"]


def test_data_quality_refusals_name_the_rule():
    def rule_problems(rule: dict[str, Any]) -> dict[str, str]:
        return refusals(doc({"dataQuality": {"rules": [rule]}}))

    assert "pattern does not apply to a NotNull rule" in rule_problems(
        {"type": "NotNull", "column": "a", "pattern": "x"})["streamingConfigJson.dataQuality"
                                                            ".rules[0]"]
    assert "needs min or max" in rule_problems({"type": "Range", "column": "a"})[
        "streamingConfigJson.dataQuality.rules[0]"]
    assert "is not one of NotNull, Range" in rule_problems(
        {"type": "Freshness", "column": "a"})["streamingConfigJson.dataQuality.rules[0].type"]
    assert "is not one of Abort, Continue, Warn, Quarantine" in rule_problems(
        {"type": "NotNull", "column": "a", "onFailure": "Drop"})[
        "streamingConfigJson.dataQuality.rules[0].onFailure"]
    assert "would receive nothing" in refusals(doc({"dataQuality": {
        "rules": [{"type": "NotNull", "column": "a", "onFailure": "Warn"}],
        "quarantine": {"path": "q.jsonl"}}}))[
        "streamingConfigJson.dataQuality.quarantine"]


# -- error handling ----------------------------------------------------------------------
@pytest.mark.parametrize("jitter, key", [(True, None), (False, 0.0), (0.3, 0.3)])
def test_retry_jitter_true_is_the_sinks_default_fraction(jitter, key):
    retry = translate_etl_config(doc({"errorHandling": {"retry": {
        "maxAttempts": 2, "jitter": jitter}}}))["outputs"]["main"]["retry"]
    assert retry == {"max_attempts": 2} | ({} if key is None else {"jitter": key})


def test_retry_breaker_and_dead_letter_queue_become_keys_of_the_main_output():
    spec = translate_etl_config(doc({"errorHandling": {
        "retry": {"maxAttempts": 3, "initialBackoff": "1 second", "maxBackoff": "30 seconds",
                  "backoffMultiplier": 2.0, "jitter": 0.2},
        "circuitBreaker": {"failureThreshold": 5, "timeout": "60 seconds"},
        "deadLetterQueue": {"path": "dlq/failed.jsonl"}, "failFast": False}}))
    assert spec["outputs"]["main"] == {
        "type": "file", "path": "out/results.jsonl", "format": "jsonl",
        "retry": {"max_attempts": 3, "initial_backoff_ms": 1_000, "max_backoff_ms": 30_000,
                  "multiplier": 2.0, "jitter": 0.2},
        "circuit_breaker": {"failure_threshold": 5, "probe_interval_ms": 60_000},
        "on_sink_failure": "dlq", "dead_letter": {"type": "file", "path": "dlq/failed.jsonl"},
        "fail_fast": False}


def test_a_breaker_without_a_dead_letter_queue_pauses_and_fail_fast_alone_fails():
    main = translate_etl_config(doc({"errorHandling": {
        "circuitBreaker": {"failureThreshold": 2, "timeout": "5 seconds"},
        "deadLetterQueue": {"enabled": False, "path": "unused.jsonl"}}}))["outputs"]["main"]
    assert main["on_sink_failure"] == "pause" and "dead_letter" not in main
    main = translate_etl_config(doc({"errorHandling": {"failFast": True}}))["outputs"]["main"]
    assert main["fail_fast"] is True and "retry" not in main


def test_error_handling_refusals():
    assert "retry would never act" in refusals(doc({"errorHandling": {
        "failFast": True, "retry": {"maxAttempts": 2}}}))[
        "streamingConfigJson.errorHandling.failFast"]
    assert "shorter than initialBackoff" in refusals(doc({"errorHandling": {"retry": {
        "maxAttempts": 2, "initialBackoff": "10 seconds", "maxBackoff": "1 second"}}}))[
        "streamingConfigJson.errorHandling.retry.maxBackoff"]
    assert "greater than 0" in refusals(doc({"errorHandling": {"retry": {
        "maxAttempts": 0}}}))["streamingConfigJson.errorHandling.retry.maxAttempts"]


# -- sources and sinks -------------------------------------------------------------------
@pytest.mark.parametrize("source, expected", [
    ({"type": "kafka", "topics": ["a", "b"], "groupId": "g", "startingOffsets": "latest",
      "schema": {"id": "long", "ts": "timestamp", "ok": "boolean", "x": "double"}},
     {"type": "kafka", "topics": ["a", "b"], "group_id": "g", "start": "latest",
      "format": "json", "schema": {"id": "int", "ts": "string", "ok": "bool", "x": "float"}}),
    ({"type": "file", "path": "in/*.csv", "format": "csv"},
     {"type": "file", "path": "in/*.csv", "format": "csv"}),
    ({"type": "iceberg", "table": "silver.events", "catalog": {"uri": "sqlite:///c.db"}},
     {"type": "iceberg", "table": "silver.events", "start": "earliest",
      "catalog": {"uri": "sqlite:///c.db"}}),
    ({"type": "delta", "path": "tables/events", "startingOffsets": "latest"},
     {"type": "delta", "path": "tables/events", "start": "latest"})])
def test_sources(source, expected):
    assert translate_etl_config(doc({}, source=source))["source"] == expected


@pytest.mark.parametrize("sink, expected", [
    ({"type": "kafka", "topic": "out", "keyColumns": ["k"]},
     {"type": "kafka", "topic": "out", "bootstrap": "broker:9092", "key_fields": ["k"]}),
    ({"type": "file", "path": "o", "format": "parquet", "partitionBy": ["d"]},
     {"type": "file", "path": "o", "format": "parquet", "partition_by": ["d"]}),
    ({"type": "iceberg", "table": "gold.t", "partitionBy": ["day(ts)"]},
     {"type": "iceberg", "table": "gold.t", "partition_by": ["day(ts)"]}),
    ({"type": "delta", "path": "d"}, {"type": "delta", "path": "d"}),
    ({"type": "console"}, {"type": "stdout"}),
    ({"type": "jdbc", "url": "jdbc:postgresql://h:5432/db?sslmode=disable", "user": "u",
      "table": "t"},
     {"type": "postgres", "dsn": "postgresql://h:5432/db?sslmode=disable&user=u",
      "table": "t", "mode": "append"})])
def test_sinks(sink, expected):
    assert translate_etl_config(doc({}, sink=sink))["outputs"]["main"] == expected


def test_query_name_names_the_stream_and_its_output():
    spec = translate_etl_config(doc({"queryName": "user_activity", "watermark": WATERMARK}))
    assert "steps" not in spec
    assert spec["streams"] == {"user_activity": {"from": "source", "steps": [
        {"type": "watermark", "name": "watermark", "timestamp_column": "event_time",
         "max_out_of_orderness_ms": 900_000}]}}
    assert list(spec["outputs"]) == ["user_activity"]


def test_a_query_named_after_a_tag_the_translation_uses_is_refused():
    assert "a tag the translation uses itself" in refusals(doc({"queryName": "late"}))[
        "streamingConfigJson.queryName"]


def test_streaming_config_as_a_string_or_an_object_translates_the_same():
    streaming = {"watermark": WATERMARK, "triggerMode": "processingtime=30 seconds"}
    assert translate_etl_config(doc(streaming)) == \
        translate_etl_config(doc(streaming, as_string=False))


# -- refusals of unknown or untranslatable fields -----------------------------------------
def test_unknown_fields_are_refused_at_their_json_path_never_ignored():
    found = refusals(doc(
        {"watermark": {**WATERMARK, "allowedLateness": "5 minutes"},
         "errorHandling": {"retry": {"maxAtempts": 3}}, "shuffle": 4},
        transforms=[{"type": "aggregation",
                     "parameters": {"aggregations": "x:sum", "windowSize": "1 minute"}}],
        sink={**FILE_SINK, "compression": "gzip"}, owner="team-a"))
    assert set(found) >= {
        "owner", "sink.compression", "transforms[0].parameters.windowSize",
        "streamingConfigJson.shuffle", "streamingConfigJson.watermark.allowedLateness",
        "streamingConfigJson.errorHandling.retry.maxAtempts"}
    assert all("unknown field" in found[p] for p in ("owner", "sink.compression"))
    assert "the fields accepted here: aggregations, groupByColumns, slideDuration, " \
           "windowColumn, windowDuration" in found["transforms[0].parameters.windowSize"]
    assert "maxAttempts" in found["streamingConfigJson.errorHandling.retry.maxAtempts"]


def test_untranslatable_documents_are_refused_with_the_reason():
    assert "mode batch is not imported" in refusals(doc({}, mode="batch"))["mode"]
    assert "not valid JSON" in refusals({**doc({}), "streamingConfigJson": "{watermark"})[
        "streamingConfigJson"]
    assert "required field is missing" in refusals({"source": KAFKA, "sink": FILE_SINK})[
        "pipelineId"]
    assert "source type 'socket' is not translated" in refusals(doc(
        {}, source={"type": "socket", "host": "x"}))["source.type"]
    assert "give topic (one) or topics" in refusals(doc(
        {}, source={"type": "kafka"}))["source"]
    assert "is not a PostgreSQL URL" in refusals(doc(
        {}, sink={"type": "postgres", "url": "jdbc:mysql://h/db", "table": "t"}))["sink"]
    assert "upsert key of outputMode update" in refusals(doc(
        {}, sink={"type": "postgres", "dsn": "postgresql://h/db", "table": "t",
                  "keyColumns": ["k"]}))["sink.keyColumns"]
