"""``transforms``: the framework's aggregation, filter and deduplicate -> steps.

An ``aggregation`` with a ``windowDuration`` is a ``window`` step (``tumbling``, or
``sliding`` with a ``slideDuration`` shorter than the window); without one it is a
running ``aggregate`` per key (``type: aggregate``) whose idle keys end after
``stateTimeout``. ``windowColumn`` is the event-time column the windows are over: it must
be the watermark's ``eventTimeColumn`` (surestream windows by the watermark's event time).
Window results carry ``window_start`` / ``window_end`` (Spark: the ``window`` struct's
``start`` / ``end``) and ``revision``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from surestream.apps.etl.aggregations import parse_aggregations
from surestream.apps.etl.config import Duration, EtlModel, EtlName, Text, choice
from surestream.apps.etl.refusals import EtlConfigError, join_path, parse_section


def _columns(value: Any) -> Any:
    """``groupByColumns`` as a list or a comma-separated string."""
    if isinstance(value, str):
        return [c.strip() for c in value.split(",") if c.strip()]
    return value


def _aggregations(value: Any) -> Any:
    if not isinstance(value, str | dict):
        raise ValueError("give \"column:function,...\" (e.g. \"page_views:count,clicks:sum\") "
                         "or an object column -> function")
    return parse_aggregations(value)


class AggregationParameters(EtlModel):
    window_duration: Duration | None = None
    slide_duration: Duration | None = None
    group_by_columns: Annotated[list[Text], BeforeValidator(_columns)] = \
        Field(default_factory=list)
    aggregations: Annotated[dict[str, str], BeforeValidator(_aggregations)]
    window_column: Text | None = None


class FilterParameters(EtlModel):
    condition: Text


class DeduplicateParameters(EtlModel):
    columns: Annotated[list[Text], BeforeValidator(_columns), Field(min_length=1)]
    within: Duration


class Transform(EtlModel):
    type: choice("aggregation", "filter", "deduplicate",  # type: ignore[valid-type]
                 aliases={"aggregate": "aggregation", "where": "filter",
                          "dedup": "deduplicate", "dropDuplicates": "deduplicate"})
    name: EtlName | None = None
    parameters: dict[str, Any]


PARAMETER_MODELS: dict[str, type[EtlModel]] = {
    "aggregation": AggregationParameters, "filter": FilterParameters,
    "deduplicate": DeduplicateParameters}


@dataclass
class Translated:
    """The steps of ``transforms`` and what later sections need to know of them."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    aggregation: dict[str, Any] | None = None  # the aggregation step
    aggregation_path: str = ""
    group_by: list[str] | None = None  # None: no aggregation

    @property
    def windowed(self) -> bool:
        return bool(self.aggregation) and self.aggregation["type"] == "window"


def translate_transforms(items: list[dict[str, Any]], *, event_time_column: str | None,
                         output_mode: str | None, state_timeout_ms: int | None,
                         state_timeout_path: str) -> Translated:
    out = Translated()
    for i, data in enumerate(items):
        path = join_path("transforms", i)
        t = parse_section(Transform, data, path)
        ppath = join_path(path, "parameters")
        if t.type == "filter":
            p = parse_section(FilterParameters, t.parameters, ppath)
            out.steps.append({"type": "where", "name": t.name or f"filter_{i}",
                              "condition": p.condition})
        elif t.type == "deduplicate":
            if event_time_column is None:
                raise EtlConfigError([(path, "deduplicate keeps each key for a span of "
                                             "event time: add streamingConfigJson.watermark")])
            p = parse_section(DeduplicateParameters, t.parameters, ppath)
            out.steps.append({"type": "keyed_dedup", "name": t.name or f"deduplicate_{i}",
                              "key_fields": list(p.columns), "time_window_ms": p.within,
                              "strategy": "first"})
        else:
            if out.aggregation is not None:
                raise EtlConfigError([(path, "a second aggregation: a streaming query has "
                                             f"one (the first is {out.aggregation_path}); "
                                             "split the pipeline in two")])
            p = parse_section(AggregationParameters, t.parameters, ppath)
            step = _aggregation(p, t.name, ppath, event_time_column=event_time_column,
                                output_mode=output_mode, state_timeout_ms=state_timeout_ms,
                                state_timeout_path=state_timeout_path)
            out.steps.append(step)
            out.aggregation, out.aggregation_path = step, path
            out.group_by = list(p.group_by_columns)
    return out


