"""The hardening plan's operator and sink dicts, read as the spec keys they stand for.

The energy team's plan (docs/energy.md, "Templates and feed profiles") writes a few
things in its own words:

- a late step's inline ``destination: {type, table, partition_by}``: an output of the
  step's ``output_tag`` (an Iceberg destination gets the pipeline's catalog);
- a sink's ``checkpoint_enabled``: whether it commits at the spec's checkpoints, which must
  agree with the spec's checkpointing;
- an Iceberg sink's ``options: {write.wap.enabled: "true"}``: ``write_audit_publish``;
- a ClickHouse sink's ``idempotency: {enabled, key_columns, engine, version_column}``:
  ``key_columns`` / ``version_column`` of a ReplacingMergeTree table.

These are *aliases* of keys that exist, never a second meaning: a dict that says one thing
in the plan's words and another in the plain keys is refused, naming both. Each function
here is called from a validator of the model it concerns (``model/spec.py``) and raises
``ValueError`` / ``SpecProblems`` with the field's path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from surestream.model.problems import SpecProblems, key_path

if TYPE_CHECKING:
    from surestream.model.spec import PipelineSpec

#: the Iceberg table property that is ``write_audit_publish``
WAP_OPTION = "write.wap.enabled"
Problem = tuple[str, str]
_TRUE_WORDS = {"true": True, "false": False}


def _as_bool(value: Any, field: str) -> bool:
    """``"true"``/``"false"`` (table properties are text) or a YAML boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS:
        return _TRUE_WORDS[value.strip().lower()]
    raise ValueError(f"{field}: {value!r} is not \"true\" or \"false\"")


def iceberg_options(data: Any) -> Any:
    """``options: {write.wap.enabled: ...}`` sets ``write_audit_publish``; a contradiction
    with an explicit ``write_audit_publish`` is refused naming both."""
    if not isinstance(data, dict) or not isinstance(data.get("options"), dict):
        return data
    options = data["options"]
    if WAP_OPTION not in options:
        return data
    wap = _as_bool(options[WAP_OPTION], f"options.{WAP_OPTION}")
    if "write_audit_publish" in data and data["write_audit_publish"] != wap:
        raise ValueError(
            f"options.{WAP_OPTION} is {options[WAP_OPTION]!r} but write_audit_publish is "
            f"{data['write_audit_publish']!r}: they are one setting; keep one of them")
    return {**data, "write_audit_publish": wap,
            "options": {**options, WAP_OPTION: "true" if wap else "false"}}


#: the one ClickHouse engine the sink writes (replayed rows replace by key and version)
CLICKHOUSE_ENGINE = "ReplacingMergeTree"


def clickhouse_idempotency(data: Any) -> Any:
    """``idempotency: {enabled, key_columns, engine, version_column}`` fills in
    ``key_columns`` / ``version_column``; the plain keys may be given too if they agree."""
    if not isinstance(data, dict) or not isinstance(data.get("idempotency"), dict):
        return data
    idem = data["idempotency"]
    if idem.get("enabled", True) is not True:
        raise ValueError(
            "idempotency.enabled: false is not possible: the clickhouse sink is safe to "
            "replay only because its ReplacingMergeTree table replaces rows by key and "
            "version (a replayed checkpoint would otherwise double its rows); set it to "
            "true, or use another sink")
    engine = idem.get("engine", CLICKHOUSE_ENGINE)
    if engine != CLICKHOUSE_ENGINE:
        raise ValueError(f"idempotency.engine: {engine!r} is not supported; the clickhouse "
                         f"sink writes {CLICKHOUSE_ENGINE} tables only")
    out = dict(data)
    for key in ("key_columns", "version_column"):
        if key not in idem:
            continue
        if key in data and data[key] != idem[key]:
            raise ValueError(f"idempotency.{key} {idem[key]!r} contradicts {key} "
                             f"{data[key]!r}: they are one setting; keep one of them")
        out[key] = idem[key]
    return out


def kafka_exactly_once(data: Any) -> Any:
    """``exactly_once: false`` on a Kafka sink without ``delivery`` means ``delivery:
    at_least_once`` (the one sink where the choice exists); a contradiction is refused."""
    if not isinstance(data, dict) or data.get("exactly_once") is None:
        return data
    wanted = "exactly_once" if data["exactly_once"] else "at_least_once"
    if "delivery" not in data:
        return {**data, "delivery": wanted}
    if data["delivery"] != wanted:
        raise ValueError(f"exactly_once {data['exactly_once']!r} contradicts delivery "
                         f"{data['delivery']!r}: keep one of them")
    return data


# -- the late step's inline destination ------------------------------------------------

def _pipeline_catalog(outputs: dict[str, Any]) -> dict[str, Any] | None:
    """The catalog of the spec's Iceberg outputs (None: none, or they differ)."""
    catalogs = []
    for sink in outputs.values():
        kind = sink.get("type") if isinstance(sink, dict) else getattr(sink, "type", None)
        if kind != "iceberg":
            continue
        catalog = sink.get("catalog") if isinstance(sink, dict) else sink.catalog
        if catalog is not None and catalog not in catalogs:
            catalogs.append(catalog)
    return catalogs[0] if len(catalogs) == 1 else None


def _without_destination(step: Any) -> Any:
    """The step with its destination taken out (it lives in ``outputs`` now), so a spec
    dumped after validation loads again as the same spec."""
    if isinstance(step, dict):
        return {k: v for k, v in step.items() if k != "destination"}
    return step.model_copy(update={"destination": None})


