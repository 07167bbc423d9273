"""A Flink job as data: the configuration and SQL statements the driver runs.

The translation runs in surestream's own process; PyFlink cannot (apache-flink 2.3.0 does not
install beside surestream's pyarrow, docs/flink.md). So a translated spec is written as a JSON
job description and handed to ``driver`` under the Flink environment's interpreter. The
description holds only plain JSON values: what the driver needs, and what a reader needs to
see what ran (it is kept beside the Flink checkpoints).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class FlinkJob:
    """One Flink job: ``config`` (Flink's key/values), ``ddl`` run in order, then ``inserts``
    submitted as one statement set (one job: every output sees the same watermarks).

    ``functions``: Python UDFs to register before the DDL, each ``{"name", "module",
    "attribute"}`` naming a module-level ``pyflink`` UDF object, or, with a ``kind``
    (map / filter / map_batches), a user function wrapped by ``udf_adapter`` (issue 15
    item 2). ``python_files``: the user's modules / packages; ``submit.run_jobs`` copies
    them next to the job and puts the copy on ``python_path``.
    ``wait``: the driver waits for the job to end (a bounded input, or the local
    mini-cluster); otherwise it prints the job id and returns (a remote cluster).
    """

    name: str
    config: dict[str, str]
    ddl: list[str]
    inserts: list[str]
    functions: list[dict[str, Any]] = field(default_factory=list)
    python_path: list[str] = field(default_factory=list)
    python_files: list[str] = field(default_factory=list)
    wait: bool = True

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())
        return path

    @classmethod
    def read(cls, path: Path) -> FlinkJob:
        return cls(**json.loads(Path(path).read_text()))
