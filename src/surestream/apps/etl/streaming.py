"""``streamingConfigJson``'s query settings: watermark, late data, trigger, checkpoints.

- ``watermark {eventTimeColumn, delayThreshold}`` -> a ``watermark`` step
  (``timestamp_column``, ``max_out_of_orderness_ms``): Spark's watermark is the largest
  event time seen minus the delay, and so is surestream's (a record is late when it is
  more than the delay behind the largest event time seen).
- ``lateData.strategy`` Drop / LogAndDrop / SendToDLQ / SeparateStream -> a
  ``late_data_side_output`` step right after the watermark with strategy drop /
  log_and_drop / dlq / side_output, its records to the tag ``late``.
- ``triggerMode`` -> the top-level ``trigger`` and the checkpoint interval: each
  processing-time micro-batch commits (a checkpoint every interval), a continuous query
  checkpoints every ``continuous=<interval>`` (default 1 second). No ``triggerMode``:
  continuous, the framework's default, written out as ``trigger: continuous``.
- ``maxRecordsPerTrigger`` / ``maxFilesPerTrigger`` -> ``max_records_per_trigger`` /
  ``max_files_per_trigger`` of a processing-time or available-now trigger (with once or
  continuous they would change nothing: refused).
- ``checkpointLocation`` -> ``checkpoint.dir``.
"""

from __future__ import annotations

from typing import Any

from surestream.apps.etl.config import LateData, StreamingConfig, Watermark
from surestream.apps.etl.durations import parse_trigger_mode
from surestream.apps.etl.refusals import EtlConfigError

PREFIX = "streamingConfigJson"
#: a continuous query's checkpoint interval when ``continuous`` gives none
CONTINUOUS_CHECKPOINT_MS = 1_000
LATE_TAG = "late"
LATE_STRATEGIES = {"Drop": "drop", "LogAndDrop": "log_and_drop", "SendToDLQ": "dlq",
                   "SeparateStream": "side_output"}


def watermark_step(cfg: Watermark) -> dict[str, Any]:
    return {"type": "watermark", "name": "watermark",
            "timestamp_column": cfg.event_time_column,
            "max_out_of_orderness_ms": cfg.delay_threshold}


def late_step(cfg: LateData) -> dict[str, Any]:
    step: dict[str, Any] = {"type": "late_data_side_output", "name": "late_data",
                            "strategy": LATE_STRATEGIES[cfg.strategy]}
    if step["strategy"] in ("dlq", "side_output"):
        step["output_tag"] = LATE_TAG
    return step


def translate_trigger(cfg: StreamingConfig, source_type: str
                      ) -> tuple[Any, int | None]:
    """``(trigger, checkpoint interval_ms)``."""
    mode = parse_trigger_mode(cfg.trigger_mode) if cfg.trigger_mode else None
    kind = mode.kind if mode else "continuous"
    limits = {k: v for k, v in (("max_records_per_trigger", cfg.max_records_per_trigger),
                                ("max_files_per_trigger", cfg.max_files_per_trigger))
              if v is not None}
    problems = []
    if limits and kind in ("once", "continuous"):
        why = ("once reads everything there in one batch" if kind == "once" else
               "a continuous query has no triggers (records flow as they arrive)")
        for key in limits:
            field = "maxRecordsPerTrigger" if key.startswith("max_records") \
                else "maxFilesPerTrigger"
            problems.append((f"{PREFIX}.{field}",
                             f"{why}, so {field} would change nothing"
                             + ("" if mode else " (no triggerMode: the default is "
                                                "continuous)")
                             + "; use triggerMode processingtime=<interval> or availablenow, "
                               "or remove it"))
    if cfg.max_files_per_trigger is not None and source_type != "file" and not problems:
        problems.append((f"{PREFIX}.maxFilesPerTrigger",
                         f"a {source_type} source has no files; use maxRecordsPerTrigger"))
    if problems:
        raise EtlConfigError(problems)
    if kind == "processing_time":
        assert mode is not None and mode.interval_ms is not None
        if limits:
            return {"processing_time": mode.interval_ms, **limits}, mode.interval_ms
        return {"processing_time": mode.interval_ms}, mode.interval_ms
    if kind == "available_now":
        return ({"available_now": True, **limits} if limits else "available_now"), None
    if kind == "once":
        return "once", None
    interval = (mode.interval_ms if mode else None) or CONTINUOUS_CHECKPOINT_MS
    return "continuous", interval
