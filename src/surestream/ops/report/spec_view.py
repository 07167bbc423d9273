"""The pipeline of a finished run, read from its history as plain data.

A run's history (``runners/local/telemetry``) keeps the spec as JSON. The report reads it
as data -- sources, streams and their steps, outputs and where they are -- and does not
validate it into a ``PipelineSpec``: validating resolves the user code a spec names
(importing modules, running their top-level code), and a report must be safe to make of a
run folder copied from elsewhere. The few derived views it needs (the stream ``main`` of
top-level ``steps``, the default ``errors`` file beside the checkpoint folder, relative
paths) are the spec model's own rules, restated here over the dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ERRORS_TAG = "errors"
MAIN_STREAM = "main"


@dataclass(frozen=True)
class StepView:
    """One step: its operator name, its type and the rest of its keys as given."""

    name: str
    type: str
    keys: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamView:
    name: str
    inputs: tuple[str, ...]
    steps: tuple[StepView, ...]

    @property
    def is_union(self) -> bool:
        return len(self.inputs) > 1


@dataclass(frozen=True)
class OutputView:
    """One output: its tag, sink type, and where it is (files and DuckDB) when local."""

    tag: str
    type: str
    format: str | None = None
    path: Path | None = None
    table: str | None = None
    #: an error output: ``errors`` or one with ``error_kinds``
    holds_errors: bool = False
    #: output field -> error field, for an error output that renames or picks fields
    error_fields: dict[str, str] | None = None

    def where(self) -> str:
        if self.path is not None:
            return f"{self.path}" + (f" (table {self.table})" if self.table else "")
        return self.type


class SpecView:
    """The spec JSON of a run as sources, streams and outputs (see the module docstring).

    ``base_dir``: where the spec's relative paths resolve; ``run_dir``: the checkpoint
    folder the history was read from (the default errors file is beside it)."""

    def __init__(self, spec: dict[str, Any], base_dir: Path, run_dir: Path) -> None:
        self.raw = spec
        self.pipeline: str = str(spec.get("pipeline", "?"))
        self.base_dir = base_dir
        self.run_dir = run_dir
        sources = dict(spec.get("sources") or {})
        if spec.get("source"):
            sources = {"source": spec["source"], **sources}
        self.sources: dict[str, dict[str, Any]] = sources
        self.streams: dict[str, StreamView] = _streams(spec, next(iter(sources), "source"))
        self.outputs: dict[str, OutputView] = {
            tag: self._output(tag, out) for tag, out in (spec.get("outputs") or {}).items()}
        if ERRORS_TAG not in self.outputs:  # the runner's default: beside the checkpoints
            self.outputs[ERRORS_TAG] = OutputView(
                ERRORS_TAG, "file", "jsonl", run_dir.parent / f"{run_dir.name}-errors.jsonl",
                holds_errors=True)

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p

    def _output(self, tag: str, out: dict[str, Any]) -> OutputView:
        kind = str(out.get("type", "file"))
        fields = out.get("error_fields")
        if isinstance(fields, list):
            fields = {f: f for f in fields}
        holds_errors = tag == ERRORS_TAG or bool(out.get("error_kinds"))
        path = out.get("path")
        local = kind in ("file", "duckdb") and isinstance(path, str) and "://" not in path
        return OutputView(tag, kind, out.get("format", "jsonl") if kind == "file" else None,
                          self.resolve(path) if local else None, out.get("table"),
                          holds_errors, fields)

    @property
    def error_tags(self) -> list[str]:
        return [t for t, o in self.outputs.items() if o.holds_errors]

    def steps(self) -> list[tuple[StreamView, StepView]]:
        """Every step with its stream, streams in spec order."""
        return [(s, st) for s in self.streams.values() for st in s.steps]

    def step(self, name: str) -> StepView | None:
        return next((st for _, st in self.steps() if st.name == name), None)

    def consumers(self, tag: str) -> list[StreamView]:
        """The streams that read ``tag`` (alone or in a union)."""
        return [s for s in self.streams.values() if tag in s.inputs]

    def update_readers(self, tag: str) -> list[StepView]:
        """The steps that read ``tag`` as updates (a broadcast's reference stream)."""
        return [st for _, st in self.steps() if st.keys.get("updates") == tag]


def _streams(spec: dict[str, Any], first_source: str) -> dict[str, StreamView]:
    raw = spec.get("streams") or {}
    if not raw:  # top-level steps: the one stream ``main`` over the source
        raw = {MAIN_STREAM: {"from_": first_source, "steps": spec.get("steps") or []}}
    streams = {}
    for name, s in raw.items():
        src = s.get("from_", s.get("from"))
        inputs = tuple(src) if isinstance(src, list) else (str(src),)
        steps = tuple(StepView(str(st.get("name", st.get("type"))), str(st.get("type")),
                               {k: v for k, v in st.items() if k not in ("name", "type")})
                      for st in s.get("steps") or [])
        streams[name] = StreamView(name, inputs, steps)
    return streams
