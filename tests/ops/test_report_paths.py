"""The conservation equation of a pipeline that aggregates nothing: a where step filters,
a route step keeps one kind in the stream (``main``), sends another to a side output, and
has no route for a third (those records go to errors). Every count is known from the
input built here."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

from surestream.cli.main import main
from surestream.ops.report import gather

KEPT, SIDE, UNROUTABLE, FILTERED, MALFORMED = 40, 25, 6, 9, 2
IN = KEPT + SIDE + UNROUTABLE + FILTERED + MALFORMED

SPEC = {
    "pipeline": "report-paths",
    "source": {"type": "file", "path": "events.jsonl", "format": "jsonl"},
    "steps": [
        {"type": "watermark", "name": "event_time", "timestamp_column": "ts"},
        {"type": "where", "name": "positive", "condition": "x > 0"},
        {"type": "route", "name": "by_kind", "field": "kind",
         "routes": {"a": "main", "b": "side"}},
    ],
    "outputs": {"main": {"type": "file", "path": "out/main.jsonl"},
                "side": {"type": "file", "format": "parquet", "path": "out/side"},
                "errors": {"type": "file", "path": "out/errors.jsonl"}},
    "checkpoint": {"dir": "checkpoints", "interval_records": 20},
    "runtime": {"batch_size": 10},
}


@pytest.fixture(autouse=True)
def restore_logging():
    """An in-process ``surestream run`` sets up the ``surestream`` logger: put it back."""
    logger = logging.getLogger("surestream")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


def test_route_and_where_terms_balance(tmp_path: Path) -> None:
    kinds = ["a"] * KEPT + ["b"] * SIDE + ["z"] * UNROUTABLE
    lines = [json.dumps({"id": i, "kind": k, "x": 1 + i, "ts": 1000 * i})
             for i, k in enumerate(kinds)]
    lines += [json.dumps({"id": 900 + i, "kind": "a", "x": -i, "ts": 500_000 + i})
              for i in range(FILTERED)]
    lines[10:10] = ["not json"] * MALFORMED
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    assert main(["run", str(tmp_path / "spec.yaml")]) == 0

    eq = gather(tmp_path / "checkpoints").equation
    terms = {t.name: t.value for t in eq.terms}
    assert eq.records_in.value == IN
    assert terms == {"main": KEPT + SIDE, "late": 0, "errors": UNROUTABLE + MALFORMED,
                     "duplicates": 0, "filtered": FILTERED}
    assert eq.status == "balanced"
    main_parts = {p.label: p.value for p in next(t for t in eq.terms
                                                 if t.name == "main").parts}
    assert main_parts == {"at the end of stream main": KEPT,
                          "routed by by_kind to side": SIDE}
    # each count the run made agrees with the output read back
    assert eq.checks and all(c.ok for c in eq.checks)
    assert {c.what for c in eq.checks} >= {"output main", "output side", "error outputs"}
