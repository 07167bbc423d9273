"""The hardening plan's operator and sink dicts load as written and mean what they say:
the late step's inline ``destination`` is the quarantine table, a sink's ``exactly_once``
and ``checkpoint_enabled`` are held to what the sink and the spec do, Iceberg's
``options: {write.wap.enabled}`` is write-audit-publish, ClickHouse's ``idempotency`` is
its key and version. Each shape runs end to end into a real table; each refusal names the
field."""

from __future__ import annotations

import copy
import datetime as dt

import polars as pl
import pytest
import yaml
from template_example import lmp_feed, write_feed

from surestream.connectors.tables.iceberg_catalog import open_catalog
from surestream.model.loader import SpecError, build_spec, load_spec
from surestream.runners.local.runner import LocalRunner

NOON = int(dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC).timestamp() * 1000)
KEY = ["iso", "node", "interval_start"]

#: the plan's dicts, as its hardened ISO template writes them (a file source for the test)
PLAN_SPEC = """
pipeline: plan-shapes
source: {type: file, path: lmp.jsonl, format: jsonl}
streams:
  curated:
    from: source
    steps:
      - {type: processing_time, name: stamp_processing_date, column: processing_date,
         unit: date}
      - type: watermark
        name: add_event_time_watermark
        timestamp_column: interval_start
        max_out_of_orderness_ms: 600000
        idle_source_timeout_ms: 60000
        strategy: bounded_out_of_orderness
      - type: late_data_side_output
        name: quarantine_late_data
        output_tag: late-iso-data
        destination:
          type: iceberg
          table: quarantine.late_iso_lmp
          partition_by: [processing_date, iso]
        metadata: {include_watermark: true, include_lateness_ms: true,
                   include_original_timestamp: true}
      - type: keyed_dedup
        name: dedup_by_message_id
        key_fields: [iso, node, interval_start, message_id]
        time_window_ms: 600000
        strategy: first
        state_ttl_ms: 3600000
outputs:
  curated:
    type: iceberg
    catalog: {uri: "sqlite:///out/warehouse/catalog.db", warehouse: out/warehouse}
    table: curated.rt_lmp_5m
    exactly_once: true
    checkpoint_enabled: true
    options: {write.wap.enabled: "true"}
    processing_time_columns: [processing_date]
  errors: {type: file, path: out/errors.jsonl}
checkpoint: {dir: out/checkpoints, interval_records: 40}
runtime: {batch_size: 16}
"""


def plan_doc() -> dict:
    return yaml.safe_load(PLAN_SPEC)


def write_spec(folder, doc) -> object:
    records, truth = lmp_feed()
    write_feed(folder / "lmp.jsonl", records)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path, truth


def scan(spec, tag: str) -> pl.DataFrame:
    sink = spec.outputs[tag]
    table = open_catalog(sink.catalog, spec.resolve).load_table(sink.table)
    return pl.from_arrow(table.scan().to_arrow())


def test_the_plans_dicts_run_into_the_curated_and_quarantine_tables(tmp_path):
    path, truth = write_spec(tmp_path, plan_doc())
    spec = load_spec(path)
    late = spec.outputs["late-iso-data"]  # the destination is an output of the late tag
    assert (late.type, late.table, late.partition_by) == (
        "iceberg", "quarantine.late_iso_lmp", ["processing_date", "iso"])
    assert late.catalog == spec.outputs["curated"].catalog  # the pipeline's catalog
    assert spec.outputs["curated"].write_audit_publish is True
    result = LocalRunner(spec, clock=lambda: NOON).run()
    assert result.written["curated"] == truth["curated"]
    curated = scan(spec, "curated")
    assert curated.height == curated.select(KEY).unique().height == truth["curated"]
    quarantined = scan(spec, "late-iso-data")
    assert quarantined.height == truth["late"]
    assert set(quarantined["node"]) == {"LATE"}
    assert {"watermark_ms", "lateness_ms", "original_timestamp"} <= set(quarantined.columns)
    assert (quarantined["lateness_ms"] > 0).all()
    table = open_catalog(late.catalog, spec.resolve).load_table(late.table)
    assert [f.name for f in table.spec().fields] == ["processing_date", "iso"]
    curated_table = open_catalog(late.catalog, spec.resolve).load_table("curated.rt_lmp_5m")
    assert curated_table.properties.get("write.wap.enabled") == "true"