def _late_fields(step: Any) -> tuple[Any, str, str] | None:
    """(destination, output_tag, strategy) of a late step that has a destination."""
    if isinstance(step, dict):
        if step.get("type") != "late_data_side_output" or step.get("destination") is None:
            return None
        return (step["destination"], step.get("output_tag", "late"),
                step.get("strategy", "quarantine"))
    if getattr(step, "type", None) == "late_data_side_output" \
            and getattr(step, "destination", None) is not None:
        return step.destination, step.output_tag, step.strategy
    return None


def _destination_problems(destination: Any, tag: str, strategy: str, where: str,
                          outputs: dict[str, Any], added: dict[str, str]) -> list[Problem]:
    if not isinstance(destination, dict) or "type" not in destination:
        return [(where, "a destination is a sink: `{type: iceberg, table: namespace.table, "
                        "partition_by: [...]}` (any `outputs` entry's keys)")]
    if strategy not in ("quarantine", "side_output", "dlq"):
        return [(where, f"strategy {strategy!r} writes no late records, so they have no "
                        "destination; use strategy quarantine or drop the destination")]
    if tag in added:
        return [(where, f"output_tag {tag!r} already has the destination of {added[tag]}; "
                        "give each late step its own output_tag")]
    if tag in outputs:
        return [(where, f"output_tag {tag!r} also has an entry "
                        f"{key_path('outputs', tag)}: give the late records one place, the "
                        "destination or the output")]
    return []


def _sink_problems(sink: dict[str, Any], where: str) -> list[Problem]:
    """The destination checked as a sink now, so its mistakes are reported at the
    destination's own path (``steps[2].destination.table``), not at the output it becomes."""
    from pydantic import TypeAdapter, ValidationError

    from surestream.model.spec import SinkSpec  # the spec module is loaded by now

    try:
        TypeAdapter(SinkSpec).validate_python(sink)
    except ValidationError as e:
        found = []
        for err in e.errors():
            loc = [str(p) for p in err["loc"][1:]]  # [0] is the sink type (discriminator)
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling; the keys are in docs/spec.md)"
            elif err["type"] == "missing":
                msg = "required key is missing"
            found.append((".".join([where, *loc]), msg))
        return found
    return []


def late_destinations(data: Any) -> Any:
    """Each late step's ``destination`` becomes ``outputs[<its output_tag>]`` (an Iceberg
    one with the pipeline's catalog unless it names one) and leaves the step. Refused,
    naming the fields: a tag that already has an output, a strategy that emits no records,
    a destination that is not a sink. Also for tools that rewrite a spec document's
    outputs before validating it (``surestream verify``): call it on the document first."""
    if not isinstance(data, dict):
        return data
    outputs = dict(data.get("outputs") or {})
    added: dict[str, str] = {}
    problems: list[Problem] = []

    def moved(prefix: str, steps: list[Any]) -> list[Any]:
        out = []
        for i, step in enumerate(steps):
            found = _late_fields(step)
            if found is None:
                out.append(step)
                continue
            destination, tag, strategy = found
            where = f"{prefix}[{i}].destination"
            found_problems = _destination_problems(destination, tag, strategy, where,
                                                   outputs, added)
            if not found_problems:
                sink = dict(destination)
                if sink["type"] == "iceberg" and "catalog" not in sink:
                    catalog = _pipeline_catalog(outputs)
                    if catalog is not None:
                        sink["catalog"] = catalog
                found_problems = _sink_problems(sink, where)
                if not found_problems:
                    outputs[tag] = sink
                    added[tag] = where
            problems.extend(found_problems)
            out.append(_without_destination(step))
        return out

    result = dict(data)
    if isinstance(data.get("steps"), list):
        result["steps"] = moved("steps", data["steps"])
    streams = data.get("streams")
    if isinstance(streams, dict):
        result["streams"] = {}
        for name, stream in streams.items():
            steps = stream.get("steps") if isinstance(stream, dict) \
                else getattr(stream, "steps", None)
            if isinstance(steps, list):
                new_steps = moved(key_path("streams", str(name)) + ".steps", steps)
                stream = {**stream, "steps": new_steps} if isinstance(stream, dict) \
                    else stream.model_copy(update={"steps": new_steps})
            result["streams"][name] = stream
    if problems:
        raise SpecProblems(problems)
    if not added:
        return data
    result["outputs"] = outputs
    return result


# -- checkpoint_enabled against the spec's checkpointing ---------------------------------

def checkpoint_enabled_problems(spec: PipelineSpec) -> list[tuple[str, str]]:
    """Every surestream sink commits what it wrote at the spec's checkpoints (that is how
    its delivery is exactly once); ``checkpoint_enabled`` states that, so it must agree with
    ``checkpoint``: true needs periodic checkpoints, false is only true without them."""
    problems = []
    periodic = spec.checkpoint.periodic
    for tag, sink in spec.outputs.items():
        enabled = getattr(sink, "checkpoint_enabled", None)
        where = key_path("outputs", tag) + ".checkpoint_enabled"
        if enabled is True and not periodic:
            problems.append((where, "true, but the spec takes no checkpoints during the run "
                                    "(checkpoint.interval_ms / interval_records unset): the "
                                    "sink would commit only at the end of the input (never, "
                                    "on a live source); set checkpoint.interval_ms"))
        elif enabled is False and periodic:
            problems.append((where, "false, but the spec checkpoints "
                                    "(checkpoint.interval_ms / interval_records): every "
                                    "sink commits at the checkpoints, that is how a run "
                                    "resumes without losing or doubling records; remove "
                                    "checkpoint_enabled (or turn off checkpointing)"))
        elif enabled is False and getattr(sink, "exactly_once", None):
            problems.append((where, "false contradicts exactly_once: true: exactly-once "
                                    "delivery is a commit at each checkpoint"))
    return problems
