"""The fluent, typed Python API. It builds the same ``PipelineSpec`` a YAML file does.

    p = Pipeline("trades-vwap")
    trades = p.read_files("data/trades.jsonl")
    windows = (trades.watermark("timestamp_ms", max_out_of_orderness_ms=5000)
                     .late_data(output_tag="late")
                     .dedup(["trade_id"], time_window_ms=600_000, state_ttl_ms=3_600_000)
                     .window("vwap_1m", key_fields=["symbol"], kind="tumbling", size_ms=60_000,
                             aggregations={"trades": "count()",
                                           "vwap": "vwap(price, quantity)"}))
    windows.to(jsonl("out/windows.jsonl"))
    p.output("late", jsonl("out/late.jsonl"))
    p.output("late_window", jsonl("out/late_window.jsonl"))
    result = p.run()

Each ``Stream`` method appends one step and returns the stream. ``stream.branch(name)``
starts a new stream reading this one's results (fan-out); ``p.stream(name, from_tag)``
reads a side-output tag. ``p.spec()`` (and so ``p.run()``) checks the pipeline as
``surestream validate`` checks a file: a mistake is a ``SpecError`` naming its path.

``result.rows(tag)`` gives the records any output held when the run ended: kept in memory
for ``memory()``, read back from the file, Parquet dataset or DuckDB table otherwise (the
default errors file too); an unknown tag raises ``KeyError`` naming the outputs.

Checkpoints go to ``checkpoint_dir``, by default ``.surestream/checkpoints/<name>`` in the
current folder, where the next run of the script resumes from them -- unless every output
is in memory (``memory()``): such outputs end with the process, so a pipeline made only of
them checkpoints into a temporary folder removed when the run ends (it could never resume
correctly), and keeps its error records in memory too (``result.rows("errors")``) instead
of in a file beside those checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from surestream.io.scratch import remove_scratch_dir, scratch_dir
from surestream.model.loader import build_spec
from surestream.model.quality_rules import DEFAULT_QUARANTINE_TAG, DataQualityStep
from surestream.model.spec import (
    ERRORS_TAG,
    DuckDBSink,
    FileSink,
    FileSource,
    GeneratorSource,
    MemorySink,
    PipelineSpec,
)
from surestream.model.steps import (
    MAX_WINDOWS_PER_RECORD,
    AggregateStep,
    BroadcastEnrichStep,
    FilterStep,
    KeyedDedupStep,
    LateDataStep,
    MapBatchesStep,
    MapStep,
    ProcessingTimeStep,
    ProcessStep,
    RouteStep,
    WatermarkStep,
    WhereStep,
    WindowStep,
    WithColumnsStep,
)


def jsonl(path: str, *, key: list[str] | None = None, error_kinds: list[str] | None = None,
          error_fields: list[str] | dict[str, str] | None = None) -> FileSink:
    """A JSON-lines file; with ``error_kinds``, an error output (a dead-letter file for
    those kinds of error, shaped by ``error_fields``; docs/concepts.md, 'Errors')."""
    return FileSink(path=path, format="jsonl", key=key, error_kinds=error_kinds,
                    error_fields=error_fields)


def parquet(path: str, *, key: list[str] | None = None,
            partition_by: list[str] | None = None,
            processing_time_columns: list[str] | None = None) -> FileSink:
    """A Parquet dataset folder (one part file per checkpoint with data, in hive-style
    ``col=value`` folders with ``partition_by``)."""
    return FileSink(path=path, format="parquet", key=key, partition_by=partition_by,
                    processing_time_columns=processing_time_columns or [])


def csv(path: str, *, key: list[str] | None = None) -> FileSink:
    return FileSink(path=path, format="csv", key=key)


def duckdb_table(path: str, table: str, *, key: list[str] | None = None) -> DuckDBSink:
    return DuckDBSink(path=path, table=table, key=key)


def memory() -> MemorySink:
    """Collect records in memory: read them with ``result.rows(tag)``."""
    return MemorySink()


class Stream:
    """A named stream under construction: steps in order, results tagged with its name."""

    def __init__(self, pipeline: Pipeline, name: str, from_: str | list[str]) -> None:
        self.pipeline = pipeline
        self.name = name
        self.from_ = from_
        self.steps: list[Any] = []

    def _add(self, step: Any) -> Stream:
        self.steps.append(step)
        return self

    def watermark(self, timestamp_column: str, *, max_out_of_orderness_ms: int = 0,
                  idle_source_timeout_ms: int | None = None, name: str = "watermark",
                  timestamp_unit: str = "auto", **valid_range: int | str) -> Stream:
        """``valid_range``: ``min_timestamp`` / ``max_timestamp`` (default 1900 to 2500)."""
        return self._add(WatermarkStep(
            name=name, timestamp_column=timestamp_column, timestamp_unit=timestamp_unit,
            max_out_of_orderness_ms=max_out_of_orderness_ms,
            idle_source_timeout_ms=idle_source_timeout_ms, **valid_range))

    def late_data(self, output_tag: str = "late", *, strategy: str = "quarantine",
                  name: str = "late_data", flag_column: str = "is_late") -> Stream:
        """Late records (``ts <= W``) to ``output_tag``, or with ``strategy="flag"`` kept in
        the stream with ``flag_column`` true."""
        return self._add(LateDataStep(name=name, output_tag=output_tag, strategy=strategy,
                                      flag_column=flag_column))

    def dedup(self, key_fields: list[str], *, time_window_ms: int,
              state_ttl_ms: int | None = None, strategy: str = "first", name: str = "dedup",
              duplicates_output_tag: str | None = None, on_null_key: str = "error",
              occurrences_output_tag: str | None = None) -> Stream:
        return self._add(KeyedDedupStep(
            name=name, key_fields=key_fields, time_window_ms=time_window_ms,
            state_ttl_ms=state_ttl_ms, strategy=strategy,
            duplicates_output_tag=duplicates_output_tag, on_null_key=on_null_key,
            occurrences_output_tag=occurrences_output_tag))

    def window(self, name: str, *, aggregations: dict[str, Any] | str,
               key_fields: list[str] | None = None, kind: str = "tumbling",
               size_ms: int | None = None, slide_ms: int | None = None,
               gap_ms: int | None = None, offset_ms: int = 0, allowed_lateness_ms: int = 0,
               late_output_tag: str = "late_window",
               max_windows_per_record: int = MAX_WINDOWS_PER_RECORD,
               output_mode: str = "append") -> Stream:
        return self._add(WindowStep(
            name=name, key_fields=key_fields or [], kind=kind, size_ms=size_ms,
            slide_ms=slide_ms, gap_ms=gap_ms, offset_ms=offset_ms,
            allowed_lateness_ms=allowed_lateness_ms, late_output_tag=late_output_tag,
            aggregations=aggregations, max_windows_per_record=max_windows_per_record,
            output_mode=output_mode))

    def aggregate(self, name: str, *, aggregations: dict[str, Any] | str,
                  key_fields: list[str] | None = None, output_mode: str = "update",
                  state_timeout_ms: int | None = None) -> Stream:
        """Running aggregates per key, no window (docs/etl.md, "Output modes")."""
        return self._add(AggregateStep(
            name=name, key_fields=key_fields or [], aggregations=aggregations,
            output_mode=output_mode, state_timeout_ms=state_timeout_ms))

    def route(self, field: str, routes: dict[str, str], *, default: str | None = None,
              name: str = "route") -> Stream:
        return self._add(RouteStep(name=name, field=field, routes=routes, default=default))

    def with_columns(self, columns: dict[str, str], *, name: str = "with_columns") -> Stream:
        """Add or replace columns with SQL expressions (vectorized, in order)."""
        return self._add(WithColumnsStep(name=name, columns=columns))

    def where(self, condition: str, *, name: str = "where") -> Stream:
        """Keep the records for which a SQL condition holds (the others are counted)."""
        return self._add(WhereStep(name=name, condition=condition))

    def map_batches(self, function: Callable[[Any], Any] | str, *,
                    name: str = "map_batches") -> Stream:
        """A vectorized user function over the batch's polars DataFrame (same rows out)."""
        return self._add(MapBatchesStep(name=name, function=function))

    def processing_time(self, column: str, *, unit: str = "ms",
                        name: str = "processing_time") -> Stream:
        """Add ``column``: the wall clock, one value per checkpoint interval, stored with
        the checkpoint (a recovery reproduces it); list it in the output's
        ``processing_time_columns``."""
        return self._add(ProcessingTimeStep(name=name, column=column, unit=unit))

    def data_quality(self, rules: list[dict[str, Any]], *, name: str = "data_quality",
                     quarantine_output_tag: str = DEFAULT_QUARANTINE_TAG) -> Stream:
        """Check records against rules (docs/etl.md): each rule a dict as in a spec
        (``{"name": ..., "rule": "range", "column": ..., "max": ...}``)."""
        return self._add(DataQualityStep(name=name, rules=rules,
                                         quarantine_output_tag=quarantine_output_tag))

    def map(self, function: Callable[[dict], Any] | str, *, name: str = "map") -> Stream:
        return self._add(MapStep(name=name, function=function))

    def filter(self, function: Callable[[dict], bool] | str, *, name: str = "filter") -> Stream:
        return self._add(FilterStep(name=name, function=function))

    def process(self, function: Any, *, key_fields: list[str], side_outputs: Iterable[str] = (),
                params: dict[str, Any] | None = None, name: str = "process") -> Stream:
        return self._add(ProcessStep(name=name, key_fields=key_fields, function=function,
                                     side_outputs=list(side_outputs), params=params or {}))

    def enrich(self, *, key_fields: list[str], fields: list[str],
               reference: dict[str, Any] | None = None, updates: Stream | str | None = None,
               unknown_value: Any = "UNKNOWN", refresh_interval_ms: int | None = None,
               name: str = "enrich") -> Stream:
        upd = updates.name if isinstance(updates, Stream) else updates
        return self._add(BroadcastEnrichStep(
            name=name, key_fields=key_fields, fields=fields, reference=reference,
            updates=upd, unknown_value=unknown_value,
            refresh_interval_ms=refresh_interval_ms))

    def branch(self, name: str) -> Stream:
        """A new stream that reads this stream's results (fan-out)."""
        return self.pipeline.stream(name, self.name)

    def to(self, sink: Any) -> Stream:
        """Send this stream's results to ``sink``."""
        self.pipeline.output(self.name, sink)
        return self


