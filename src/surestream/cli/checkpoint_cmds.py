"""``surestream checkpoints`` and ``surestream savepoint``: what is stored, and a clean stop.

A savepoint is a checkpoint copied out of the rotating checkpoint directory, so retention
never deletes it (``runners/local/savepoints.py``). ``run --from-savepoint PATH`` makes it
the pipeline's latest checkpoint again (the newer timeline is dropped) once the runner holds
the folder and has checked that the savepoint fits, and resumes from it; sinks roll their
output back to it. ``checkpoints`` only reads, so it works while a run holds the folder.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from surestream.model.spec import PipelineSpec
from surestream.runners.local.checkpoint_store import Checkpoint, CheckpointStore
from surestream.runners.local.savepoints import copy_checkpoint, load_savepoint

__all__ = ["checkpoint_table", "copy_checkpoint", "default_savepoint_dir", "finished_refusal",
           "load_savepoint", "savepoint_summary"]


def checkpoint_table(spec: PipelineSpec) -> list[str]:
    """One line per checkpoint on disk, oldest first."""
    store = CheckpointStore(spec.checkpoint_dir(), spec.checkpoint.retain)
    rows = store.list()
    if not rows:
        return [f"no checkpoints in {store.dir}"]
    lines = [f"checkpoints of {spec.pipeline!r} in {store.dir}:",
             f"{'id':>6}  {'wall time (UTC)':<23}  {'ms':>8}  {'state bytes':>12}  "
             f"{'written':>10}  {'records in':>11}  status"]
    for r in rows:
        if not r.get("valid") and "wall_time" not in r:
            lines.append(f"{r['id']:>6}  {'?':<23}  {'':>8}  {'':>12}  {'':>10}  {'':>11}  "
                         "CORRUPT (skipped on restore)")
            continue
        when = datetime.fromisoformat(r["wall_time"]).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        status = "finished" if r.get("finished") else "resumable"
        if not r["valid"]:
            status = "CORRUPT state (skipped on restore)"
        lines.append(f"{r['id']:>6}  {when:<23}  {r['duration_ms']:>8.1f}  "
                     f"{r['bytes_total']:>12,}  {r['bytes_written']:>10,}  "
                     f"{r.get('records_in', 0):>11,}  {status}")
    positions = rows[-1].get("positions", {}).get("partitions", [])
    if positions:
        lines.append("source positions of the newest: " + ", ".join(
            f"{Path(name).name}@{pos}{' (ended)' if done else ''}"
            for name, pos, done in positions))
    return lines


def default_savepoint_dir(spec: PipelineSpec, cp_id: int) -> Path:
    cp_dir = spec.checkpoint_dir()
    return cp_dir.parent / f"{cp_dir.name}-savepoints" / f"sp-{cp_id:010d}"


def finished_refusal(spec: PipelineSpec, latest: Checkpoint) -> str:
    """Why ``savepoint`` does nothing to a pipeline whose latest checkpoint is finished."""
    return (f"pipeline {spec.pipeline!r} has finished: checkpoint {latest.id} in "
            f"{latest.store.dir} marks the end of its input, and its outputs are complete. "
            "A savepoint resumes the pipeline, which here would start it afresh and rewrite "
            "every output, so nothing was changed. Take a savepoint of a pipeline that has "
            "not finished; to run this one again from the start, use `surestream run`")


def savepoint_summary(meta: dict[str, Any], path: Path) -> str:
    return (f"savepoint {meta['id']} of {meta['pipeline']!r} at {path} "
            f"({meta['bytes_total']:,} bytes of state, {meta.get('records_in', 0):,} records "
            f"read{', input finished' if meta.get('finished') else ''})")
