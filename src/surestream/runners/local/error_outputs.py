"""The step's error records, routed to their error outputs and shaped as each asks.

Every producer (sources, operators, outputs that refuse a record) emits error records with
all of ``ERROR_COLUMNS`` on the ``errors`` tag; the runner merges them in input order and
then, here, sends each to the one output its category goes to (``error_kinds``; the rest to
``errors``) with that output's fields (``error_fields``; by default the six fields the
``errors`` output has always had). Routing is a pure function of the record, so an error
record lands in exactly one output, whatever the batch size or a restart.

``recorded_at_ms`` -- the processing time an error was recorded at, for outputs that ask
for it -- is taken once per checkpoint (when the checkpoint is taken, for the records of
the epoch that follows; at the start of a fresh run for the first) and stored in the
checkpoint: a run resumed from it stamps the records it processes again with the very same
value, so a replay from a checkpoint writes what the first attempt would have. It is never
the wall clock of the moment a record fails (SEMANTICS §1): between two checkpoints all
error records share one value, at most a checkpoint interval early.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from surestream.model.batch import Batch
from surestream.model.error_kinds import ERROR_COLUMNS, RECORDED_AT
from surestream.model.error_outputs import category_routes, error_tags, field_map
from surestream.model.stream_graph import ERRORS_TAG


class ErrorOutputs:
    """Where each error record goes, and the fields each error output writes."""

    def __init__(self, outputs: dict[str, Any]) -> None:
        self.tags: list[str] = error_tags(outputs)
        self.routes: dict[str, str] = category_routes(outputs)
        self.fields: dict[str, dict[str, str]] = {t: field_map(outputs.get(t))
                                                  for t in self.tags}
        #: the processing time stamped on this epoch's error records (``recorded_at_ms``)
        self.recorded_at_ms: int = 0

    def split(self, errors: Batch) -> list[tuple[str, Batch]]:
        """``(tag, records)`` for each error output that gets some of ``errors`` (all the
        step's error records, in input order), shaped for that output."""
        if not self.routes:
            return [(ERRORS_TAG, self._shape(ERRORS_TAG, errors))]
        dest = errors.data.get_column("category").replace_strict(
            self.routes, default=ERRORS_TAG, return_dtype=pl.String).to_numpy()
        out = []
        for tag in self.tags:
            mask = np.asarray(dest == tag)
            if mask.any():
                out.append((tag, self._shape(tag, errors.filter(mask))))
        return out

    def _shape(self, tag: str, errors: Batch) -> Batch:
        data = errors.data
        columns = []
        for name, source in self.fields[tag].items():
            if source == RECORDED_AT:
                columns.append(pl.lit(self.recorded_at_ms, dtype=pl.Int64).alias(name))
            elif source in ERROR_COLUMNS:
                columns.append(pl.col(source).alias(name))
        return errors.with_data(data.select(columns))
