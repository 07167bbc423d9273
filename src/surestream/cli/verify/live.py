"""``surestream verify SPEC --journal DIR``: the checks of ``verify`` on a live run.

A live run's input never ends and its batches close on wall time, so two runs of it are
never alike; its journal (``runners/local/journal.py``) says exactly which records went into
which batch. Each check here is made on replays of that journal (``surestream replay``
child processes, each in its own folder under the work folder):

(a) replay identity -- two replays, each equal to the live run's own outputs where they can
    be read (files; Kafka topics through ``connectors/kafka/reader.py``; a DuckDB output
    is compared between the replays only), and equal to each other;
(b) crash recovery -- replays killed with SIGKILL at seeded fault points and run again
    (a replay resumes from its own checkpoint), each equal to the first replay;
(c) no duplicate keys in the replays' keyed outputs, nor in the live run's readable ones;
(d) the late path counted, on the first replay's counters.

Exit codes as for ``verify``: 0 all pass, 1 a check fails, 2 the spec, the journal or the
pipeline is unusable for this (a bounded pipeline: use ``verify`` without ``--journal``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl

from surestream.cli.verify.duplicates import output_keys
from surestream.cli.verify.late_paths import check_late_paths
from surestream.cli.verify.outputs import OutputData, compare_output
from surestream.model.loader import SpecError, load_spec
from surestream.model.spec import ERRORS_TAG, FileSink, PipelineSpec
from surestream.runners.local import faults

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
KILLED = -9
#: runs of one replay (the first and the restarts after kills) before it counts as stuck
MAX_LIVES = 6


def report(ok: bool, check: str, detail: str) -> bool:
    print(f"{'PASS' if ok else 'FAIL'} {check}: {detail}", flush=True)
    return ok


@dataclass
class Replay:
    """One replay's folder and what it reported."""

    name: str
    out: Path
    summary: dict[str, Any]
    crashed: bool = False


class ReplayFailed(Exception):
    pass


