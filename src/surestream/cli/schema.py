"""The spec reference, generated: docs/spec.md and the JSON Schema, from the models.

    surestream schema > surestream.schema.json        # for editors (completion, checks)
    surestream schema --markdown > docs/spec.md       # regenerate the reference

Every key's type and default come from the pydantic models (``surestream.model``), its
meaning from the key's ``Field(description=...)`` and each block's docstring; the command
line section comes from the ``surestream`` parser itself. What is written here by hand is
what no model can say: the examples (checked by the tests), the rules that span keys, and
the SQL idioms. ``tests/test_spec_reference.py`` fails when docs/spec.md differs from what
this module renders, so a changed model means: run the command above and commit the file.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import typing
from importlib import resources
from typing import Any

from pydantic import BaseModel

from surestream.model.aggregations import BUILTIN_ARITY
from surestream.model.spec import (
    CheckpointSpec,
    PipelineSpec,
    RuntimeSpec,
    SinkSpec,
    SourceSpec,
    StreamSpec,
)
from surestream.model.steps import LateMetadata, Step
from surestream.model.trigger import TriggerSpec

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
REGENERATE = "surestream schema --markdown > docs/spec.md"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file (keys by their spelling in the file)."""
    schema = PipelineSpec.model_json_schema(by_alias=True)
    return {"$schema": SCHEMA_DIALECT, **schema, "title": "surestream pipeline spec"}


# -- examples (validated by tests/test_spec_reference.py) ----------------------------------
#: one YAML example per source ``type``
SOURCE_EXAMPLES: dict[str, str] = {
    "file": """\
source: {type: file, path: data/trades.jsonl}                  # one file
# source: {type: file, path: "data/trades-*.jsonl"}            # a glob: a partition per file
# source:                                                      # a union, declared types
#   type: file
#   path: [data/raw.trades.jsonl, data/raw.marketdata.jsonl]
#   schema: {symbol: string, price: float, timestamp_ms: int}
""",
    "generator": """\
source: {type: generator, function: "mypkg.feeds:trades", params: {n: 1000}}
# mypkg/feeds.py:  def trades(n): return ({"trade_id": i, ...} for i in range(n))
""",
    "memory": """\
source: {type: memory, records: [{id: 1, ts: 1000}, {id: 2, ts: 2000}]}   # tests, notebooks
""",
    "kafka": """\
source:
  type: kafka
  bootstrap: 127.0.0.1:9092        # omitted: $SURESTREAM_BOOTSTRAP or `surestream broker`
  topics: [raw.trades]             # each topic-partition is an input partition
  group_id: trades-vwap            # offsets live in checkpoints; also committed here
  start: earliest                  # earliest | latest | committed | {timestamp_ms: N}
  stop_at: end                     # end | {timestamp_ms: N} | omitted: run live
  format: json                     # json | csv | raw
  metadata: [partition, offset]    # columns kafka_partition, kafka_offset
""",
    "iceberg": """\
source:
  type: iceberg                    # main's snapshots, read incrementally (docs/sources.md)
  catalog: {uri: "sqlite:///warehouse/catalog.db", warehouse: warehouse}
  table: curated.events
  start: earliest                  # earliest (the table now, then new snapshots) | latest
  stop_at: end                     # end | omitted: run live, polling every poll_interval_ms
""",
    "delta": """\
source: {type: delta, path: warehouse/delta/events, start: latest, poll_interval_ms: 1000}
""",
}

