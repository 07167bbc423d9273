"""Records an output cannot hold go to the errors output, one record each.

Before the runner writes a tag's records, it asks the tag's sink which of them it cannot
hold (``Sink.reject``, connectors/sink_protocol.py): a nested object bound for a CSV file, a
NaN bound for JSON lines. Those records go to the errors output with the sink's reason
(operator ``output:<tag>``); the others are written. Without this, the sink's ``write``
would fail for the whole batch and, since a restart reads the same record again, the
pipeline would stop on every run, forever.

The errors output is the last resort: if it cannot hold an error record there is nowhere
left to put it, so the run stops with an ``UnwritableError`` naming the output -- it never
sends the record round again.
"""

from __future__ import annotations

import numpy as np

from surestream.connectors.sink_protocol import Sink, UnwritableError
from surestream.model.batch import Batch
from surestream.model.spec import ERRORS_TAG
from surestream.semantics.errors import UNWRITABLE, error_batch


def divert_unwritable(emitted: list[tuple[str, Batch]], sinks: dict[str, Sink],
                      pipeline: str) -> list[tuple[str, Batch]]:
    """``emitted`` with each record its sink rejects moved to an errors batch (placed
    right after the batch it came from; the runner orders errors by input position)."""
    out: list[tuple[str, Batch]] = []
    for tag, batch in emitted:
        sink = sinks.get(tag)
        rejection = None if sink is None or tag == ERRORS_TAG or not len(batch) \
            else sink.reject(batch.data)
        if rejection is None or not len(rejection):
            out.append((tag, batch))
            continue
        rows = rejection.rows
        keep = np.ones(len(batch), dtype=bool)
        keep[rows] = False
        out.append((tag, batch.filter(keep)))
        out.append((ERRORS_TAG, error_batch(
            batch.data[rows], pipeline=pipeline, operator=f"output:{tag}",
            error_type=UNWRITABLE, message=rejection.reasons, wm=batch.wm[rows],
            seq=batch.seq[rows], wm_end=batch.wm_end,
            ts=None if batch.ts is None else batch.ts[rows])))
    return out


def check_errors_writable(sink: Sink, errors: Batch, tag: str = ERRORS_TAG) -> None:
    """Stop the run when an error output cannot hold one of its own records."""
    rejection = sink.reject(errors.data)
    if rejection is not None and len(rejection):
        raise UnwritableError(
            f"the {tag} output cannot hold {len(rejection)} error record(s), so "
            f"they have nowhere to go: {rejection.reasons[0]}. Give outputs.{tag} a format "
            "that holds them (jsonl), or a new path")
