"""SEMANTICS §1: timestamps as epoch ms, epoch s, ISO-8601 with a zone; nothing guessed."""

import polars as pl

from surestream.semantics.event_time import extract_event_time


def ts_of(values, unit="auto"):
    r = extract_event_time(pl.DataFrame({"t": values}, strict=False), "t", unit)
    return [int(t) if ok else None for t, ok in zip(r.ts, r.ok, strict=True)], r.reasons


def test_integers_are_epoch_milliseconds():
    assert ts_of([1_700_000_000_123, 0, 9999])[0] == [1_700_000_000_123, 0, 9999]


def test_floats_below_1e11_are_epoch_seconds():
    assert ts_of([1_700_000_000.123, 1.7e12])[0] == [1_700_000_000_123, 1_700_000_000_000]


def test_iso_strings_need_a_zone():
    got, reasons = ts_of(["2025-12-25T10:30:00Z", "2025-12-25T10:30:00+01:00",
                          "2025-12-25T10:30:00"])
    assert got == [1_766_658_600_000, 1_766_655_000_000, None]
    assert "unparseable" in reasons[2]


def test_missing_and_garbage_are_reported_not_guessed():
    got, reasons = ts_of(["yesterday", None])
    assert got == [None, None]
    assert "unparseable timestamp 't': 'yesterday'" in reasons[0]
    assert reasons[1] == "missing timestamp 't'"


def test_unit_can_be_forced():
    assert ts_of([1_700_000_000], unit="s")[0] == [1_700_000_000_000]
    assert ts_of([1_700_000_000.9], unit="ms")[0] == [1_700_000_000]


def test_missing_column_reports_every_row():
    r = extract_event_time(pl.DataFrame({"x": [1, 2]}), "t")
    assert not r.ok.any() and r.reasons == ["missing timestamp column 't'"] * 2