#: one YAML example per step ``type``
STEP_EXAMPLES: dict[str, str] = {
    "watermark": """\
- type: watermark
  name: event_time
  timestamp_column: timestamp_ms     # epoch ms; integer epoch seconds need timestamp_unit: s
  max_out_of_orderness_ms: 5000      # a record up to 5 s behind the newest is on time
""",
    "late_data_side_output": """\
- {type: late_data_side_output, name: quarantine_late, output_tag: late}
""",
    "keyed_dedup": """\
- type: keyed_dedup
  name: dedup_by_trade_id
  key_fields: [trade_id]
  time_window_ms: 600000             # a re-send within 10 minutes is a duplicate
  state_ttl_ms: 3600000              # a key is forgotten 1 h after its first record
  duplicates_output_tag: duplicates  # optional: the dropped duplicates, for an audit
""",
    "window": """\
- type: window
  name: vwap_1m
  key_fields: [symbol]
  kind: tumbling
  size_ms: 60000
  allowed_lateness_ms: 30000         # a late record within 30 s re-fires (revision + 1)
  late_output_tag: late_window
  aggregations: {trades: count(), volume: sum(quantity), vwap: "vwap(price, quantity)",
                 high: max(price), low: min(price), open: first(price), close: last(price)}
- {type: window, name: activity_2m, key_fields: [symbol], kind: sliding, size_ms: 120000,
   slide_ms: 30000, late_output_tag: late_activity, aggregations: "quantity:sum,price:max"}
- {type: window, name: sessions, key_fields: [account_id], kind: session, gap_ms: 30000,
   late_output_tag: late_sessions, aggregations: {trades: count()}}
- {type: window, name: volume_1m_live, key_fields: [symbol], kind: tumbling, size_ms: 60000,
   aggregations: "quantity:sum", output_mode: update}   # a row per trade, with version
""",
    "aggregate": """\
- type: aggregate
  name: per_user
  key_fields: [user_id]
  aggregations: {views: count(), clicks: sum(clicks), last_page: last(page)}
  output_mode: update                # a row per record, with version (for an upsert sink)
  state_timeout_ms: 1800000          # a user idle 30 min of event time starts afresh
""",
    "route": """\
- type: route
  name: route_by_status
  field: status
  routes: {NEW: main, FILLED: filled, PARTIALLY_FILLED: filled, CANCELLED: cancelled}
  default: unroutable                # anything else, a missing or null status too
""",
    "with_columns": """\
- type: with_columns
  name: trade_measures
  columns:                           # in order: a later column may use an earlier one
    value: price * quantity
    is_buy: "CASE WHEN side = 'BUY' THEN 1 ELSE 0 END"
    date: "CAST(CAST(timestamp_ms * 1000 AS TIMESTAMP) AS DATE)"   # the UTC day
""",
    "data_quality": """\
- type: data_quality
  name: checks
  quarantine_output_tag: dq_failed   # failing records + dq_rule, dq_severity, dq_reason
  rules:                             # in order: a record is quarantined by the first it fails
    - {name: amount_present, rule: not_null, column: amount}
    - {name: amount_range, rule: range, column: amount, min: 0, max: 10000}   # inclusive
    - {name: email_format, rule: regex, column: email, pattern: "^[^@]+@[^@]+$",
       severity: warning, on_failure: warn}
    - {name: known_status, rule: in_set, column: status, values: [NEW, FILLED]}
    - {name: one_per_batch, rule: unique, column: order_id, on_failure: continue}
    - {name: positive_total, rule: expression, sql: "price * quantity > 0"}
""",
    "where": """\
- {type: where, name: executed_only, condition: "status IN ('FILLED', 'PARTIALLY_FILLED')"}
""",
    "map_batches": """\
- {type: map_batches, name: book_metrics,
   function: "surestream.apps.trading.jobs.orderbook:book_metrics"}
# def book_metrics(frame: pl.DataFrame) -> pl.DataFrame: the same rows, in the same order
""",
    "map": """\
- {type: map, name: enrich, function: "mypkg.trades:enrich"}
# def enrich(record: dict) -> dict | None | list[dict]: None drops it, a list fans out
""",
    "filter": """\
- {type: filter, name: big_trades, function: "mypkg.trades:is_big"}
# def is_big(record: dict) -> bool
""",
    "process": """\
- type: process
  name: price_alerts
  key_fields: [symbol]
  function: surestream.apps.trading.jobs.alerts:PriceAlerts   # process_run(run, state)
  params: {window_ms: 300000, threshold_pct: 2.0}             # -> open(params)
""",
    "processing_time": """\
- {type: processing_time, name: stamp_computed_at, column: computed_at, unit: timestamp}
# the output lists it: processing_time_columns: [computed_at]
""",
    "broadcast_enrich": """\
- type: broadcast_enrich
  name: reference_data
  key_fields: [symbol]
  reference: {path: data/reference/symbols.parquet}
  updates: reference                 # a stream whose records update the table
  fields: [company_name, sector]
""",
}

