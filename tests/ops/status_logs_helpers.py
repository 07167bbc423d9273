"""Helpers of the logs and status tests: a small bounded pipeline over a JSON-lines file
(with a few lines that do not parse), and running `surestream` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

#: the input: GOOD records, BAD of them lines that are not JSON (errors)
GOOD, BAD = 3_000, 3
INTERVAL = 500  # records between checkpoints


def write_pipeline(folder: Path, pipeline: str = "logs-demo", main_format: str = "jsonl"
                   ) -> Path:
    """A spec reading ``in.jsonl`` (``GOOD`` records, ``BAD`` unparsable lines) through a
    watermark and a dedup into ``out/main.jsonl`` (or the Parquet dataset ``out/main``),
    checkpointing every ``INTERVAL`` records; its checkpoint folder is ``folder/cp``."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": i % 2_500, "ts": 1_000 * i}) for i in range(GOOD)]
    for k in range(BAD):
        lines.insert(700 * (k + 1), "{not json")
    (folder / "in.jsonl").write_text("\n".join(lines) + "\n")
    spec = {
        "pipeline": pipeline,
        "source": {"type": "file", "path": "in.jsonl"},
        "steps": [{"type": "watermark", "timestamp_column": "ts"},
                  {"type": "keyed_dedup", "key_fields": ["id"], "time_window_ms": 10_000_000}],
        "outputs": {"main": {"type": "file", "format": main_format,
                             "path": "out/main" if main_format == "parquet"
                             else "out/main.jsonl"},
                    "errors": {"type": "file", "path": "out/errors.jsonl"}},
        "checkpoint": {"dir": "cp", "interval_records": INTERVAL},
        "runtime": {"batch_size": 100, "max_error_ratio": 0.5},
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def surestream(*args: str, env: dict[str, str] | None = None, timeout: float = 120
               ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surestream", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def line_count(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0