#: the columns surestream adds to aggregation results (and ``version`` to update rows)
RESULT_COLUMNS = {"window": ("window_start", "window_end", "revision"), "aggregate": ()}


def _clash(p: AggregationParameters, kind: str, mode: str, path: str) -> None:
    """A result column named twice (Spark would make two columns of one name)."""
    taken = set(p.group_by_columns) | set(RESULT_COLUMNS[kind]) \
        | ({"version"} if mode == "update" else set())
    clash = sorted(set(p.aggregations) & taken)
    if clash:
        raise EtlConfigError([(join_path(path, "aggregations"),
                               f"result column(s) {', '.join(clash)} would also be a "
                               "group-by or result column (window_start, window_end, "
                               "revision, version); aggregate another column, or use the "
                               "object form to name the result "
                               "({\"events\": \"count()\"})")])


def _aggregation(p: AggregationParameters, name: str | None, path: str, *,
                 event_time_column: str | None, output_mode: str | None,
                 state_timeout_ms: int | None, state_timeout_path: str) -> dict[str, Any]:
    kind = "aggregate" if p.window_duration is None else "window"
    _clash(p, kind, output_mode or ("update" if kind == "aggregate" else "append"), path)
    if p.window_duration is None:
        for key, value in (("slideDuration", p.slide_duration),
                           ("windowColumn", p.window_column)):
            if value is not None:
                raise EtlConfigError([(join_path(path, key),
                                       f"{key} needs windowDuration (a running aggregation "
                                       "has no windows)")])
        step: dict[str, Any] = {"type": "aggregate", "name": name or "aggregation",
                                "key_fields": list(p.group_by_columns),
                                "aggregations": dict(p.aggregations),
                                "output_mode": output_mode or "update"}
        if state_timeout_ms is not None:
            if event_time_column is None:
                raise EtlConfigError([(state_timeout_path,
                                       "stateTimeout is judged in event time (a key idle "
                                       "that long behind the watermark ends): add "
                                       "streamingConfigJson.watermark")])
            step["state_timeout_ms"] = state_timeout_ms
        return step
    if state_timeout_ms is not None:
        raise EtlConfigError([(state_timeout_path,
                               "stateTimeout is for an aggregation without windowDuration; "
                               "a window's state ends with the window (at the watermark)")])
    if event_time_column is None:
        raise EtlConfigError([(join_path(path, "windowDuration"),
                               "windows are over event time: add streamingConfigJson."
                               "watermark {eventTimeColumn, delayThreshold}")])
    if p.window_column is not None and p.window_column != event_time_column:
        raise EtlConfigError([(join_path(path, "windowColumn"),
                               f"{p.window_column!r} is not the watermark's eventTimeColumn "
                               f"{event_time_column!r}: surestream windows by the "
                               "watermark's event time; make them the same column")])
    step = {"type": "window", "name": name or "aggregation",
            "key_fields": list(p.group_by_columns)}
    if p.slide_duration is None or p.slide_duration == p.window_duration:
        step |= {"kind": "tumbling", "size_ms": p.window_duration}
    elif p.slide_duration > p.window_duration:
        raise EtlConfigError([(join_path(path, "slideDuration"),
                               "slideDuration is longer than windowDuration: records between "
                               "windows would be in none")])
    else:
        step |= {"kind": "sliding", "size_ms": p.window_duration,
                 "slide_ms": p.slide_duration}
    step["aggregations"] = dict(p.aggregations)
    if output_mode not in (None, "append"):
        step["output_mode"] = output_mode
    return step