#: one YAML example per output ``type``
SINK_EXAMPLES: dict[str, str] = {
    "file": """\
outputs:
  main:   {type: file, path: out/windows.jsonl}                       # JSON lines
  late:   {type: file, path: out/late.csv, format: csv}
  filled: {type: file, format: parquet, path: warehouse/filled,       # a dataset folder
           partition_by: [date, symbol], key: [trade_id]}
""",
    "duckdb": """\
outputs:
  filled: {type: duckdb, path: out/warehouse.duckdb, table: filled_trades, key: [trade_id]}
""",
    "iceberg": """\
outputs:
  curated: {type: iceberg, table: curated.rt_lmp_5m,       # embedded SQLite catalog
            catalog: {uri: "sqlite:///warehouse/catalog.db", warehouse: warehouse},
            partition_by: ["day(interval_start)", iso], write_audit_publish: true,
            audit: {not_null: [lmp], unique: [iso, node, interval_start]},
            on_audit_failure: quarantine, quarantine_table: quarantine.rt_lmp_5m}
""",
    "memory": """\
outputs:
  main: {type: memory}     # Python: the records are in the run result
""",
    "stdout": """\
outputs:
  main: {type: stdout}     # JSON lines on standard output, at least once
""",
    "kafka": """\
outputs:
  main: {type: kafka, topic: analytics.vwap, key_fields: [symbol],
         delivery: exactly_once}   # exactly_once | at_least_once
""",
    "delta": """\
outputs:
  dl: {type: delta, path: warehouse/delta/windows, partition_by: [symbol]}   # exactly once
""",
    "clickhouse": """\
outputs:
  ch: {type: clickhouse, host: 127.0.0.1, port: 9000, database: default, table: rt_lmp_5m,
       key_columns: [iso, node, interval_start], version_column: event_version,
       partition_by: "toYYYYMM(interval_start)"}   # idempotent: read with FINAL
""",
    "postgres": """\
outputs:
  main: {type: postgres, dsn: "postgresql://user@127.0.0.1:5432/db", table: windows,
         mode: upsert, key_columns: [symbol, window_start], version_column: revision}
  late: {type: postgres, dsn: "postgresql://user@127.0.0.1:5432/db", table: late_trades}
""",
}

#: a whole spec with named streams: ``from`` a source, a stream and a side-output tag
STREAMS_EXAMPLE = """\
pipeline: trades-fanout
source: {type: file, path: data/trades.jsonl}
streams:
  clean:
    from: source                     # a source
    steps:
      - {type: watermark, name: event_time, timestamp_column: timestamp_ms,
         max_out_of_orderness_ms: 5000}
      - {type: late_data_side_output, name: quarantine_late, output_tag: late}
      - {type: keyed_dedup, name: dedup, key_fields: [trade_id], time_window_ms: 600000}
  per_minute:
    from: clean                      # another stream's results
    steps:
      - {type: window, name: w1m, key_fields: [symbol], kind: tumbling, size_ms: 60000,
         aggregations: {trades: count(), volume: sum(quantity)}}
  per_hour:
    from: clean                      # fan-out: a second reader of the same stream
    steps:
      - {type: window, name: w1h, key_fields: [symbol], kind: tumbling, size_ms: 3600000,
         late_output_tag: late_1h, aggregations: {trades: count()}}
  late_audit:
    from: late                       # a side-output tag
    steps:
      - {type: with_columns, name: seen_on, columns: {processed_on: CURRENT_DATE}}
outputs:
  per_minute:  {type: file, path: out/per_minute.jsonl}
  per_hour:    {type: file, path: out/per_hour.jsonl}
  late_window: {type: file, path: out/late_window.jsonl}
  late_1h:     {type: file, path: out/late_1h.jsonl}
  late_audit:  {type: file, path: out/late_audit.jsonl,
                processing_time_columns: [processed_on]}   # wall clock: differs per run
  errors:      {type: file, path: out/errors.jsonl}
"""

#: what each built-in aggregation computes
AGGREGATION_MEANINGS: dict[str, str] = {
    "count": "records in the window",
    "sum": "sum of the column: of integers (or booleans) an exact integer -- a sum beyond "
           "64 bits stops the run, never wraps; of floats a float folded in arrival order "
           "(identical on every replay)",
    "avg": "mean of the column",
    "min": "smallest value",
    "max": "largest value",
    "first": "the value of the earliest record by event time (ties: the first to arrive)",
    "last": "the value of the latest record by event time (ties: the last to arrive)",
    "vwap": "sum(price * quantity) / sum(quantity); null when sum(quantity) is 0",
}