class Pipeline:
    """A pipeline under construction; ``spec()`` gives the validated ``PipelineSpec``."""

    def __init__(self, name: str, *, batch_size: int = 65536,
                 checkpoint_dir: str | None = None,
                 checkpoint_interval_ms: int | None = None) -> None:
        self.name = name
        self.sources: dict[str, Any] = {}
        self.streams: dict[str, Stream] = {}
        self.outputs: dict[str, Any] = {}
        self.runtime: dict[str, Any] = {"batch_size": batch_size}
        self.checkpoint: dict[str, Any] = {"dir": checkpoint_dir} if checkpoint_dir else {}
        if checkpoint_interval_ms is not None:
            self.checkpoint["interval_ms"] = checkpoint_interval_ms

    def _source(self, spec: Any, stream: str, source: str) -> Stream:
        self.sources[source] = spec
        return self.stream(stream, source)

    def read_files(self, path: str | list[str], *, format: str = "jsonl",
                   stream: str | None = "main", source: str = "source",
                   schema: dict[str, str] | None = None) -> Stream | None:
        """Files as a source (a glob or a list of paths: one partition per file). With
        ``stream=None`` only the source is declared (read it with ``p.stream(name, source)``)."""
        spec = FileSource(path=path, format=format, schema=schema)
        if stream is None:
            self.sources[source] = spec
            return None
        return self._source(spec, stream, source)

    def read_records(self, records: list[dict[str, Any]], *, stream: str = "main",
                     source: str = "source") -> Stream:
        return self._source(GeneratorSource(type="memory", records=records), stream, source)

    def read_generator(self, function: Callable[..., Iterable[dict]] | str, *,
                       stream: str = "main", source: str = "source", **params: Any) -> Stream:
        return self._source(GeneratorSource(function=function, params=params), stream, source)

    def stream(self, name: str, from_: str | list[str]) -> Stream:
        """A new named stream reading a source, a stream or a side-output tag."""
        if name in self.streams:
            raise ValueError(f"stream {name!r} exists already")
        s = self.streams[name] = Stream(self, name, from_)
        return s

    def union(self, name: str, inputs: Iterable[Stream | str]) -> Stream:
        """A new stream holding the records of several streams or tags (``from`` as a
        list): in the order they were produced, ties in the order given."""
        return self.stream(name, [i.name if isinstance(i, Stream) else i for i in inputs])

    def output(self, tag: str, sink: Any) -> Pipeline:
        self.outputs[tag] = sink
        return self

    def in_memory_only(self) -> bool:
        """Whether every output is a memory collector (nothing outlives the process)."""
        return bool(self.outputs) and all(isinstance(s, MemorySink)
                                          for s in self.outputs.values())

    def spec(self) -> PipelineSpec:
        """The validated spec, checked as ``surestream validate`` checks a file: a mistake
        raises ``SpecError`` with the path of each problem (``streams.main.steps[2]...``),
        and user code is resolved and checked. A pipeline whose outputs are all in memory
        and that names no checkpoint folder gets a new temporary one (and its errors in
        memory) each call."""
        outputs, checkpoint = dict(self.outputs), dict(self.checkpoint)
        if self.in_memory_only() and not checkpoint.get("dir"):
            outputs.setdefault(ERRORS_TAG, MemorySink())
            checkpoint["dir"] = scratch_dir(f"surestream-{self.name}-")
        return build_spec({
            "pipeline": self.name,
            "sources": self.sources,
            "streams": {n: {"from": s.from_, "steps": s.steps} for n, s in self.streams.items()},
            "outputs": outputs,
            "runtime": self.runtime,
            "checkpoint": checkpoint,
        }, source=f"pipeline {self.name!r}")

    def run(self, **kwargs: Any) -> Any:
        """Run with the local runner to the end of the input; returns a ``RunResult``."""
        from surestream.runners.local.runner import run

        spec = self.spec()
        scratch = self.in_memory_only() and not self.checkpoint.get("dir")
        try:
            return run(spec, **kwargs)
        finally:
            if scratch and spec.checkpoint.dir:
                remove_scratch_dir(spec.checkpoint.dir)
