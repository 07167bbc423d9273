"""The whole translation: an ETL framework pipeline document -> a surestream spec dict.

The stream is: source -> watermark -> late data -> data quality -> the transforms in
their order (filter, deduplicate, one aggregation) -> the sink. Its name is the
``queryName`` (Spark's name of the query's output), or ``main``. Every tag it produces
gets an output: the sink, the late-data destination, the quarantine destination, and
the window's own late tag (``late_window``: records too late for their window, which
the late-data step before it leaves empty when there is one) as a JSON-lines file
beside the checkpoint folder, as surestream's ``errors`` default is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from surestream.apps.etl.config import EtlPipeline
from surestream.apps.etl.quality import QUARANTINE_TAG, quarantines, translate_data_quality
from surestream.apps.etl.refusals import EtlConfigError, join_path, parse_section
from surestream.apps.etl.sinks import (
    error_handling_keys,
    key_fields_refusal,
    parse_sink,
    translate_destination,
    translate_sink,
)
from surestream.apps.etl.sources import source_bootstrap, translate_source
from surestream.apps.etl.streaming import (
    PREFIX,
    late_step,
    translate_trigger,
    watermark_step,
)
from surestream.apps.etl.transforms import translate_transforms

MAIN = "main"
WINDOW_LATE_TAG = "late_window"
#: the tags (and the source's name) a query may not be named after
RESERVED_TAGS = frozenset({"late", WINDOW_LATE_TAG, QUARANTINE_TAG, "errors", "source"})


def load_etl_config(path: str | Path) -> dict[str, Any]:
    """The JSON document of a configuration file (YAML is read too)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise EtlConfigError([("", f"cannot read the file: {e.strerror}")], str(p)) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise EtlConfigError([("", f"neither JSON nor YAML: {e}")], str(p)) from None
    if not isinstance(doc, dict):
        raise EtlConfigError([("", "a pipeline configuration is a JSON object with "
                                   "pipelineId, source, sink, ...")], str(p))
    return doc