#: (what you want, the SQL) for ``with_columns`` and ``where``
SQL_IDIOMS: list[tuple[str, str]] = [
    ("the UTC day of an epoch-ms column (a `date` to partition by)",
     "CAST(CAST(timestamp_ms * 1000 AS TIMESTAMP) AS DATE)"),
    ("an epoch-ms column as a timestamp (SQL reads integers as microseconds, hence `* 1000`)",
     "CAST(timestamp_ms * 1000 AS TIMESTAMP)"),
    ("the UTC hour of the day", "EXTRACT(HOUR FROM CAST(timestamp_ms * 1000 AS TIMESTAMP))"),
    ("a readable UTC time",
     "STRFTIME(CAST(timestamp_ms * 1000 AS TIMESTAMP), '%Y-%m-%d %H:%M:%S')"),
    ("the start of the minute, in epoch ms", "timestamp_ms - timestamp_ms % 60000"),
    ("epoch seconds to epoch ms", "ts_s * 1000"),
    ("the day of a window result", "CAST(CAST(window_start * 1000 AS TIMESTAMP) AS DATE)"),
    ("today, by the wall clock, one value per checkpoint interval (processing time: "
     "declare the column in the output's `processing_time_columns`)", "CURRENT_DATE"),
]


# -- rendering helpers ---------------------------------------------------------------------
def _text(doc: str | None) -> str:
    """A docstring or description as Markdown: ``code`` -> `code`, one paragraph per blank
    line, wrapped lines joined."""
    if not doc:
        return ""
    doc = _CONTRACT_REFERENCE.sub("", doc)
    paragraphs = inspect.cleandoc(doc).replace("``", "`").split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


#: "(SEMANTICS §3)" in a docstring points at the contract beside the repository, which a
#: reader of docs/spec.md may not have; docs/concepts.md explains the same in prose
_CONTRACT_REFERENCE = re.compile(r"\s*\(SEMANTICS §[^)]*\)")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _anchor(title: str) -> str:
    """GitHub's heading anchor for a title."""
    slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
    return f"#{slug}"


#: model -> the section that documents it (for links from a key's type)
_SECTIONS: dict[str, str] = {}


def _type(prop: dict[str, Any]) -> str:
    """A JSON Schema property as a short human type: ``integer > 0``, ``list of string``."""
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        title = _SECTIONS.get(name, name)
        return f"[{title}]({_anchor(title)})"
    if "const" in prop:
        return f"`{prop['const']}`"
    if "enum" in prop:
        return " | ".join(f"`{v}`" for v in prop["enum"])
    if "oneOf" in prop and "discriminator" in prop:
        kinds = sorted(prop["discriminator"]["mapping"])
        return "one of the types " + ", ".join(f"`{k}`" for k in kinds)
    if "anyOf" in prop:
        options = [_type(p) for p in prop["anyOf"] if p.get("type") != "null"]
        return " or ".join(dict.fromkeys(options))
    kind = prop.get("type")
    if kind is None:
        return "any"
    if kind == "array":
        items = prop.get("items", {})
        text = f"list of {_type(items)}" if items else "list"
        return f"non-empty {text}" if prop.get("minItems") else text
    if kind == "object":
        values = prop.get("additionalProperties")
        if not isinstance(values, dict) and prop.get("patternProperties"):
            values = next(iter(prop["patternProperties"].values()))  # keys are names
        text = f"mapping to {_type(values)}" if isinstance(values, dict) else "mapping"
        return f"non-empty {text}" if prop.get("minProperties") else text
    words = {"string": "string", "integer": "integer", "number": "number",
             "boolean": "boolean"}
    text = words.get(kind, kind)
    if "exclusiveMinimum" in prop:
        text += f" > {prop['exclusiveMinimum']}"
    if "minimum" in prop:
        text += f" >= {prop['minimum']}"
    if "maximum" in prop:
        text += f" <= {prop['maximum']:,}"
    return text


def _default(model: type[BaseModel], name: str) -> str:
    field = model.model_fields[name]
    if field.is_required():
        return "**required**"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "see below"
    if value is None:
        return "none"
    if isinstance(value, str):
        return f"`{value}`"
    return f"`{json.dumps(value)}`"


