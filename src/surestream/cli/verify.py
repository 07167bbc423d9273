"""``surestream verify SPEC``: prove the exactly-once promises on a pipeline's bounded input.

Every run is a real ``surestream run`` child process with its own output and checkpoint
folders under a work folder. The checks:

(a) replay identity -- two clean runs give byte-identical outputs (declared
    processing-time columns aside);
(b) crash recovery -- N runs, each killed with SIGKILL at a seeded fault point (inside the
    checkpoint write, between pre-commit and commit, mid-batch, ...), restarted until done,
    each equal to the clean run. They use smaller batches and checkpoints every few
    batches, so they also show that results do not depend on either;
(c) no duplicate keys in the exactly-once outputs (the stream's dedup/window key, or the
    output's declared ``key``);
(d) the late path counted -- records in each late output equal the late counter of the
    step that produced them.

One PASS/FAIL line per check with its figures; exit 0 only if all pass.
"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import yaml

from surestream.connectors.duckdb_util import fetch_frame
from surestream.connectors.file_sinks import read_parquet_dataset
from surestream.model.loader import SpecError, apply_override, build_spec, load_spec_dict
from surestream.model.spec import ERRORS_TAG, PipelineSpec
from surestream.model.steps import KeyedDedupStep, LateDataStep, WatermarkStep, WindowStep
from surestream.runners.local import faults

POINT_LABELS = {
    "batch.mid": "mid-batch",
    "checkpoint.state_written": "inside the checkpoint write (state written)",
    "checkpoint.manifest_temp": "inside the checkpoint write (manifest not renamed)",
    "checkpoint.pre_committed": "after pre-commit, before the checkpoint is durable",
    "checkpoint.durable": "between pre-commit and commit (checkpoint durable)",
    "checkpoint.commit_partial": "between commits of two sinks",
}


@dataclass
class RunOutcome:
    folder: Path
    summary: dict[str, Any]
    crashed: bool = False
    restarts: int = 0
    error: str | None = None  # a run that failed instead of finishing


class RunFailed(Exception):
    """A run exited with an error (not a kill): the pipeline cannot recover."""


class Verifier:
    def __init__(self, spec_path: str, overrides: tuple[str, ...], workdir: Path) -> None:
        self.spec_path = Path(spec_path).resolve()
        doc = load_spec_dict(self.spec_path)
        for assignment in overrides:
            apply_override(doc, assignment)
        self.doc = doc
        self.spec: PipelineSpec = build_spec(copy.deepcopy(doc), self.spec_path.parent,
                                             str(spec_path))
        self.workdir = workdir
        self.outputs = dict(self.spec.outputs)
        self.outputs.setdefault(ERRORS_TAG, None)
        unsupported = [t for t, s in self.outputs.items()
                       if s is not None and s.type not in ("file", "duckdb")]
        if unsupported:
            raise SpecError([(f"outputs.{t}", f"verify needs file or duckdb outputs, not "
                              f"{self.outputs[t].type}") for t in unsupported], str(spec_path))

    # -- running ------------------------------------------------------------------------
    def _run_doc(self, folder: Path, crash_config: dict[str, int] | None) -> dict[str, Any]:
        doc = copy.deepcopy(self.doc)
        out = folder / "out"
        doc.setdefault("outputs", {})
        for tag in self.outputs:
            entry = doc["outputs"].setdefault(tag, {"type": "file", "format": "jsonl"})
            kind = entry.get("type", "file")
            suffix = "duckdb" if kind == "duckdb" else entry.get("format", "jsonl")
            entry["path"] = str(out / f"{tag}.{suffix}")
        doc.setdefault("checkpoint", {})
        doc["checkpoint"]["dir"] = str(folder / "checkpoints")
        if crash_config is not None:
            doc["checkpoint"].pop("interval_ms", None)
            doc["checkpoint"]["interval_records"] = crash_config["interval_records"]
            doc.setdefault("runtime", {})["batch_size"] = crash_config["batch_size"]
        return doc

    def _invoke(self, spec_file: Path, summary: Path, env_extra: dict[str, str]) -> int:
        env = {k: v for k, v in os.environ.items()
               if k not in (faults.ENV, faults.COUNTS_ENV)}
        env.update(env_extra)
        proc = subprocess.run(
            [sys.executable, "-m", "surestream", "run", str(spec_file), "--base-dir",
             str(self.spec_path.parent), "--summary", str(summary)],
            env=env, capture_output=True, text=True, timeout=3600)
        if proc.returncode not in (0, -9):
            raise RunFailed(f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
        return proc.returncode

    def run(self, name: str, crash_config: dict[str, int] | None = None,
            fault: str | None = None, count_faults: bool = False) -> RunOutcome:
        folder = self.workdir / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        spec_file = folder / "spec.yaml"
        spec_file.write_text(yaml.safe_dump(self._run_doc(folder, crash_config),
                                            sort_keys=False))
        summary = folder / "summary.json"
        env = {faults.ENV: fault} if fault else {}
        if count_faults:
            env[faults.COUNTS_ENV] = str(folder / "fault_counts.json")
        restarts = 0
        try:
            crashed = self._invoke(spec_file, summary, env) == -9
            while crashed or not summary.exists():
                restarts += 1
                if restarts > 5:
                    raise RunFailed(f"still not done after {restarts} restarts")
                crashed = self._invoke(spec_file, summary, {}) == -9
        except RunFailed as e:
            return RunOutcome(folder, {}, restarts > 0, restarts, error=str(e))
        return RunOutcome(folder, json.loads(summary.read_text()), restarts > 0, restarts)

    # -- reading outputs ----------------------------------------------------------------
    def read_output(self, folder: Path, tag: str) -> tuple[bytes | None, pl.DataFrame]:
        """(exact bytes where the format has them, the records as a frame)."""
        sink = self.outputs[tag]
        kind = getattr(sink, "type", "file")
        fmt = getattr(sink, "format", "jsonl")
        drop = list(getattr(sink, "processing_time_columns", []) or [])
        path = folder / "out" / f"{tag}.{'duckdb' if kind == 'duckdb' else fmt}"
        if kind == "duckdb":
            con = duckdb.connect(str(path), read_only=True)
            try:
                frame = fetch_frame(con, f'select * from "{sink.table}"')
            except duckdb.CatalogException:
                frame = pl.DataFrame()
            finally:
                con.close()
            return None, frame.drop(drop, strict=False)
        if fmt == "parquet":
            return None, read_parquet_dataset(path).drop(drop, strict=False)
        data = path.read_bytes() if path.exists() else b""
        if fmt == "jsonl":
            frame = pl.read_ndjson(data) if data.strip() else pl.DataFrame()
        else:
            frame = pl.read_csv(data) if data.strip() else pl.DataFrame()
        if drop:
            frame = frame.drop(drop, strict=False)
            return None, frame
        return data, frame

    def same_outputs(self, a: Path, b: Path) -> list[str]:
        diffs = []
        for tag in self.outputs:
            raw_a, fa = self.read_output(a, tag)
            raw_b, fb = self.read_output(b, tag)
            if raw_a is not None and raw_b is not None:
                if raw_a != raw_b:
                    diffs.append(f"{tag}: bytes differ ({len(raw_a)} vs {len(raw_b)} bytes)")
            elif not fa.equals(fb):
                diffs.append(f"{tag}: records differ ({fa.height} vs {fb.height})")
        return diffs

    # -- keys and late paths --------------------------------------------------------------
    def output_keys(self) -> dict[str, list[str]]:
        """Tag -> the columns that identify a record exactly once."""
        keys: dict[str, list[str]] = {}
        for tag, sink in self.outputs.items():
            if sink is not None and sink.key:
                keys[tag] = list(sink.key)
        for name, stream in self.spec.all_streams.items():
            if name not in self.outputs or name in keys:
                continue
            ts_col = None
            for step in stream.steps:
                if isinstance(step, WatermarkStep):
                    ts_col = step.timestamp_column
            for step in reversed(stream.steps):
                if isinstance(step, WindowStep):
                    keys[name] = [*step.key_fields, "window_start", "window_end", "revision"]
                    break
                if isinstance(step, KeyedDedupStep):
                    keys[name] = [*step.key_fields, *([ts_col] if ts_col else [])]
                    break
        return keys

    def duplicate_keys(self, folder: Path, keys: dict[str, list[str]]) -> dict[str, int]:
        dups = {}
        for tag, cols in keys.items():
            _, frame = self.read_output(folder, tag)
            if frame.height:
                dups[tag] = frame.height - frame.select(cols).unique().height
        return dups

    def late_paths(self) -> list[tuple[str, str]]:
        """(operator name, its late tag) for every step that writes late records."""
        paths = []
        for stream in self.spec.all_streams.values():
            for step in stream.steps:
                if isinstance(step, LateDataStep) and step.emits_records:
                    paths.append((step.name, step.output_tag))
                elif isinstance(step, WindowStep):
                    paths.append((step.name, step.late_output_tag))
        return paths


def _print(ok: bool, check: str, detail: str) -> bool:
    print(f"{'PASS' if ok else 'FAIL'} {check}: {detail}", flush=True)
    return ok


def verify(spec_path: str, *, overrides: tuple[str, ...] = (), crash_points: int = 10,
           seed: int = 1, workdir: str | None = None, keep: bool = False) -> int:
    """Run the four checks; exit code 0 only if all pass (2 for a bad spec)."""
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="surestream-verify-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        try:
            v = Verifier(spec_path, tuple(overrides), root)
        except SpecError as e:
            print(str(e), file=sys.stderr)
            return 2
        print(f"verifying {v.spec.pipeline!r} ({spec_path}) in {root}", flush=True)
        results = []

        clean1, clean2 = v.run("clean-1"), v.run("clean-2")
        if clean1.error or clean2.error:
            _print(False, "replay identity", f"a clean run failed: {clean1.error or clean2.error}")
            return 1
        diffs = v.same_outputs(clean1.folder, clean2.folder)
        written = clean1.summary["written"]
        results.append(_print(not diffs, "replay identity",
                              "2 clean runs, " + ("outputs byte-identical (" + ", ".join(
                                  f"{t} {n:,}" for t, n in sorted(written.items())) + " records)"
                                  if not diffs else "; ".join(diffs))))

        records = max(1, int(clean1.summary["records_in"]))
        config = {"batch_size": max(1, min(v.spec.runtime.batch_size, records // 16 or 1)),
                  "interval_records": max(1, records // 8)}
        counting = v.run("count", config, count_faults=True)
        if counting.error:
            _print(False, "crash recovery", f"the run with small batches failed: "
                                            f"{counting.error}")
            return 1
        counts = json.loads((counting.folder / "fault_counts.json").read_text())
        rng = random.Random(seed)
        points = [p for p in faults.POINTS if counts.get(p, 0) > 0]
        plan = [(points[i % len(points)], rng.randint(1, counts[points[i % len(points)]]))
                for i in range(crash_points)]
        rng.shuffle(plan)
        crash_diffs, crashed, by_point = [], 0, Counter()
        runs = [clean1, clean2, counting]
        for i, (point, hit) in enumerate(plan):
            outcome = v.run(f"crash-{i:03d}", config, fault=f"{point}:{hit}")
            crashed += outcome.crashed
            by_point[POINT_LABELS[point]] += 1
            if outcome.error:
                crash_diffs.append(f"#{i} {point}:{hit}: recovery failed: {outcome.error}")
                continue
            runs.append(outcome)
            d = v.same_outputs(clean1.folder, outcome.folder)
            if d or not outcome.crashed:
                crash_diffs.append(f"#{i} {point}:{hit}: " + ("; ".join(d) if d else
                                                               "did not crash"))
        base = v.same_outputs(clean1.folder, counting.folder)
        detail = (f"{crashed}/{len(plan)} runs killed with SIGKILL and restarted, each equal to "
                  f"the clean run (batch {config['batch_size']}, checkpoint every "
                  f"{config['interval_records']} records; kill points: " + ", ".join(
                      f"{n} {label}" for label, n in by_point.most_common()) + ")")
        results.append(_print(not crash_diffs and not base, "crash recovery",
                              detail if not crash_diffs and not base
                              else "; ".join(base + crash_diffs)))

        keys = v.output_keys()
        dup_report = {}
        for r in runs:
            for tag, n in v.duplicate_keys(r.folder, keys).items():
                dup_report[tag] = max(dup_report.get(tag, 0), n)
        results.append(_print(
            not any(dup_report.values()), "no duplicate keys",
            ", ".join(f"{tag} by ({', '.join(keys[tag])}): {n} duplicates"
                      for tag, n in sorted(dup_report.items()))
            + f" in {len(runs)} runs" if keys else "no keyed exactly-once output to check"))

        late_lines, late_ok = [], True
        ops = clean1.summary["operator_counters"]
        for op, tag in v.late_paths():
            counted = ops.get(op, {}).get("late", 0)
            out = written.get(tag, 0)
            late_ok &= counted == out
            late_lines.append(f"{tag} {out:,} records = {op}.late {counted:,}"
                              if counted == out else f"{tag} {out:,} records != {op}.late "
                              f"{counted:,}")
        results.append(_print(late_ok, "late path counted",
                              "; ".join(late_lines) if late_lines else "no late path"))
        return 0 if all(results) else 1
    finally:
        if not keep and not workdir:
            shutil.rmtree(root, ignore_errors=True)
