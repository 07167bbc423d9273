"""The declarative pipeline spec (PIPELINE_SPEC.md v1), validated with pydantic.

A spec is a YAML/JSON file or a Python dict; the fluent Python API (``surestream.api``)
builds the very same ``PipelineSpec``. Validation is complete before anything runs: unknown
keys, wrong types, impossible values and dangling tags are reported with the field's path.

Streams and tags. A spec has one ``source`` (or several named ``sources``) and either
top-level ``steps`` (one stream called ``main``) or named ``streams``, each reading ``from``
a source, another stream, or a side-output tag (fan-out). A stream's results carry the
stream's name as their tag; operators add side tags (``late``, routes, ...). Every tag goes
to an entry of ``outputs`` or to a stream that reads it: nothing is dropped silently. The
``errors`` tag defaults to a file next to the checkpoint directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from surestream.model.csv_outputs import csv_output_problems
from surestream.model.steps import (
    USER_CODE,
    BroadcastEnrichStep,
    LateDataStep,
    Name,
    Step,
    WatermarkStep,
    WindowStep,
)

MAIN_STREAM = "main"
ERRORS_TAG = "errors"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


FileFormat = Literal["jsonl", "csv", "parquet"]


class FileSource(_Strict):
    """Files: one partition per file of a glob, in sorted order. A list of paths/globs is
    the union of their files, in list order (e.g. trades and market-data ticks)."""

    type: Literal["file"] = "file"
    path: str | Annotated[list[str], Field(min_length=1)] = Field(
        description="a file, a glob (one partition per file, in sorted order) or a list of "
                    "them (their union, in list order); relative to the spec's folder")
    format: FileFormat = Field("jsonl", description="`jsonl` (one JSON object a line), `csv` "
                                                    "(with a header line) or `parquet`")
    schema_: dict[str, Literal["int", "float", "string", "bool"]] | None = Field(
        default=None, alias="schema",
        description="column -> type (`int`, `float`, `string`, `bool`); a value that does "
                    "not fit goes to `errors`. By default the types are inferred once from "
                    "the first lines (docs/concepts.md, 'Input typing')")
    extra_fields: Literal["keep", "error"] = Field(
        "keep", description="fields the schema lacks: `keep` adds them as columns (typed from "
                            "their first values); `error` (a declared schema only) sends "
                            "their records to `errors`")

    @model_validator(mode="after")
    def _extra_fields_need_a_schema(self) -> FileSource:
        if self.extra_fields == "error" and not self.schema_:
            raise ValueError("extra_fields: error needs a declared `schema` (the fields it "
                             "allows); without one, every field is kept")
        return self


class GeneratorSource(_Strict):
    """Records from a Python iterable or callable (``module:function`` in a file spec).

    A run that checkpoints must be able to read the records again from the start to resume:
    a function (called again) or a collection; an iterator or generator object is refused
    then (``PipelineSpec`` checks it, naming the field)."""

    type: Literal["generator", "memory"] = "generator"
    function: Any = Field(
        None, json_schema_extra={"type": "string"},
        description="`generator`: function(**params) returning an iterable of records "
                    "(dicts), replayable from the start: " + USER_CODE)
    records: list[Any] | None = Field(None, description="`memory`: the records themselves "
                                                        "(a value that is not a mapping "
                                                        "goes to `errors`)")
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="`generator`: keyword arguments of `function`")

    @model_validator(mode="after")
    def _one_of(self) -> GeneratorSource:
        if (self.function is None) == (self.records is None):
            raise ValueError("give exactly one of `function` (generator) or `records` (memory)")
        return self


def restartable(source: Any) -> bool:
    """A generator source can be resumed only if it can be read again from its start: a
    function (called again for a fresh iterator) or a collection (a list, a tuple, ...),
    not an iterator or generator object, which would go on from where it stands."""
    if callable(source):
        return True
    try:
        return iter(source) is not source
    except TypeError:
        return False


SourceSpec = Annotated[FileSource | GeneratorSource, Field(discriminator="type")]


#: what each sink type can promise (SEMANTICS §7); `validate` holds specs to it
SINK_GUARANTEES = {"file": "exactly_once", "duckdb": "exactly_once", "memory": "exactly_once",
                   "stdout": "at_least_once"}


class _SinkBase(_Strict):
    exactly_once: bool | None = Field(
        None, description="demand exactly-once delivery: `validate` refuses it for a sink "
                          "that cannot give it (`stdout`)")
    processing_time_columns: list[str] = Field(
        default_factory=list,
        description="columns holding processing time (the wall clock, e.g. from "
                    "`CURRENT_DATE`): they differ between runs, so `verify` leaves them out "
                    "of its replay comparisons")
    key: list[str] | None = Field(
        None, description="the records' idempotency key, which `verify` checks is unique in "
                          "this output; by default the key of the stream's last keyed step "
                          "(dedup or window)")

    @model_validator(mode="after")
    def _guarantee(self) -> _SinkBase:
        promise = SINK_GUARANTEES[self.type]
        if self.exactly_once and promise != "exactly_once":
            raise ValueError(f"exactly_once: a {self.type} sink is {promise}; it cannot "
                             "deliver exactly once (use a file or duckdb sink)")
        return self


class FileSink(_SinkBase):
    """A file, exactly once: JSON lines or CSV with a commit log, or a Parquet dataset
    folder of part files (one per checkpoint with data)."""

    type: Literal["file"] = "file"
    path: str = Field(description="the file (jsonl, csv) or dataset folder (parquet); "
                                  "relative to the spec's folder")
    format: FileFormat = Field("jsonl", description="`jsonl`, `csv` or `parquet`")
    partition_by: list[str] | None = Field(
        None, description="Parquet only: hive-style folders by these columns "
                          "(`date=2026-01-01/symbol=ABC/part-<checkpoint>.parquet`)")

    @model_validator(mode="after")
    def _partitioning(self) -> FileSink:
        if self.partition_by and self.format != "parquet":
            raise ValueError("partition_by needs format: parquet (a dataset folder)")
        for column in self.partition_by or ():
            if not column or column.startswith(".") or any(c in column for c in "/=\\\0"):
                raise ValueError(
                    f"partition_by: {column!r} cannot name a partition folder "
                    "(`<column>=<value>`): a column name there may not be empty, start with "
                    "'.' (a hidden folder readers skip) or hold '/', '=', '\\' or NUL; "
                    "rename the column first (e.g. in a with_columns step)")
        return self


class DuckDBSink(_SinkBase):
    """A DuckDB table, exactly once (staging table and commit marker in one transaction)."""

    type: Literal["duckdb"] = "duckdb"
    path: str = Field(description="the database file; relative to the spec's folder")
    table: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = Field(
        description="the table, created from the first records' columns if missing")


class MemorySink(_SinkBase):
    """Collects records in memory (tests, notebooks): read them from the run result."""

    type: Literal["memory"] = "memory"


class StdoutSink(_SinkBase):
    """Prints records as JSON lines (debugging); at-least-once: printed lines stay printed."""

    type: Literal["stdout"] = "stdout"


SinkSpec = Annotated[FileSink | DuckDBSink | MemorySink | StdoutSink,
                     Field(discriminator="type")]


class StreamSpec(_Strict):
    """A named stream: steps applied in order to what it reads. Its results carry the
    stream's name as their tag."""

    from_: str = Field(alias="from",
                       description="what the stream reads: a source, another stream (its "
                                   "results), or a side-output tag such as `late` (fan-out)")
    steps: list[Step] = Field(default_factory=list, description="applied in order")