def test_wap_off_in_the_plans_words_is_write_audit_publish_off(tmp_path):
    doc = plan_doc()
    doc["outputs"]["curated"]["options"] = {"write.wap.enabled": "false"}
    spec = build_spec(doc, tmp_path)
    assert spec.outputs["curated"].write_audit_publish is False


def test_exactly_once_false_on_kafka_is_at_least_once_delivery(tmp_path):
    doc = plan_doc()
    doc["outputs"]["curated"] = {"type": "kafka", "topic": "t", "exactly_once": False}
    assert build_spec(doc, tmp_path).outputs["curated"].delivery == "at_least_once"
    doc["outputs"]["curated"]["exactly_once"] = True
    assert build_spec(doc, tmp_path).outputs["curated"].delivery == "exactly_once"


def refusal(mutate) -> str:
    doc = plan_doc()
    mutate(doc)
    with pytest.raises(SpecError) as e:
        build_spec(doc)
    return str(e.value)


def _set(path: list, value):
    def mutate(doc):
        node = doc
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    return mutate


LATE = ["streams", "curated", "steps", 2]
CURATED = ["outputs", "curated"]


@pytest.mark.parametrize(("mutate", "expected"), [
    (_set([*CURATED, "write_audit_publish"], False),
     ["options.write.wap.enabled", "write_audit_publish"]),
    (_set([*CURATED, "options"], {"write.wap.enabled": "maybe"}),
     ["options.write.wap.enabled", "'maybe'"]),
    (_set(["checkpoint"], {"dir": "out/checkpoints"}),
     ["outputs.curated.checkpoint_enabled", "checkpoint.interval_ms"]),
    (_set([*CURATED, "checkpoint_enabled"], False),
     ["outputs.curated.checkpoint_enabled", "the spec checkpoints"]),
    (_set(["outputs", "late-iso-data"], {"type": "memory"}),
     ["streams.curated.steps[2].destination", "outputs.late-iso-data"]),
    (_set([*LATE, "destination"], {"type": "iceberg", "table": "late_iso_lmp"}),
     ["streams.curated.steps[2].destination.table", "namespace.table"]),
    (_set([*LATE, "destination"], {"table": "quarantine.late"}),
     ["streams.curated.steps[2].destination", "a destination is a sink"]),
    (_set([*LATE, "strategy"], "drop"),
     ["streams.curated.steps[2].destination", "strategy 'drop'"]),
    (_set(CURATED, {"type": "stdout", "exactly_once": True}),
     ["outputs.curated", "exactly_once", "stdout sink is at_least_once"]),
    (_set(CURATED, {"type": "kafka", "topic": "t", "exactly_once": True,
                    "delivery": "at_least_once"}),
     ["outputs.curated", "exactly_once", "delivery 'at_least_once'"]),
])
def test_refusals_name_the_field(mutate, expected):
    message = refusal(mutate)
    for text in expected:
        assert text in message


CLICKHOUSE = {"type": "clickhouse", "table": "rt_lmp_5m", "exactly_once": True,
              "idempotency": {"enabled": True, "key_columns": ["iso", "node", "interval_start"],
                              "engine": "ReplacingMergeTree",
                              "version_column": "event_version"}}