class LiveVerifier:
    """The live spec, its journal, and the replays made of it under ``workdir``."""

    def __init__(self, spec_path: str, journal: str, overrides: tuple[str, ...],
                 workdir: Path, timeout_s: float) -> None:
        from surestream.runners.local.journal import JournalError, read_journal
        from surestream.runners.local.runner import is_live

        self.spec_path = spec_path
        self.overrides = overrides
        self.spec: PipelineSpec = load_spec(spec_path, overrides)
        if not is_live(self.spec):
            raise SpecError([("--journal", "this pipeline's input is bounded; verify it "
                              "without --journal (its runs are compared directly)")],
                            spec_path)
        self.journal = Path(journal)
        try:
            plan = read_journal(self.journal)
        except JournalError as e:
            raise SpecError([("--journal", str(e))], spec_path) from e
        if plan.pipeline != self.spec.pipeline:
            raise SpecError([("--journal", f"it is the journal of pipeline {plan.pipeline!r}, "
                              f"not {self.spec.pipeline!r}")], spec_path)
        self.steps = plan.steps
        self.workdir = workdir
        self.timeout_s = timeout_s
        self.outputs: dict[str, Any] = dict(self.spec.outputs)
        self.outputs.setdefault(ERRORS_TAG, FileSink(path=str(self.spec.errors_default_path())))

    # -- replays ----------------------------------------------------------------------------
    def replay(self, name: str, fault: str | None = None, count: bool = False) -> Replay:
        """Replay the journal into ``<workdir>/<name>``; a kill is followed by a restart
        (the replay resumes) until it reaches the journal's end."""
        out = self.workdir / name
        shutil.rmtree(out, ignore_errors=True)
        summary = self.workdir / f"{name}.summary.json"
        argv = [sys.executable, "-m", "surestream", "replay", self.spec_path, "--journal",
                str(self.journal), "--out", str(out), "--summary", str(summary)]
        for assignment in self.overrides:
            argv += ["--set", assignment]
        deadline = time.monotonic() + self.timeout_s
        crashed = False
        for life in range(MAX_LIVES):
            env = {k: v for k, v in os.environ.items()
                   if k not in (faults.ENV, faults.COUNTS_ENV)}
            if fault and life == 0:
                env[faults.ENV] = fault
            if count:
                env[faults.COUNTS_ENV] = str(self.workdir / f"{name}.faults.json")
            try:
                proc = subprocess.run(argv, env=env, capture_output=True, text=True,
                                      timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise ReplayFailed(f"replay {name} did not finish within "
                                   f"{self.timeout_s:g} s") from None
            if proc.returncode == 0:
                return Replay(name, out, json.loads(summary.read_text()), crashed)
            if proc.returncode != KILLED:
                raise ReplayFailed(f"replay {name} failed (exit {proc.returncode}): "
                                   f"{proc.stderr.strip()[-600:]}")
            crashed = True
        raise ReplayFailed(f"replay {name} still not done after {MAX_LIVES} runs")

    # -- outputs ----------------------------------------------------------------------------
    def replayed(self, replay: Replay, tag: str) -> OutputData:
        """What a replay wrote for ``tag`` (``cli/replay.py``: a file output keeps its
        format, any other output is JSON lines)."""
        sink = self.outputs[tag]
        fmt = getattr(sink, "format", "jsonl") if isinstance(sink, FileSink) else "jsonl"
        suffix = Path(sink.path).suffix if isinstance(sink, FileSink) else ".jsonl"
        return _read_file(replay.out / f"{tag}{suffix}", fmt)

    def live(self, tag: str) -> OutputData | None:
        """The live run's own output ``tag``, where it can be read (None: a DuckDB table or
        another kind this check does not read)."""
        sink = self.outputs[tag]
        if isinstance(sink, FileSink):
            return _read_file(Path(sink.path), sink.format)
        if getattr(sink, "type", None) == "kafka":
            from surestream.connectors.kafka.broker import resolve_bootstrap
            from surestream.connectors.kafka.reader import read_committed_records

            records = read_committed_records(
                resolve_bootstrap(sink.bootstrap, f"outputs.{tag}.bootstrap"), sink.topic)
            return OutputData(None, pl.DataFrame(records, infer_schema_length=None)
                              if records else pl.DataFrame())
        return None


def _read_file(path: Path, fmt: str) -> OutputData:
    if fmt == "parquet":
        from surestream.connectors.file_sinks import read_parquet_dataset

        return OutputData(None, read_parquet_dataset(path) if path.exists()
                          else pl.DataFrame())
    data = path.read_bytes() if path.exists() else b""
    if not data.strip():
        return OutputData(data, pl.DataFrame())
    return OutputData(data, pl.read_ndjson(data) if fmt == "jsonl" else pl.read_csv(data))


def _as_records(data: OutputData) -> OutputData:
    """Compared record by record (a Kafka topic has no bytes to compare with a file's)."""
    return OutputData(None, data.frame)


def verify_live(spec_path: str, journal: str, *, overrides: tuple[str, ...] = (),
                crash_points: int = 10, seed: int = 1, workdir: str | None = None,
                keep: bool = False, timeout_s: float = 600.0) -> int:
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="surestream-verify-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        try:
            v = LiveVerifier(spec_path, journal, tuple(overrides), root, timeout_s)
        except SpecError as e:
            print(str(e), file=sys.stderr)
            return EXIT_USAGE
        print(f"verifying the live run of {v.spec.pipeline!r} ({spec_path}) from its journal "
              f"{journal} ({v.steps:,} steps) in {root}", flush=True)
        try:
            return _checks(v, crash_points, seed)
        except ReplayFailed as e:
            report(False, "replay", str(e))
            return EXIT_FAILED
    finally:
        if not keep and not workdir:
            shutil.rmtree(root, ignore_errors=True)


def _differences(v: LiveVerifier, a: Replay, b: Replay) -> list[str]:
    return [d.describe(a.name, b.name) for tag in v.outputs
            if (d := compare_output(tag, v.replayed(a, tag), v.replayed(b, tag)))]


def _checks(v: LiveVerifier, crash_points: int, seed: int) -> int:
    from surestream.cli.verify.command import _crash_plan

    first, second = v.replay("replay-1"), v.replay("replay-2")
    diffs = _differences(v, first, second)
    live_checked = []
    for tag in v.outputs:
        live = v.live(tag)
        if live is None:
            continue
        live_checked.append(tag)
        replayed = v.replayed(first, tag)
        if live.raw is None or replayed.raw is None:
            live, replayed = _as_records(live), _as_records(replayed)
        d = compare_output(tag, live, replayed)
        if d:
            diffs.append(d.describe("live run", "replay"))
    results = [report(not diffs, "replay identity", "; ".join(diffs) if diffs else (
        f"2 replays of {v.steps:,} journaled steps identical, and equal to the live run's "
        f"outputs ({', '.join(sorted(live_checked)) or 'none readable'})"))]

    counting = v.replay("count", count=True)
    counts_file = v.workdir / "count.faults.json"
    counts = json.loads(counts_file.read_text()) if counts_file.exists() else {}
    plan = _crash_plan(counts, crash_points, seed)
    crashes, failures = [], []
    for i, (point, hit) in enumerate(plan):
        run = v.replay(f"crash-{i:03d}", fault=f"{point}:{hit}")
        crashes.append(run)
        if not run.crashed:
            failures.append(f"crash-{i:03d} ({point}:{hit}): did not crash")
        d = _differences(v, first, run)
        if d:
            failures.append(f"crash-{i:03d} ({point}:{hit}): " + "; ".join(d))
    if not plan:
        results.append(report(False, "crash recovery", "not judged: the replay passes no "
                                                       "point where a crash could be injected"))
    else:
        results.append(report(not failures, "crash recovery", "; ".join(failures) or (
            f"{sum(r.crashed for r in crashes)}/{len(plan)} replays killed with SIGKILL and "
            "resumed, each equal to the first replay")))

    keys = output_keys(SimpleNamespace(outputs=v.outputs, spec=v.spec))
    worst: dict[str, int] = {}
    for tag, cols in keys.items():
        frames = [v.replayed(r, tag).frame for r in (first, second, counting, *crashes)]
        live = v.live(tag)
        if live is not None:
            frames.append(live.frame)
        for frame in frames:
            if frame.height and all(c in frame.columns for c in cols):
                worst[tag] = max(worst.get(tag, 0),
                                 frame.height - frame.select(cols).unique().height)
    results.append(report(not any(worst.values()), "no duplicate keys", ", ".join(
        f"{tag} by ({', '.join(keys[tag])}): {worst.get(tag, 0)} duplicates"
        for tag in sorted(keys)) or "no keyed exactly-once output to check"))
    late = check_late_paths(v.spec, first.summary)
    results.append(report(late.ok, "late path counted", late.detail()))
    return EXIT_OK if all(results) else EXIT_FAILED