def _keys_table(model: type[BaseModel], schema: dict[str, Any]) -> list[str]:
    """key | type | default | meaning, one row per key a spec file may write."""
    props = schema.get("properties", {})
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    fields = sorted(model.model_fields.items(), key=lambda item: item[0] != "type")
    for name, field in fields:
        key = field.alias or name
        if key not in props:  # not a spec key (e.g. base_dir)
            continue
        prop = props[key]
        meaning = prop.get("description", "")
        if key == "type":
            meaning = "selects this block"
        rows.append(f"| `{key}` | {_cell(_type(prop))} | {_default(model, name)} | "
                    f"{_cell(_text(meaning))} |")
    return rows


def _members(union: Any) -> list[type[BaseModel]]:
    """The models of a discriminated union such as ``Step``."""
    args = typing.get_args(union)
    inner = args[0] if args and typing.get_origin(union) is typing.Annotated else union
    return [m for m in typing.get_args(inner) if isinstance(m, type)]


def _type_names(model: type[BaseModel]) -> list[str]:
    return list(typing.get_args(model.model_fields["type"].annotation))


def _yaml(text: str) -> list[str]:
    return ["```yaml", text.rstrip("\n"), "```"]


# -- the document --------------------------------------------------------------------------
def render_markdown() -> str:
    """docs/spec.md."""
    schema = json_schema()
    defs = schema["$defs"]
    sources, steps, sinks = _members(SourceSpec), _members(Step), _members(SinkSpec)
    _SECTIONS.update({"LateMetadata": "metadata", "CheckpointSpec": "checkpoint",
                      "RuntimeSpec": "runtime", "StreamSpec": "streams",
                      "TriggerSpec": "trigger"})

    def block(model: type[BaseModel], title: str, examples: dict[str, str]) -> list[str]:
        out = [f"### {title}", "", _text(model.__doc__), ""]
        out += _keys_table(model, defs[model.__name__]) + [""]
        for kind in _type_names(model):
            if kind in examples:
                out += _yaml(examples[kind]) + [""]
        return out

    vwap = (resources.files("surestream") / "examples" / "trades_vwap.yaml").read_text()
    out = [
        "# Pipeline spec reference",
        "",
        f"<!-- Generated from the models in src/surestream/model by `{REGENERATE}`; "
        "do not edit by hand. -->",
        "",
        "A pipeline is a YAML (or JSON) file, or the same structure built in Python "
        "(`surestream.api`). This page lists every key: its type, its default and what it "
        "means, with an example per block. It is generated from the pydantic models that "
        "validate specs, so it is what `surestream validate` checks.",
        "",
        "- Relative paths resolve against the folder of the spec file.",
        "- `--set path=value` overrides any key before validation: "
        "`--set source.path=other.jsonl`, `--set runtime.batch_size=1000`, "
        "`--set steps[3].params.cooldown_ms=30000`; quote a key with dots: "
        "`--set 'outputs[\"processed.trades.new\"].path=x'`.",
        "- `${NAME}` and `${NAME:-default}` in a value take the environment variable NAME "
        "(a deployment's `KAFKA_BOOTSTRAP_SERVERS`, `CHECKPOINT_LOCATION`, ...): "
        "`bootstrap: \"${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}\"`. A value that is just "
        "one placeholder and reads as a plain integer or true/false becomes that number "
        "or boolean; `$${` is a literal `${`; an unset variable without a default is an "
        "error naming the field.",
        "- Unknown keys, wrong types and impossible values (a negative duration, a state TTL "
        "shorter than the dedup window, a tag that goes nowhere) are errors: `surestream "
        "validate` prints each with its path in the file (`steps[2].state_ttl_ms`) and "
        "exits 2.",
        "- Editors: `surestream schema > surestream.schema.json` writes the JSON Schema of "
        "this page; point your editor's YAML support at it (for the YAML language server, "
        "a first line `# yaml-language-server: $schema=surestream.schema.json`) for "
        "completion and checks as you type.",
        "",
        "A complete spec (`src/surestream/examples/trades_vwap.yaml`):",
        "",
        *_yaml(vwap),
        "",
        "## A spec is code",
        "",
        "A spec names Python code to run: `function: \"mypkg.jobs:enrich\"` imports "
        "`mypkg.jobs` (running its top-level code) and calls `enrich` on your records. Treat "
        "a spec like a job jar: only run specs you trust, and review a spec's `function` "
        "keys as you would review code.",
        "",
        "- `surestream validate` (and `run`, `verify`) resolves every reference before "
        "anything runs and checks that it can be called as documented below. A missing "
        "module or attribute, an object that is not callable, or a callable that does not "
        "take these arguments is a spec error naming the field (`steps[3].function`), exit "
        "2.",
        "- References into Python's standard library (`os:system`, `subprocess:run`, "
        "`builtins:eval`, `importlib:import_module`, ...) are refused: no pipeline step is "
        "a standard-library function, so such a reference is a mistake or an attack. If "
        "you really mean one, call it from a function of your own module.",
        "- Write a reference as `package.module:attribute` (`package.module.attribute` works "
        "too); the module must be importable (installed, or on `PYTHONPATH`).",
        "",
        "| where | the object named | called as |",
        "| --- | --- | --- |",
        "| `map` | a function | `function(record)` → a dict, `None` (drop) or a list of dicts |",
        "| `filter` | a function | `function(record)` → keep it if truthy |",
        "| `map_batches` | a function | `function(frame)` → a polars DataFrame with the same "
        "rows in the same order |",
        "| `process` | a class with `process_element(record, ctx)`, built without arguments "
        "(optional `open(params)`, `on_timer(timestamp, ctx)`); or a function | "
        "`process_element(record, ctx)` / `function(record, ctx)` |",
        "| `generator` source | a function returning an iterable of dicts | "
        "`function(**params)`, again from the start on recovery |",
        "| user aggregation (Python only) | an object with `create`, `add`, `merge`, "
        "`result` | `create()`, `add(acc, record)`, `merge(a, b)`, `result(acc)` |",
        "",
        "An exception raised by your code on a record does not stop the pipeline: the record "
        "goes to `errors` with the exception and its traceback.",
        "",
        "## Top level",
        "",
        _text(PipelineSpec.__doc__),
        "",
        *_keys_table(PipelineSpec, schema),
        "",
        "## Sources",
        "",
        "`source:` (one) or `sources:` (named, each read by a stream's `from`). The `type` "
        "key selects the block.",
        "",
    ]
    for model in sources:
        out += block(model, " / ".join(f"type: {t}" for t in _type_names(model)),
                     SOURCE_EXAMPLES)
    out += [
        "## Streams",
        "",
        "Top-level `steps` are one stream, `main`, over the source. For more, name streams "
        "under `streams:`; each reads `from` a source, another stream's results, or a "
        "side-output tag (`late`, a route's tag, a window's `late_output_tag`), so one "
        "deduplicated stream can feed 1-, 5- and 15-minute windows. A stream's results "
        "carry the stream's name as their tag. Every tag goes to an `outputs` entry or to a "
        "stream that reads it: nothing is dropped silently. A stream that reads another "
        "stream or a tag keeps its event time; one that reads a source needs a `watermark` "
        "step before any step that uses event time.",
        "",
        *_keys_table(StreamSpec, defs["StreamSpec"]),
        "",
        *_yaml(STREAMS_EXAMPLE),
        "",
        "## Steps",
        "",
        "Each step is a mapping with a `type` and a `name` (the stable id of its state: "
        "unique in the spec, and renaming a step starts its state empty). Every step may "
        "send records it cannot process to `errors`, with the reason.",
        "",
    ]
    for model in steps:
        out += block(model, f"type: {_type_names(model)[0]}", STEP_EXAMPLES)
    out += ["### metadata", "", _text(LateMetadata.__doc__) + " (`late_data_side_output`)",
            "", *_keys_table(LateMetadata, defs["LateMetadata"]), ""]
    out += [
        "## Aggregations",
        "",
        "A window's `aggregations` map an output column to a function of input columns:",
        "",
        "| function | columns | result |",
        "| --- | ---: | --- |",
        *[f"| `{fn}({', '.join(['x', 'y'][:n]) if fn != 'vwap' else 'price, quantity'})` "
          f"| {n} | {AGGREGATION_MEANINGS.get(fn, '')} |" for fn, n in BUILTIN_ARITY.items()],
        "",
        "The shorthand string `\"clicks:count,revenue:sum\"` means "
        "`{clicks: count(clicks), revenue: sum(revenue)}` (one-column functions only). In "
        "Python, a value may also be your own aggregate: an object with `create()`, "
        "`add(acc, record)`, `merge(a, b)` and `result(acc)` (picklable accumulators). "
        "Every result row also has the key fields, `window_start`, `window_end` (epoch ms, "
        "end exclusive) and `revision` (0, then + 1 for each re-firing within "
        "`allowed_lateness_ms`).",
        "",
        "## SQL expressions",
        "",
        "`with_columns` and `where` take SQL expressions over the record's columns "
        "(polars SQL: `CASE WHEN`, `CAST`, `IN`, `COALESCE`, arithmetic, string "
        "functions), computed on whole batches. They are parsed at validation, so a typo is "
        "a spec error with its path. Idioms for time, with event time in epoch milliseconds "
        "(`timestamp_ms`):",
        "",
        "| you want | write |",
        "| --- | --- |",
        *[f"| {_cell(want)} | `{sql}` |" for want, sql in SQL_IDIOMS],
        "",
        "Event-time idioms give the same value on every run. `CURRENT_DATE`, "
        "`CURRENT_TIMESTAMP` and `NOW()` (also `LOCALTIMESTAMP`, `CURRENT_TIME`, "
        "`LOCALTIME`) are processing time, in UTC: the wall clock read once per checkpoint "
        "interval (as the `processing_time` step does) and stored with the checkpoint, so a "
        "recovery or a replay gives the records it processes again the values they had -- "
        "after midnight too. Two separate runs read the clock at other times: prefer the "
        "event-time day, and where you do want processing time, list the column in the "
        "output's `processing_time_columns` so that `surestream verify` leaves it out of its "
        "comparisons between runs.",
        "",
        "## Outputs",
        "",
        "`outputs:` maps each tag to a sink. The keys every sink has (`exactly_once`, "
        "`processing_time_columns`, `key`) are listed with each type.",
        "",
    ]
    for model in sinks:
        out += block(model, f"type: {_type_names(model)[0]}", SINK_EXAMPLES)
    out += ["## checkpoint", "", _text(CheckpointSpec.__doc__), "",
            *_keys_table(CheckpointSpec, defs["CheckpointSpec"]), "",
            "## runtime", "", _text(RuntimeSpec.__doc__), "",
            *_keys_table(RuntimeSpec, defs["RuntimeSpec"]), ""]
    out += ["## trigger", "", _text(TriggerSpec.__doc__), "",
            *_keys_table(TriggerSpec, defs["TriggerSpec"]), ""]
    out += _command_line()
    return "\n".join(out).rstrip("\n") + "\n"


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=1000)  # one line, whatever the tty
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return " ".join(formatter.format_help().split()).removeprefix("usage: ")


