"""Issue 7: late metadata never overwrites a column of the record (SEMANTICS §3).

The late output adds ``watermark_ms``, ``lateness_ms``, ``original_timestamp``, ``pipeline``
and ``operator`` under those names (a documented contract). A trade that has its own
``operator`` (the desk that booked it) or ``pipeline`` field used to lose it in the late
output, silently. Now the record's own value is kept under ``<name>__input``.
"""

from __future__ import annotations

import pytest

from surestream.model.steps import (
    LateDataStep,
    LateMetadata,
    MapStep,
    WatermarkStep,
    WindowStep,
)
from surestream.testing import run_steps

METADATA = ("watermark_ms", "lateness_ms", "original_timestamp", "pipeline", "operator")

#: every record carries its own field of each metadata name; "b" and "f" are late
RECORDS = [
    {"id": "a", "ts": 10_000}, {"id": "b", "ts": 7_000}, {"id": "c", "ts": 9_000},
    {"id": "e", "ts": 20_000}, {"id": "f", "ts": 15_000}]
OWN = {"watermark_ms": "wm-own", "lateness_ms": -1, "original_timestamp": "2020-01-01",
       "pipeline": "pipe-own", "operator": "desk-7"}


def own_fields(records: list[dict]) -> list[dict]:
    return [{**r, **{k: f"{v}-{r['id']}" if isinstance(v, str) else v
                     for k, v in OWN.items()}} for r in records]


def late_step_pipeline(**late) -> list:
    return [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=1_000),
            LateDataStep(name="quarantine", output_tag="late", **late)]


@pytest.mark.parametrize("batch_size", [1, 2, 100])
def test_the_late_step_keeps_the_records_own_columns_beside_the_metadata(batch_size):
    out = run_steps(own_fields(RECORDS), late_step_pipeline(), batch_size=batch_size,
                    pipeline="trades")
    assert [r["id"] for r in out["late"]] == ["b", "f"]
    b = out["late"][0]
    # the metadata, under its documented names
    assert (b["watermark_ms"], b["lateness_ms"], b["original_timestamp"]) == \
        (10_000 - 1_000 - 1, 10_000 - 1_000 - 1 - 7_000, 7_000)
    assert (b["pipeline"], b["operator"]) == ("trades", "quarantine")
    # the record's own values, every one of them, beside it
    assert {k: b[f"{k}__input"] for k in METADATA} == {
        "watermark_ms": "wm-own-b", "lateness_ms": -1, "original_timestamp": "2020-01-01-b",
        "pipeline": "pipe-own-b", "operator": "desk-7-b"}
    # the records on time are untouched
    assert out["main"][0] == own_fields(RECORDS)[0]


@pytest.mark.parametrize("kind", [{"kind": "tumbling", "size_ms": 1_000},
                                  {"kind": "session", "gap_ms": 500}])
def test_the_window_late_output_keeps_them_too(kind):
    steps = [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=1_000),
             WindowStep(name="per_desk", key_fields=["id"], aggregations={"n": "count()"},
                        **kind)]
    out = run_steps(own_fields(RECORDS), steps, pipeline="trades")
    late = out["late_window"]
    assert [r["id"] for r in late] == ["b", "f"]
    assert [(r["operator"], r["operator__input"], r["pipeline"], r["pipeline__input"])
            for r in late] == [("per_desk", "desk-7-b", "trades", "pipe-own-b"),
                               ("per_desk", "desk-7-f", "trades", "pipe-own-f")]


def test_only_the_metadata_columns_written_move_aside():
    """Without ``watermark_ms`` in the metadata, the record's own stays where it is."""
    out = run_steps(own_fields(RECORDS),
                    late_step_pipeline(metadata=LateMetadata(include_watermark=False)))
    b = out["late"][0]
    assert b["watermark_ms"] == "wm-own-b" and "watermark_ms__input" not in b
    assert b["operator__input"] == "desk-7-b" and b["operator"] == "quarantine"


def test_a_column_already_named_like_a_moved_one_moves_one_step_further():
    records = [{"id": "a", "ts": 10_000},
               {"id": "b", "ts": 7_000, "operator": "desk", "operator__input": "older"}]
    (b,) = run_steps(records, late_step_pipeline())["late"]
    assert (b["operator"], b["operator__input"], b["operator__input__input"]) == \
        ("quarantine", "desk", "older")


def add_desk_to_some(record: dict) -> dict:
    """A map whose output has an ``operator`` field for some records only: the columns of
    its batches depend on which records a batch holds."""
    return {**record, "operator": "desk-9"} if record["id"] in ("c", "f") else record


@pytest.mark.parametrize("batch_size", [1, 2, 3, 100])
def test_where_the_metadata_goes_does_not_depend_on_the_batch(batch_size):
    records = [{"id": "a", "ts": 10_000}, {"id": "b", "ts": 7_000}, {"id": "c", "ts": 8_000},
               {"id": "e", "ts": 20_000}, {"id": "f", "ts": 15_000},
               {"id": "g", "ts": 16_000}]
    steps = [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=1_000),
             MapStep(name="desk", function=add_desk_to_some),
             LateDataStep(name="quarantine", output_tag="late")]
    out = run_steps(records, steps, batch_size=batch_size)
    # a field that is absent and one that is null are the same record: compare the values
    late = [{k: v for k, v in r.items() if v is not None} for r in out["late"]]
    assert [r["id"] for r in late] == ["b", "c", "f", "g"]
    assert [r["operator"] for r in late] == ["quarantine"] * 4
    assert [r.get("operator__input") for r in late] == [None, "desk-9", "desk-9", None]