class CheckpointSpec(_Strict):
    """When and where checkpoints are taken (docs/exactly-once.md)."""

    dir: str | None = Field(None, description="the checkpoint folder; default "
                                              "`.surestream/checkpoints/<pipeline>`, relative "
                                              "to the spec's folder")
    interval_ms: Annotated[int, Field(gt=0, strict=True)] | None = Field(
        None, description="take a checkpoint every this much wall time (between batches)")
    interval_records: Annotated[int, Field(gt=0, strict=True)] | None = Field(
        None, description="take a checkpoint every this many input records")
    retain: Annotated[int, Field(ge=1, strict=True)] = Field(
        3, description="checkpoints kept on disk")

    @property
    def periodic(self) -> bool:
        """Checkpoints during the run (a run may then have to resume from one)."""
        return self.interval_ms is not None or self.interval_records is not None


class RuntimeSpec(_Strict):
    """Speed knobs: results never depend on them."""

    batch_size: Annotated[int, Field(gt=0, le=10_000_000, strict=True)] = Field(
        65536, description="records per micro-batch (an integer: `true` is refused)")
    interleave_records: Annotated[int, Field(gt=0, strict=True)] = Field(
        1024, description="records taken from one partition before the next one's turn "
                          "(a fixed interleaving, so results never depend on timing)")


