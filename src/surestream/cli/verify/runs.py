"""Verify's runs: each a real ``surestream run`` child process in a folder of its own.

A run's spec is the user's spec with every output and the checkpoint folder moved under
``<workdir>/<run name>/`` (relative input paths still resolve against the user's spec
folder, through ``--base-dir``). A run killed by an armed fault point is restarted until it
finishes, as an operator would restart it.

How a run can end, and what verify makes of it:

- it finishes: its summary (counters, records written) is read back;
- the very first run exits 2 (a usage error: an input file that does not exist, user code
  that cannot be imported): the message is the user's, naming *their* spec file rather than
  the run's copy, and verify itself exits 2 -- there is nothing to verify yet;
- it fails otherwise (exit 1, or exit 2 on a restart: a checkpoint it cannot resume from):
  the check it belongs to fails with the run's message;
- it does not finish within the time-out (``--timeout``, per run, restarts included): it is
  killed and reported as such, never as a traceback.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from surestream.cli.verify.kafka_outputs import create_run_topics, is_kafka, run_topic
from surestream.cli.verify.outputs import iceberg_catalog, output_path, run_table
from surestream.cli.verify.postgres_outputs import is_postgres
from surestream.cli.verify.postgres_outputs import run_table as postgres_run_table
from surestream.model.loader import SpecError, apply_override, build_spec, load_spec_dict
from surestream.model.plan_shapes import late_destinations
from surestream.model.problems import SpecProblems
from surestream.model.spec import ERRORS_TAG, PipelineSpec
from surestream.runners.local import faults

#: exit code of a child killed with SIGKILL (by an armed fault point)
KILLED = -9
#: restarts after which a crash run that still has not finished is a failure
MAX_RESTARTS = 5
#: seconds a run may take, restarts included, unless ``--timeout`` says otherwise
DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class CrashConfig:
    """Smaller batches and frequent checkpoints for the crash runs."""

    batch_size: int
    interval_records: int


@dataclass
class RunOutcome:
    name: str
    folder: Path
    summary: dict[str, Any]
    crashed: bool = False
    restarts: int = 0


class RunFailed(Exception):
    """A run exited with an error (not a kill): the pipeline did not get to its end."""

    def __init__(self, run: str, message: str) -> None:
        super().__init__(f"run {run} failed: {message}")
        self.run = run
        self.message = message


class RunUsageError(RunFailed):
    """The first run refused to start (exit 2): a problem with the spec or its inputs."""


class RunTimedOut(RunFailed):
    def __init__(self, run: str, timeout_s: float) -> None:
        Exception.__init__(self, f"run {run} did not finish within {timeout_s:g} s")
        self.run = run
        self.message = str(self)


class Verifier:
    """The user's spec, and the runs made from it under ``workdir``."""

    def __init__(self, spec_path: str, overrides: tuple[str, ...], workdir: Path, *,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.spec_arg = spec_path  # as the user wrote it: messages name this
        self.spec_path = Path(spec_path).resolve()
        doc = load_spec_dict(self.spec_path)
        for assignment in overrides:
            apply_override(doc, assignment)
        # a late step's inline destination as the output it is, so run_doc redirects it
        try:
            self.doc = doc = late_destinations(doc)
        except SpecProblems as e:
            raise SpecError(e.problems, str(spec_path)) from None
        self.spec: PipelineSpec = build_spec(copy.deepcopy(doc), self.spec_path.parent,
                                             str(spec_path))
        self.workdir = workdir
        self.timeout_s = timeout_s
        self.outputs: dict[str, Any] = dict(self.spec.outputs)
        self.outputs.setdefault(ERRORS_TAG, None)
        live = [name for name, src in self.spec.all_sources.items()
                if getattr(src, "type", None) == "kafka" and src.live]
        if live:
            raise SpecError([(f"{'source' if self.spec.source else 'sources.' + n}.stop_at",
                              "verify needs a bounded input, and this Kafka source is live; "
                              "set `stop_at: end` (e.g. --set source.stop_at=end) to verify "
                              "the pipeline over the records there now, or verify a live "
                              "run from its journal: `surestream verify SPEC --journal "
                              "CHECKPOINT_DIR`")
                             for n in live], str(spec_path))
        unsupported = [t for t, s in self.outputs.items()
                       if s is not None and s.type not in ("file", "duckdb", "kafka", "iceberg",
                                                           "delta", "clickhouse", "postgres")]
        if unsupported:
            raise SpecError([(f"outputs.{t}", "verify needs file, duckdb, kafka, iceberg, delta, "
                                              "clickhouse or postgres outputs, not "
                              f"{self.outputs[t].type}") for t in unsupported], str(spec_path))

    # -- the run's spec ---------------------------------------------------------------------
    def run_doc(self, folder: Path, crash: CrashConfig | None) -> dict[str, Any]:
        """The user's spec with outputs and checkpoints inside ``folder``."""
        doc = copy.deepcopy(self.doc)
        doc.setdefault("outputs", {})
        for tag, sink in self.outputs.items():
            entry = doc["outputs"].setdefault(tag, {"type": "file", "format": "jsonl"})
            if is_kafka(sink):
                entry["topic"] = run_topic(folder, tag)  # (kafka_outputs.py)
            elif getattr(sink, "type", None) == "iceberg":
                entry["catalog"] = iceberg_catalog(folder, tag)
            elif getattr(sink, "type", None) == "clickhouse":
                entry["table"] = run_table(folder, sink)  # a table of the run's own
            elif is_postgres(sink):
                entry["table"] = postgres_run_table(folder, sink)  # (postgres_outputs.py)
            else:
                entry["path"] = str(output_path(folder, tag, sink))
        doc.setdefault("checkpoint", {})
        doc["checkpoint"]["dir"] = str(folder / "checkpoints")
        if crash is not None:
            doc["checkpoint"].pop("interval_ms", None)
            doc["checkpoint"]["interval_records"] = crash.interval_records
            doc.setdefault("runtime", {})["batch_size"] = crash.batch_size
        return doc

    def prepare(self, name: str, crash: CrashConfig | None) -> tuple[Path, Path]:
        """A fresh folder for run ``name`` and its spec file."""
        folder = self.workdir / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        create_run_topics(folder, name, self.outputs)
        spec_file = folder / "spec.yaml"
        spec_file.write_text(yaml.safe_dump(self.run_doc(folder, crash), sort_keys=False))
        return folder, spec_file

    # -- running ------------------------------------------------------------------------------
    def child_env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in (faults.ENV, faults.COUNTS_ENV)}
        env.update(extra)
        return env

    def invoke(self, name: str, argv: list[str], env_extra: dict[str, str],
               deadline: float) -> subprocess.CompletedProcess:
        """Run a child until it ends or ``deadline`` (monotonic) passes."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RunTimedOut(name, self.timeout_s)
        try:
            return subprocess.run([sys.executable, *argv], env=self.child_env(env_extra),
                                  capture_output=True, text=True, timeout=remaining)
        except subprocess.TimeoutExpired:  # the child has been killed
            raise RunTimedOut(name, self.timeout_s) from None

    def user_message(self, stderr: str, spec_file: Path) -> str:
        """The child's last error lines, naming the user's spec instead of the run's copy."""
        lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
        text = "\n".join(lines[-5:]).replace(str(spec_file), self.spec_arg)
        return text[-1000:]

    def run(self, name: str, crash: CrashConfig | None = None, fault: str | None = None,
            count_faults: bool = False, first: bool = False) -> RunOutcome:
        """Run ``name`` to its end (restarting it after a kill); raises ``RunFailed``."""
        folder, spec_file = self.prepare(name, crash)
        summary = folder / "summary.json"
        env = {faults.ENV: fault} if fault else {}
        if count_faults:
            env[faults.COUNTS_ENV] = str(folder / "fault_counts.json")
        argv = ["-m", "surestream", "run", str(spec_file), "--base-dir",
                str(self.spec_path.parent), "--summary", str(summary)]
        deadline = time.monotonic() + self.timeout_s
        restarts = 0
        while True:
            proc = self.invoke(name, argv, env if restarts == 0 else {}, deadline)
            if proc.returncode not in (0, KILLED):
                message = self.user_message(proc.stderr, spec_file)
                if first and restarts == 0 and proc.returncode == 2:
                    raise RunUsageError(name, message)
                raise RunFailed(name, f"exit {proc.returncode}: {message}")
            if proc.returncode == 0 and summary.exists():
                break
            restarts += 1
            if restarts > MAX_RESTARTS:
                raise RunFailed(name, f"still not done after {MAX_RESTARTS} restarts")
        return RunOutcome(name, folder, json.loads(summary.read_text()), restarts > 0, restarts)
