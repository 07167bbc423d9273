"""``surestream checkpoints`` and ``surestream savepoint``: what is stored, and a clean stop.

A savepoint is a checkpoint copied out of the rotating checkpoint directory, so retention
never deletes it. ``run --from-savepoint PATH`` makes it the pipeline's latest checkpoint
again (the older timeline's checkpoints are cleared) and resumes from it; sinks roll their
output back to it.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from surestream.model.spec import PipelineSpec
from surestream.runners.local.checkpoint_store import Checkpoint, CheckpointError, CheckpointStore


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


def copy_checkpoint(cp: Checkpoint, target: Path) -> Path:
    """Copy one checkpoint (manifest and the state files it references) into ``target``."""
    if target.resolve() == cp.store.dir.resolve():
        raise CheckpointError(f"{target} is the checkpoint directory itself; a savepoint "
                              "goes elsewhere (retention would delete it there)")
    (target / "state").mkdir(parents=True, exist_ok=True)
    manifest = f"chk-{cp.id:010d}.json"
    for old in target.glob("chk-*.json"):  # an earlier savepoint here would shadow this one
        if old.name != manifest:
            old.unlink()
    for name in cp.files():  # operator states and their chunk files
        shutil.copy2(cp.store.dir / "state" / name, target / "state" / name)
    shutil.copy2(cp.store.dir / manifest, target / manifest)
    return target


def default_savepoint_dir(spec: PipelineSpec, cp_id: int) -> Path:
    cp_dir = spec.checkpoint_dir()
    return cp_dir.parent / f"{cp_dir.name}-savepoints" / f"sp-{cp_id:010d}"


def load_savepoint(path: Path) -> Checkpoint:
    cp = CheckpointStore(path).latest()
    if cp is None:
        raise CheckpointError(f"{path} holds no readable checkpoint")
    return cp


def adopt_savepoint(spec: PipelineSpec, path: Path) -> Checkpoint:
    """Make the savepoint the pipeline's latest checkpoint, clearing the old timeline."""
    savepoint = load_savepoint(path)
    store = CheckpointStore(spec.checkpoint_dir(), spec.checkpoint.retain)
    if savepoint.store.dir.resolve() == store.dir.resolve():
        return savepoint  # the checkpoint directory itself: its latest is the one
    store.clear()
    copy_checkpoint(savepoint, store.dir)
    adopted = store.latest()
    assert adopted is not None and adopted.id == savepoint.id
    return adopted


def savepoint_summary(meta: dict[str, Any], path: Path) -> str:
    return (f"savepoint {meta['id']} of {meta['pipeline']!r} at {path} "
            f"({meta['bytes_total']:,} bytes of state, {meta.get('records_in', 0):,} records "
            f"read{', input finished' if meta.get('finished') else ''})")