class PipelineSpec(_Strict):
    """A pipeline: sources, streams of steps, and an output for every tag."""

    pipeline: Name = Field(description="the pipeline's name: it identifies its checkpoints "
                                       "and appears in error records")
    source: SourceSpec | None = Field(None, description="the one source (read by the "
                                                        "top-level `steps`, or by streams "
                                                        "as `from: source`)")
    sources: dict[Name, SourceSpec] = Field(default_factory=dict,
                                            description="several named sources, instead of "
                                                        "`source`")
    steps: list[Step] = Field(default_factory=list,
                              description="the steps of the one stream `main` over the "
                                          "source, in order (or use `streams`)")
    streams: dict[Name, StreamSpec] = Field(default_factory=dict,
                                            description="named streams, instead of `steps`")
    outputs: dict[str, SinkSpec] = Field(
        default_factory=dict,
        description="tag -> sink; every tag produced must go to an output or a stream; "
                    "`errors` defaults to a file next to the checkpoint folder")
    checkpoint: CheckpointSpec = Field(CheckpointSpec(), description="checkpointing")
    runtime: RuntimeSpec = Field(RuntimeSpec(), description="speed knobs")
    #: where relative paths resolve (the spec file's folder); not a spec key
    base_dir: SkipJsonSchema[str | None] = Field(default=None, exclude=True)

    # -- derived views ------------------------------------------------------------------
    @property
    def all_sources(self) -> dict[str, Any]:
        return {"source": self.source, **self.sources} if self.source else dict(self.sources)

    @property
    def all_streams(self) -> dict[str, StreamSpec]:
        """Streams by name; top-level ``steps`` are the stream ``main`` over the source."""
        if self.streams:
            return dict(self.streams)
        src = next(iter(self.all_sources), "source")
        return {MAIN_STREAM: StreamSpec(**{"from": src, "steps": self.steps})}

    def checkpoint_dir(self) -> Path:
        return self.resolve(self.checkpoint.dir or f".surestream/checkpoints/{self.pipeline}")

    def errors_default_path(self) -> Path:
        cp = self.checkpoint_dir()
        return cp.parent / f"{cp.name}-errors.jsonl"

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() or self.base_dir is None else Path(self.base_dir) / p

    def output_path_problems(self) -> list[tuple[str, str]]:
        """``(field, reason)`` for each output or checkpoint path that is not its own: two
        outputs on one path, an output that is (or holds) an input, one inside another's
        dataset or checkpoint folder (``model/output_paths.py``). Paths resolve against
        ``base_dir``, so the loader checks this once that is set, and the runner again."""
        from surestream.model.output_paths import output_path_problems

        return output_path_problems(self)

    # -- whole-spec rules ---------------------------------------------------------------
    @model_validator(mode="after")
    def _check_graph(self) -> PipelineSpec:
        if self.source is not None and self.sources:
            raise ValueError("give either `source` or `sources`, not both")
        if not self.all_sources:
            raise ValueError("no source: add `source:` (or `sources:`)")
        if self.checkpoint.periodic:
            _check_resumable_generators(self)
        if self.steps and self.streams:
            raise ValueError("give either top-level `steps` or `streams`, not both")
        streams = self.all_streams
        produced: dict[str, str] = {}  # tag -> producer description
        for sname, stream in streams.items():
            produced[sname] = f"stream {sname!r}"
            for step in stream.steps:
                for tag in step_side_tags(step):
                    if tag in produced and tag != ERRORS_TAG:
                        raise ValueError(f"tag {tag!r} of step {step.name!r} is already "
                                         f"produced by {produced[tag]}; tags must be unique")
                    produced[tag] = f"step {step.name!r}"
        names = [s.name for st in streams.values() for s in st.steps]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"step names must be unique (they identify state): {dup}")
        readable = set(produced) | set(self.all_sources)
        consumed: set[str] = set()
        for sname, stream in streams.items():
            if stream.from_ not in readable:
                raise ValueError(f"streams.{sname}.from: {stream.from_!r} is neither a source "
                                 f"nor a stream or tag (known: {sorted(readable)})")
            if stream.from_ == sname:
                raise ValueError(f"streams.{sname}.from: a stream cannot read itself")
            consumed.add(stream.from_)
            _check_time_order(sname, stream.steps,
                              has_time=stream.from_ not in self.all_sources)
            for step in stream.steps:
                if isinstance(step, BroadcastEnrichStep) and step.updates is not None:
                    if step.updates not in readable:
                        raise ValueError(f"step {step.name!r}: updates stream "
                                         f"{step.updates!r} does not exist")
                    consumed.add(step.updates)
        for tag in self.outputs:
            if tag not in produced and tag != ERRORS_TAG:
                raise ValueError(f"outputs.{tag}: no stream or step produces tag {tag!r} "
                                 f"(produced: {sorted(produced)})")
        missing = [t for t in produced if t not in self.outputs and t not in consumed
                   and t != ERRORS_TAG]
        if missing:
            raise ValueError(
                "these tags are produced but go nowhere (add them under `outputs` or read them "
                f"from a stream; nothing is dropped silently): {sorted(missing)}")
        problems = csv_output_problems(self)
        if problems:
            raise ValueError("; ".join(f"{field}: {reason}" for field, reason in problems))
        return self