def translate_etl_config(doc: dict[str, Any]) -> dict[str, Any]:
    """The surestream spec of an ETL framework pipeline document; ``EtlConfigError``
    with every refusal's JSON path and reason."""
    try:
        cfg: EtlPipeline = parse_section(EtlPipeline, doc, "")
    except EtlConfigError as e:  # report the typed sections' problems too, all at once
        raise EtlConfigError(e.problems + _section_problems(doc)) from None
    sc = cfg.streaming_config_json
    problems: list[tuple[str, str]] = []

    def attempt(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EtlConfigError as e:
            problems.extend(e.problems)
            return None

    source = attempt(translate_source, cfg.source)
    sink_cfg = attempt(parse_sink, cfg.sink)
    event_time = sc.watermark.event_time_column if sc.watermark else None
    transforms = attempt(translate_transforms, cfg.transforms, event_time_column=event_time,
                         output_mode=sc.output_mode, state_timeout_ms=sc.state_timeout,
                         state_timeout_path=f"{PREFIX}.stateTimeout")
    trigger = attempt(translate_trigger, sc, (source or {}).get("type", "?"))
    if problems:
        raise EtlConfigError(problems)
    assert source is not None and sink_cfg is not None and transforms is not None

    output_mode = sc.output_mode or ("update" if transforms.aggregation
                                     and not transforms.windowed else "append")
    if transforms.aggregation is None:
        if sc.output_mode in ("update", "complete"):
            problems.append((f"{PREFIX}.outputMode",
                             f"outputMode {sc.output_mode} is for aggregations; this "
                             "pipeline has none (use append)"))
        if sc.state_timeout is not None:
            problems.append((f"{PREFIX}.stateTimeout",
                             "stateTimeout is the idle timeout of an aggregation's keys; "
                             "this pipeline has no aggregation"))
    if sc.late_data is not None and sc.watermark is None:
        problems.append((f"{PREFIX}.lateData", "late is behind the watermark: add "
                                               f"{PREFIX}.watermark"))
    problems += key_fields_refusal(sink_cfg, output_mode, "sink")

    steps: list[dict[str, Any]] = []
    if sc.watermark is not None:
        steps.append(watermark_step(sc.watermark))
    if sc.late_data is not None:
        steps.append(late_step(sc.late_data))
    dq_step = translate_data_quality(sc.data_quality) if sc.data_quality else None
    if dq_step is not None:
        steps.append(dq_step)
    steps += transforms.steps

    bootstrap = source_bootstrap(source)
    main_output = translate_sink(sink_cfg, output_mode=output_mode,
                                 group_by=transforms.group_by,
                                 windowed=transforms.windowed, kafka_bootstrap=bootstrap)
    if sc.enable_idempotence is not None:
        main_output["enable_idempotence"] = sc.enable_idempotence
    main_output |= attempt(error_handling_keys, sc.error_handling,
                           f"{PREFIX}.errorHandling") or {}

    stream = sc.query_name or MAIN
    if stream in RESERVED_TAGS:
        problems.append((f"{PREFIX}.queryName",
                         f"{stream!r} is a tag the translation uses itself "
                         f"({', '.join(sorted(RESERVED_TAGS))}); name the query otherwise"))
    checkpoint_dir = sc.checkpoint_location
    beside = (checkpoint_dir or f".surestream/checkpoints/{cfg.pipeline_id}").rstrip("/")
    outputs: dict[str, Any] = {stream: main_output}
    if sc.late_data is not None and sc.late_data.chosen():
        outputs["late"] = attempt(translate_destination, sc.late_data,
                                  f"{PREFIX}.lateData", main=sink_cfg,
                                  main_output=main_output, kafka_bootstrap=bootstrap)
    if transforms.windowed:
        outputs[WINDOW_LATE_TAG] = {"type": "file", "path": f"{beside}-late-window.jsonl",
                                    "format": "jsonl"}
    quarantine = sc.data_quality.quarantine if sc.data_quality else None
    if quarantines(dq_step):
        outputs[QUARANTINE_TAG] = (
            attempt(translate_destination, quarantine, f"{PREFIX}.dataQuality.quarantine",
                    main=sink_cfg, main_output=main_output, kafka_bootstrap=bootstrap)
            if quarantine is not None else
            {"type": "file", "path": f"{beside}-dq-failed.jsonl", "format": "jsonl"})
    elif quarantine is not None and dq_step is not None:
        problems.append((f"{PREFIX}.dataQuality.quarantine",
                         "no rule has onFailure Quarantine, so the quarantine would "
                         "receive nothing; set onFailure Quarantine on a rule or remove it"))
    if problems:
        raise EtlConfigError(problems)

    spec: dict[str, Any] = {"pipeline": cfg.pipeline_id, "source": source}
    if stream == MAIN:
        spec["steps"] = steps
    else:
        spec["streams"] = {stream: {"from": "source", "steps": steps}}
    spec["outputs"] = outputs
    trigger_value, interval_ms = trigger
    spec["trigger"] = trigger_value
    checkpoint: dict[str, Any] = {}
    if checkpoint_dir:
        checkpoint["dir"] = checkpoint_dir
    if interval_ms is not None:
        checkpoint["interval_ms"] = interval_ms
    if checkpoint:
        spec["checkpoint"] = checkpoint
    return spec


def _section_problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The problems of ``source``, ``sink`` and ``transforms`` on their own, for a
    document whose top level is refused (so one pass reports everything)."""
    from surestream.apps.etl.transforms import PARAMETER_MODELS, Transform

    problems: list[tuple[str, str]] = []
    checks: list[tuple[Any, tuple[Any, ...]]] = []
    if isinstance(doc.get("source"), dict):
        checks.append((translate_source, (doc["source"],)))
    if isinstance(doc.get("sink"), dict):
        checks.append((parse_sink, (doc["sink"],)))
    for i, item in enumerate(doc.get("transforms") or []):
        path = join_path("transforms", i)
        try:
            t = parse_section(Transform, item, path)
            parse_section(PARAMETER_MODELS[t.type], t.parameters,
                          join_path(path, "parameters"))
        except EtlConfigError as e:
            problems += e.problems
    for fn, args in checks:
        try:
            fn(*args)
        except EtlConfigError as e:
            problems += e.problems
    return problems


def header_comment(doc: dict[str, Any], source: str) -> str:
    """The YAML comment a written spec starts with: where it came from."""
    lines = [f"translated by `surestream import etl-config {source}` (docs/etl.md)"]
    for key in ("pipelineName", "description"):
        if doc.get(key):
            lines.append(f"{key}: {doc[key]}")
    return "".join(f"# {line}\n" for line in lines)


__all__ = ["join_path", "load_etl_config", "translate_etl_config", "header_comment"]