def _option_help(action: argparse.Action, prog: str) -> str:
    """The help text as ``--help`` shows it (``%(default)s`` expanded)."""
    params = {**vars(action), "prog": prog}
    if params.get("choices") is not None:
        params["choices"] = ", ".join(map(str, params["choices"]))
    return (action.help or "") % params


def _command_line() -> list[str]:
    """The ``surestream`` commands and their options, from the parser."""
    from surestream.cli.main import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = ["## Command line", "", "`surestream COMMAND ...` (or `python -m surestream`). "
           "Exit codes: 0 success, 1 a pipeline failure at run time (a run in which "
           "every record went to `errors` included: `runtime.max_error_ratio`), 2 a usage "
           "or spec error, 130 stopped by Ctrl-C. `surestream --version` prints the "
           "version.", ""]
    helps = {a.dest: a.help for a in subparsers._choices_actions}
    for name, sub in subparsers.choices.items():
        out += [f"### surestream {name}", "", _text(sub.description or helps.get(name)), "",
                f"`{_usage(sub)}`", ""]
        rows = ["| argument | meaning |", "| --- | --- |"]
        for action in sub._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
                continue
            names = ", ".join(action.option_strings) or action.metavar or action.dest
            rows.append(f"| `{names}` | {_cell(_option_help(action, sub.prog))} |")
        out += rows + [""]
        if sub.epilog:
            out += ["```", sub.epilog.rstrip(), "```", ""]
    return out
