"""Broadcast-state enrichment (SEMANTICS §6): join records with reference data that a
second stream keeps up to date.

The broadcast state is one table, ``key fields -> enrichment fields``, unique by key. It
starts as the step's ``reference`` data (``{path, format: parquet|csv|jsonl}``, or inline
``{rows: [...]}``), which the runner reads (``connectors.reference_data``: this module does
no I/O) and hands over as a frame, and is changed by the records of the update stream:
an update replaces the fields of its key (a field the update lacks becomes null). Every
record of the main stream gets the ``fields`` of its key appended (replacing a column of
the same name); a key not in the table -- or with a null in any key field -- gets
``unknown_value`` in each field (a dict gives one value per field), stays in its place in
the output, and is counted in ``unknown_count``.

Determinism: an update applies before every main record with a larger ``seq``, and
before one with an equal ``seq`` (reference data first). ``process_with_updates`` takes
the main and update records of one stretch of the logical sequence and gives exactly the
result of applying them one at a time in ``seq`` order, vectorized: one hash join against
the table as it was at the start, one as-of join (by key, backward on ``seq``) against the
updates of the stretch, then the updates are folded into the table.

Refresh (``refresh_interval_ms``): the reference Parquet file is re-read each time the
main records' event time enters a new interval ``floor(ts / refresh_interval_ms)``, taken
as a running maximum over the records in ``seq`` order: the file's rows replace the whole
table right before the first record past a boundary (after the updates of smaller ``seq``,
before those of equal or larger ``seq``). The reading is a function the runner hands over
(``connectors.reference_data.reference_reloader``); a read that fails, or whose values do
not fit the table's types, keeps the table as it was and counts ``refresh_errors``. Why
event time: a wall-clock schedule would apply the new values at a record that depends on
how fast the run went, so outputs would differ between runs, batch sizes and replays; the
running maximum of event time in ``seq`` order is a property of the input. The table and
the current interval are checkpointed: a restore never re-reads a refresh it already
applied (docs/concepts.md, "Broadcast state").

Types: the table's column types come from the reference data (or, without any, from the
first update batch) and every update is cast to them; an update whose value does not fit,
or whose key has a null, goes to ``errors`` instead of the table. An enrichment field's
output type is the common type of its column and ``unknown_value`` -- the same in every
batch, whether or not the batch holds an unknown key.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from surestream.model.batch import Batch, concat
from surestream.model.steps import BroadcastEnrichStep
from surestream.semantics.errors import INVALID_BROADCAST_UPDATE, error_batch
from surestream.semantics.operator import ERRORS, MAIN, Outputs

_ROW, _MSEQ, _USEQ, _HIT, _UHIT = "__ss_row", "__ss_mseq", "__ss_useq", "__ss_hit", "__ss_uhit"


def _with_columns(data: pl.DataFrame, defaults: dict[str, Any]) -> pl.DataFrame:
    """``data`` with each missing column of ``defaults`` added as nulls (of the given type,
    or untyped when the default is ``None``), one per row."""
    missing = [pl.Series(c, [None] * data.height, dtype=t or pl.Null)
               for c, t in defaults.items() if c not in data.columns]
    if not missing:
        return data
    return data.hstack(missing) if data.width else pl.DataFrame(missing)


class BroadcastEnrichOperator:
    """Enrich the main stream from broadcast state; see the module docstring."""

    def __init__(self, step: BroadcastEnrichStep, pipeline: str, *,
                 reference: pl.DataFrame | None = None,
                 reload: Callable[[], pl.DataFrame] | None = None) -> None:
        self.name = step.name
        self.pipeline = pipeline
        self.key_fields = list(step.key_fields)
        self.fields = [f for f in step.fields if f not in self.key_fields]
        #: Name of the stream whose records update the table (wired by the runner).
        self.updates_stream = step.updates
        unknown = step.unknown_value
        self._unknown = {f: (unknown.get(f) if isinstance(unknown, dict) else unknown)
                         for f in self.fields}
        if step.reference is not None and reference is None:
            raise ValueError(f"step {step.name!r}: its reference data was not loaded; "
                             "read it with connectors.reference_data.load_reference and "
                             "pass it as `reference`")
        if reference is not None:
            # as loaded (connectors.reference_data): key and enrichment columns, unique by key
            self._table = reference.select(*self.key_fields, *self.fields)
        else:
            self._table = pl.DataFrame(schema={c: pl.Null for c in (*self.key_fields,
                                                                     *self.fields)})
        #: Metrics for the runner (checkpointed): main records enriched with
        #: ``unknown_value``, and rejected updates (with a refresh: refreshes applied and
        #: refreshes that failed).
        self.counters = {"unknown_keys": 0, "errors": 0}
        self.refresh_interval_ms = step.refresh_interval_ms
        if self.refresh_interval_ms is not None:
            if reload is None:
                raise ValueError(f"step {step.name!r}: refresh_interval_ms needs the function "
                                 "re-reading the reference file; pass it as `reload` "
                                 "(connectors.reference_data.reference_reloader)")
            self.counters.update(refreshes=0, refresh_errors=0)
        self._reload = reload
        #: the event-time interval the table belongs to (None before the first record)
        self._interval: int | None = None

    def output_tags(self) -> set[str]:
        return {ERRORS}

    @property
    def unknown_count(self) -> int:
        """Main records so far whose key was not in the broadcast state."""
        return self.counters["unknown_keys"]

    @property
    def table(self) -> pl.DataFrame:
        """The current broadcast state (key fields + enrichment fields)."""
        return self._table

    # -- the two inputs -----------------------------------------------------------------
    def process(self, batch: Batch) -> Outputs:
        """Enrich main records with the table as it is now (refreshed where due)."""
        if self.refresh_interval_ms is not None:
            return self.process_with_updates(batch, None)
        return {MAIN: self._enrich(batch, None)}

    def update(self, batch: Batch) -> Outputs:
        """Fold a batch of the update stream into the table (``errors`` for bad updates)."""
        updates, outputs = self._conform(batch)
        self._apply(updates)
        return outputs

    def process_with_updates(self, main: Batch, updates: Batch | None) -> Outputs:
        """Main and update records of one stretch, applied in ``seq`` order, the table
        refreshed before each record that enters a new refresh interval."""
        cuts = self._refresh_cuts(main)
        if not len(cuts):
            return self._stretch(main, updates)
        starts = np.unique(np.r_[0, cuts])
        ends = np.r_[starts[1:], len(main)]
        pieces: list[Outputs] = []
        for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
            if lo in cuts:
                self._refresh()
            piece_updates = None
            if updates is not None and len(updates):
                # this piece's updates: from its first record's seq (the first piece: all
                # before) up to the next piece's first record's seq (the last: all after)
                low = main.seq[lo] if lo > 0 else np.iinfo(np.int64).min
                high = main.seq[hi] if hi < len(main) else np.iinfo(np.int64).max
                piece_updates = updates.filter((updates.seq >= low) & (updates.seq < high))
            pieces.append(self._stretch(main.take(np.arange(lo, hi)), piece_updates))
        outputs: Outputs = {MAIN: concat([p[MAIN] for p in pieces], wm_end=main.wm_end)}
        errors = [p[ERRORS] for p in pieces if ERRORS in p]
        if errors:
            outputs[ERRORS] = concat(errors)
        return outputs

    def _stretch(self, main: Batch, updates: Batch | None) -> Outputs:
        """Main and update records of a stretch without a refresh, in ``seq`` order."""
        if updates is None or not len(updates):
            return {MAIN: self._enrich(main, None)}
        conformed, outputs = self._conform(updates)
        outputs[MAIN] = self._enrich(main, conformed)
        self._apply(conformed)
        return outputs

    # -- refresh ------------------------------------------------------------------------
    def _refresh_cuts(self, batch: Batch) -> np.ndarray:
        """Row indices before which the table is refreshed: where the running maximum of
        ``ts // refresh_interval_ms`` (over the records so far, in seq order) grows. The
        first record ever only fixes the interval the starting table belongs to."""
        if self.refresh_interval_ms is None or not len(batch):
            return np.zeros(0, dtype=np.int64)
        if batch.ts is None:
            raise ValueError(f"step {self.name!r}: refresh_interval_ms follows event time; "
                             "put a watermark step before this step")
        interval = batch.ts // self.refresh_interval_ms
        start = int(interval[0]) if self._interval is None else self._interval
        running = np.maximum.accumulate(np.r_[start, interval])
        self._interval = int(running[-1])
        return np.flatnonzero(running[1:] > running[:-1])

    def _refresh(self) -> None:
        """Replace the table with the reference file as it is now (the same columns and
        types); on a failed read or values that do not fit, keep it and count the error."""
        assert self._reload is not None
        try:
            fresh = self._reload().select(*self.key_fields, *self.fields)
            if self._table.width and self._table.schema != fresh.schema:
                fresh = fresh.cast(dict(self._table.schema), strict=True)
        except (OSError, ValueError, pl.exceptions.PolarsError):
            self.counters["refresh_errors"] += 1
            return
        self._table = fresh
        self.counters["refreshes"] += 1

    # -- updates ------------------------------------------------------------------------
    def _conform(self, batch: Batch) -> tuple[pl.DataFrame, Outputs]:
        """The valid updates cast to the table's types, ordered by ``seq`` (in a
        ``__ss_useq`` column), and ``errors`` for the others."""
        columns = [*self.key_fields, *self.fields]
        raw = _with_columns(batch.data, {c: None for c in columns}).select(columns)
        self._adopt_types(raw.schema)
        types = self._table.schema
        checks = raw.select(
            pl.any_horizontal(pl.col(self.key_fields).is_null()).alias("null_key"),
            pl.any_horizontal(
                pl.col(c).cast(types[c], strict=False).is_null() & pl.col(c).is_not_null()
                for c in columns
            ).alias("unfit"),
        )
        null_key = checks["null_key"].to_numpy().astype(bool)
        bad = null_key | checks["unfit"].to_numpy().astype(bool)
        outputs: Outputs = {}
        if bad.any():
            rejected = batch.filter(bad)
            reasons = ["null key field" if nk else
                       f"a value does not fit the broadcast table's types {dict(types)}"
                       for nk in null_key[bad]]
            outputs[ERRORS] = error_batch(
                rejected.data, pipeline=self.pipeline, operator=self.name,
                error_type=INVALID_BROADCAST_UPDATE, message=reasons,
                wm=rejected.wm, seq=rejected.seq, wm_end=rejected.wm_end, ts=rejected.ts,
            )
            self.counters["errors"] += len(rejected)
        good = ~bad
        conformed = (raw.filter(pl.Series(good))
                     .select(pl.col(c).cast(types[c]) for c in columns)
                     .with_columns(pl.Series(_USEQ, batch.seq[good], dtype=pl.Int64)))
        return conformed.sort(_USEQ, maintain_order=True), outputs

    def _adopt_types(self, schema: pl.Schema) -> None:
        """A table column with no type yet (no reference data) takes the update's type."""
        adopt = {c: t for c, t in schema.items()
                 if self._table.schema[c] == pl.Null and t != pl.Null}
        if adopt:
            self._table = self._table.cast(adopt)

    def _apply(self, updates: pl.DataFrame) -> None:
        """Fold updates (sorted by seq) into the table: the last one per key wins."""
        if not len(updates):
            return
        latest = (updates.unique(subset=self.key_fields, keep="last", maintain_order=True)
                  .select(*self.key_fields, *self.fields))
        kept = self._table.join(latest.select(self.key_fields), on=self.key_fields, how="anti",
                                maintain_order="left")
        self._table = pl.concat([kept, latest])

    # -- enrichment ---------------------------------------------------------------------
    def _enrich(self, batch: Batch, updates: pl.DataFrame | None) -> Batch:
        data = batch.data
        keys = self._main_keys(data)
        left = keys.with_columns(pl.Series(_MSEQ, batch.seq, dtype=pl.Int64)) \
            .with_row_index(_ROW)
        table = self._table.with_columns(
            [pl.col(c).cast(keys.schema[c], strict=False) for c in self.key_fields]
        ).with_columns(pl.lit(True).alias(_HIT))
        joined = left.join(table, on=self.key_fields, how="left", maintain_order="left")
        hit = pl.col(_HIT).fill_null(False)
        values = {f: pl.col(f) for f in self.fields}
        if updates is not None and len(updates):
            recent = updates.with_columns(
                [pl.col(c).cast(keys.schema[c], strict=False) for c in self.key_fields]
            ).with_columns(pl.lit(True).alias(_UHIT))
            asof = left.sort(_MSEQ, maintain_order=True).join_asof(
                recent.rename({f: f"{f}__ss_upd" for f in self.fields}),
                left_on=_MSEQ, right_on=_USEQ, by=self.key_fields, strategy="backward",
                allow_exact_matches=True, check_sortedness=False,
            ).sort(_ROW)
            joined = joined.with_columns(
                asof.select(_UHIT, *(f"{f}__ss_upd" for f in self.fields)))
            uhit = pl.col(_UHIT).fill_null(False)
            values = {f: pl.when(uhit).then(pl.col(f"{f}__ss_upd")).otherwise(pl.col(f))
                      for f in self.fields}
            hit = hit | uhit
        known = hit & ~pl.any_horizontal(pl.col(self.key_fields).is_null())
        enriched = joined.select(
            known.alias(_HIT),
            *(pl.when(known).then(values[f]).otherwise(pl.lit(self._unknown[f])).alias(f)
              for f in self.fields),
        )
        self.counters["unknown_keys"] += int((~enriched[_HIT]).sum())
        out = data.drop([f for f in self.fields if f in data.columns])
        return batch.with_data(out.hstack(enriched.drop(_HIT).get_columns()))

    def _main_keys(self, data: pl.DataFrame) -> pl.DataFrame:
        """The main records' key columns, typed for the join: a missing column is null
        (as it would be in a cut that held a record with the field); an untyped (all-null)
        column takes the table's type."""
        table_types = self._table.schema
        keys = _with_columns(data, {c: table_types[c] for c in self.key_fields})
        return keys.select(
            pl.col(c).cast(table_types[c]) if keys.schema[c] == pl.Null else pl.col(c)
            for c in self.key_fields
        )

    # -- checkpoints --------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The table as Arrow IPC bytes (exact types, plain picklable value) and the
        counters."""
        return {"table": self._table.write_ipc(None).getvalue(),
                "counters": dict(self.counters), "interval": self._interval}

    def restore(self, state: dict[str, Any]) -> None:
        self._table = pl.read_ipc(io.BytesIO(state["table"]))
        self.counters = {**self.counters, **state["counters"]}
        self._interval = state.get("interval")


def build_broadcast_operator(
    step: BroadcastEnrichStep, pipeline: str, *, reference: pl.DataFrame | None = None,
    reload: Callable[[], pl.DataFrame] | None = None,
) -> BroadcastEnrichOperator:
    """The executable operator for a ``broadcast_enrich`` step, starting from ``reference``
    (the step's reference data as ``connectors.reference_data.load_reference`` reads it);
    ``reload`` re-reads it for ``refresh_interval_ms``."""
    return BroadcastEnrichOperator(step, pipeline, reference=reference, reload=reload)
