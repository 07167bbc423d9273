"""Error outputs: which error records each output takes, and the fields it writes.

By default every error record goes to the ``errors`` output with the fields
``DEFAULT_ERROR_FIELDS``. An output that declares ``error_kinds`` takes the error records
of those kinds or categories instead (``model/error_kinds.py``): a dead-letter output for
input that does not parse, another for exceptions in user code; ``errors`` keeps the rest.
``error_fields`` shapes an error output's records: a list of fields, or output field ->
error field (``{original_value: raw, error_type: exception}``).

The rules ``validate`` checks (``error_output_problems``), each with its field path: an
error output holds error records only (no step or stream produces its tag), each category
goes to one output, ``errors`` takes the rest (it declares no kinds), and ``error_fields``
is given only for error outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from surestream.model.error_kinds import (
    DEFAULT_ERROR_FIELDS,
    RECORDED_AT,
    categories_of,
)
from surestream.model.problems import key_path
from surestream.model.stream_graph import ERRORS_TAG

if TYPE_CHECKING:
    from surestream.model.spec import PipelineSpec


def error_tags(outputs: dict[str, Any]) -> list[str]:
    """The outputs that take error records: ``errors`` first, then those with
    ``error_kinds``, in spec order."""
    return [ERRORS_TAG, *(t for t, s in outputs.items()
                          if t != ERRORS_TAG and getattr(s, "error_kinds", None))]


def category_routes(outputs: dict[str, Any]) -> dict[str, str]:
    """category -> the output that takes its error records (those absent go to
    ``errors``)."""
    routes: dict[str, str] = {}
    for tag, sink in outputs.items():
        for category in categories_of(list(getattr(sink, "error_kinds", None) or [])):
            routes.setdefault(category, tag)
    return routes


def field_map(sink: Any) -> dict[str, str]:
    """Output field -> error field, in output order, for an error output's sink (``None``:
    the default errors file)."""
    fields = getattr(sink, "error_fields", None)
    if fields is None:
        return {f: f for f in DEFAULT_ERROR_FIELDS}
    if isinstance(fields, dict):
        return dict(fields)
    return {f: f for f in fields}


def recorded_at_fields(sink: Any) -> list[str]:
    """The fields of an error output that hold the processing time an error was recorded
    at: they differ between runs by design (``verify`` leaves them out, as it does
    ``processing_time_columns``)."""
    if not getattr(sink, "error_fields", None):
        return []
    return [name for name, source in field_map(sink).items() if source == RECORDED_AT]


def error_output_problems(spec: PipelineSpec, produced: set[str]) -> list[tuple[str, str]]:
    """Every mistake in the spec's error outputs, each with its field path. ``produced``:
    the tags steps and streams produce (and streams read)."""
    problems: list[tuple[str, str]] = []
    claimed: dict[str, str] = {}
    for tag, sink in spec.outputs.items():
        where = key_path("outputs", tag)
        kinds = list(sink.error_kinds or [])
        if kinds and tag == ERRORS_TAG:
            problems.append((f"{where}.error_kinds",
                             f"the {ERRORS_TAG!r} output takes every error record no other "
                             "output's error_kinds claims; declare error_kinds on the "
                             "outputs that split errors off instead"))
            continue
        if kinds and tag in produced:
            problems.append((f"{where}.error_kinds",
                             f"tag {tag!r} is produced or read by the pipeline's streams, so "
                             "it cannot also hold error records; give the error output a "
                             "tag of its own"))
        if sink.error_fields is not None and not kinds and tag != ERRORS_TAG:
            problems.append((f"{where}.error_fields",
                             f"output {tag!r} takes no error records: error_fields shapes "
                             f"the {ERRORS_TAG!r} output or one with error_kinds"))
        for category in categories_of(kinds):
            if category in claimed:
                problems.append((f"{where}.error_kinds",
                                 f"error category {category!r} already goes to output "
                                 f"{claimed[category]!r}; each error record goes to one "
                                 "output"))
            claimed.setdefault(category, tag)
    return problems