def _check_resumable_generators(spec: PipelineSpec) -> None:
    """With periodic checkpoints a run may resume: its generators must restart."""
    for name, src in spec.all_sources.items():
        if isinstance(src, GeneratorSource) and src.function is not None \
                and not isinstance(src.function, str) and not restartable(src.function):
            where = "source" if spec.source is not None else f"sources.{name}"
            raise ValueError(
                f"{where}.function: a {type(src.function).__name__} object cannot be read "
                "again from its start, so a run cannot resume from a checkpoint; give a "
                "function that returns a fresh iterator (or `records: [...]`), or turn "
                "off checkpoint.interval_ms / interval_records")


def step_side_tags(step: Any) -> list[str]:
    """The side-output tags a step may emit to (besides its stream's results and errors)."""
    from surestream.model.steps import KeyedDedupStep, ProcessStep, RouteStep

    if isinstance(step, LateDataStep):
        return [step.output_tag] if step.emits_records else []
    if isinstance(step, WindowStep):
        return [step.late_output_tag]
    if isinstance(step, KeyedDedupStep):
        return [step.duplicates_output_tag] if step.duplicates_output_tag else []
    if isinstance(step, RouteStep):
        tags = {t for t in step.routes.values() if t != "main"}
        if step.default and step.default != "main":
            tags.add(step.default)
        return sorted(tags)
    if isinstance(step, ProcessStep):
        return list(step.side_outputs)
    return []


def _check_time_order(stream: str, steps: list[Any], has_time: bool) -> None:
    """Steps that need event time must come after a watermark step (a stream that reads
    another stream's output inherits its event time)."""
    from surestream.model.steps import KeyedDedupStep

    for step in steps:
        if isinstance(step, WatermarkStep):
            has_time = True
        elif isinstance(step, LateDataStep | KeyedDedupStep | WindowStep) and not has_time:
            raise ValueError(f"streams.{stream}: step {step.name!r} ({step.type}) needs event "
                             "time; put a `watermark` step before it")
