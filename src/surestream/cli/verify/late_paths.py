"""The late-path check: the records a step sent to its late tag all arrived where the tag goes.

A late step (``late_data_side_output``) or a window counts the records it sends to its late
tag. The tag goes to an output of its own, or to streams that read it -- a quarantine stream
that adds a ``processing_date`` and writes partitioned Parquet is a documented pattern --
or both. Each destination is checked against the count:

- an output of the tag holds exactly that many records;
- a stream reading the tag passes the count through its steps, and its own output (or the
  streams reading it, and so on) holds what is left. Steps change the count as follows:

  ==================================================  ============================================
  watermark, with_columns, map_batches, broadcast      keep every record (those sent to ``errors``
  enrich                                               are counted per operator and subtracted)
  where, keyed_dedup, late_data_side_output            remove records and count them (``filtered``,
                                                       ``duplicates``, ``late``): subtracted
  route                                                records to its other tags: subtracted as
                                                       written to their outputs
  filter                                               drops records without counting them: the
                                                       output holds *at most* the count
  map, window, process                                 may drop, add or combine records: the count
                                                       after them cannot be judged
  ==================================================  ============================================

Only what can be judged is judged: a destination after a map, window or process step is
listed with its figures and "not compared", and does not fail the check.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from surestream.model.spec import PipelineSpec, step_side_tags
from surestream.model.steps import (
    FilterStep,
    LateDataStep,
    MapStep,
    ProcessStep,
    RouteStep,
    WindowStep,
)

#: operator counters that stand for records taken out of the stream (and where they went)
REMOVING_COUNTERS = {"errors": "to errors", "filtered": "filtered", "duplicates": "duplicates",
                     "late": "late", "dq_quarantined": "quarantined"}


@dataclass(frozen=True)
class Expected:
    """What a destination should hold: ``value`` records, exactly or at most, or unknown."""

    value: int
    at_most: bool = False
    unknown: str | None = None  # why the count cannot be judged
    removed: tuple[tuple[int, str], ...] = ()  # (3, "filtered by only_filled"), ...

    def minus(self, n: int, why: str) -> Expected:
        if not n:
            return self
        return replace(self, value=self.value - n, removed=(*self.removed, (n, why)))


@dataclass
class PathResult:
    ok: bool
    line: str


@dataclass
class LatePathCheck:
    results: list[PathResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def detail(self) -> str:
        return "; ".join(r.line for r in self.results) if self.results else "no late path"


def late_paths(spec: PipelineSpec) -> list[tuple[str, str]]:
    """(operator name, its late tag) for every step that writes late records."""
    paths = []
    for stream in spec.all_streams.values():
        for step in stream.steps:
            if isinstance(step, LateDataStep) and step.emits_records:
                paths.append((step.name, step.output_tag))
            elif isinstance(step, WindowStep):
                paths.append((step.name, step.late_output_tag))
    return paths


def check_late_paths(spec: PipelineSpec, summary: dict[str, Any]) -> LatePathCheck:
    """Judge every late path of ``spec`` on a clean run's ``summary``."""
    check = LatePathCheck()
    ops = summary.get("operator_counters", {})
    for op, tag in late_paths(spec):
        counted = int(ops.get(op, {}).get("late", 0))
        follow = _Follower(spec, summary, f"{op}.late {counted:,}")
        check.results.extend(follow.tag(tag, Expected(counted), via=[]))
    return check


class _Follower:
    """Follows one late path's records through the streams that read them."""

    def __init__(self, spec: PipelineSpec, summary: dict[str, Any], origin: str) -> None:
        self.spec = spec
        self.streams = spec.all_streams
        self.written: dict[str, int] = summary.get("written", {})
        self.ops: dict[str, dict[str, int]] = summary.get("operator_counters", {})
        self.origin = origin

    def tag(self, tag: str, expected: Expected, via: list[str]) -> list[PathResult]:
        results = []
        if tag in self.spec.outputs:
            results.append(self.judge(tag, expected, via))
        for name, stream in self.streams.items():
            if tag in stream.inputs:
                hop = f"{tag} read by stream {name}"
                reaching = expected if not stream.is_union else replace(
                    expected, unknown=f"stream {name!r} is a union: it holds the records "
                                      "of the other streams it reads too")
                results.extend(self.tag(name, self.through(stream.steps, reaching),
                                        [*via, hop]))
        return results

    def through(self, steps: list[Any], expected: Expected) -> Expected:
        """``expected`` after a stream's steps (see the module docstring)."""
        for step in steps:
            if expected.unknown:
                return expected
            counters = self.ops.get(step.name, {})
            for counter, why in REMOVING_COUNTERS.items():
                expected = expected.minus(int(counters.get(counter, 0)), f"{why} by {step.name}")
            if isinstance(step, RouteStep):
                for side in step_side_tags(step):
                    if side not in self.spec.outputs:
                        return replace(expected, unknown=f"route {step.name!r} sends records "
                                       f"to {side!r}, which has no output to count them in")
                    expected = expected.minus(int(self.written.get(side, 0)),
                                              f"routed to {side} by {step.name}")
            elif isinstance(step, FilterStep):
                expected = replace(expected, at_most=True)
            elif isinstance(step, MapStep | WindowStep | ProcessStep):
                return replace(expected, unknown=f"{step.type} {step.name!r} may drop, add or "
                                                 "combine records")
        return expected

    def judge(self, tag: str, expected: Expected, via: list[str]) -> PathResult:
        got = int(self.written.get(tag, 0))
        route = f" ({'; '.join(via)})" if via else ""
        if expected.unknown:
            return PathResult(True, f"{tag} {got:,} records from {self.origin}{route}; not "
                                    f"compared: {expected.unknown}")
        held = f"{tag} {got:,} records" + "".join(f" + {n:,} {why}"
                                                  for n, why in expected.removed)
        if expected.at_most:
            ok = got <= expected.value
            return PathResult(ok, f"{held} {'<=' if ok else '>'} {self.origin}{route}, "
                                  "as a filter step drops records without counting them")
        ok = got == expected.value
        return PathResult(ok, f"{held} {'=' if ok else '!='} {self.origin}{route}")