@pytest.mark.parametrize(("change", "expected"), [
    ({"key_columns": ["iso"]}, ["idempotency.key_columns", "contradicts key_columns"]),
    ({"version_column": "v"}, ["idempotency.version_column", "contradicts version_column"]),
    ({"idempotency": {**CLICKHOUSE["idempotency"], "enabled": False}},
     ["idempotency.enabled", "ReplacingMergeTree"]),
    ({"idempotency": {**CLICKHOUSE["idempotency"], "engine": "MergeTree"}},
     ["idempotency.engine", "'MergeTree'"]),
])
def test_clickhouse_idempotency_contradictions_are_refused_naming_both(change, expected):
    message = refusal(_set(CURATED, {**copy.deepcopy(CLICKHOUSE), **change}))
    for text in expected:
        assert text in message


def test_the_plans_clickhouse_sink_writes_a_replacing_merge_tree(clickhouse_server,
                                                                 tmp_path):
    """``idempotency`` is the sink's key and version: the table is made with them, and
    reads back one row per key with FINAL."""
    from clickhouse_driver import Client

    table = f"plan_rt_lmp_{tmp_path.name[-8:].replace('-', '_')}"
    doc = plan_doc()
    doc["outputs"]["curated"] = {**CLICKHOUSE, "table": table,
                                 "host": clickhouse_server.host,
                                 "port": clickhouse_server.port,
                                 "processing_time_columns": ["processing_date"]}
    doc["streams"]["curated"]["steps"][2]["destination"]["catalog"] = {
        "uri": "sqlite:///out/warehouse/catalog.db", "warehouse": "out/warehouse"}
    path, truth = write_spec(tmp_path, doc)
    spec = load_spec(path)
    assert (spec.outputs["curated"].key_columns, spec.outputs["curated"].version_column) \
        == (["iso", "node", "interval_start"], "event_version")
    LocalRunner(spec, clock=lambda: NOON).run()
    client = Client(host=clickhouse_server.host, port=clickhouse_server.port)
    rows, unique = client.execute(
        f"SELECT count(), uniqExact(iso, node, interval_start) FROM {table} FINAL")[0]
    assert rows == unique == truth["curated"]
    engine = client.execute(f"SELECT engine FROM system.tables WHERE name = '{table}'")
    assert engine == [("ReplacingMergeTree",)]


def test_a_validated_spec_dumped_loads_again_as_the_same_spec(tmp_path):
    """The destination moved into ``outputs`` (and out of the step), so a dumped spec --
    the run history's, a tool's rewrite -- is a valid spec with the same outputs."""
    spec = build_spec(plan_doc(), tmp_path)
    dumped = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    again = build_spec(dumped, tmp_path)
    assert again.outputs == spec.outputs
    assert again.all_streams["curated"].steps[2].destination is None


def test_verify_redirects_the_destination_like_any_output(tmp_path):
    """``surestream verify`` rewrites each output into its run's folder: the quarantine
    destination too (its catalog moves with the run), not only the plain outputs."""
    from surestream.cli.verify.runs import Verifier

    path, _ = write_spec(tmp_path, plan_doc())
    verifier = Verifier(str(path), (), tmp_path / "work")
    assert set(verifier.outputs) == {"curated", "late-iso-data", "errors"}
    doc = verifier.run_doc(tmp_path / "work" / "clean-1", None)
    run_spec = build_spec(doc, tmp_path)
    late = run_spec.outputs["late-iso-data"]
    assert late.table == "quarantine.late_iso_lmp"
    assert str(tmp_path / "work" / "clean-1") in str(late.catalog)


def test_verify_checks_a_dedup_key_that_holds_the_event_time_column_once(tmp_path):
    """The plan's dedup key holds `interval_start`, here the event-time column too: the
    duplicate check's key names it once (twice made polars refuse the selection)."""
    from surestream.cli.verify.duplicates import output_keys
    from surestream.cli.verify.runs import Verifier

    path, _ = write_spec(tmp_path, plan_doc())
    assert output_keys(Verifier(str(path), (), tmp_path / "work"))["curated"] == [
        "iso", "node", "interval_start", "message_id"]
