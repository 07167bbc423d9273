"""SEMANTICS §1: timestamps as epoch ms, epoch s, ISO-8601 with a zone; nothing guessed."""

import datetime as dt

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


# -- the valid range (issue 7, item 5) -----------------------------------------------------
INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)
YEAR_1900 = -2_208_988_800_000  # 1900-01-01T00:00:00Z
END_OF_2500 = 16_756_761_599_999  # 2500-12-31T23:59:59.999Z


def checked(values, unit="auto", valid_range=None):
    frame = pl.DataFrame({"t": values}, strict=False)
    r = (extract_event_time(frame, "t", unit) if valid_range is None
         else extract_event_time(frame, "t", unit, valid_range))
    return ([int(t) if ok else None for t, ok in zip(r.ts, r.ok, strict=True)], r.reasons,
            None if r.out_of_range is None else r.out_of_range.tolist())


def test_the_default_range_is_the_years_1900_to_2500_both_included():
    got, _, _ = checked([YEAR_1900, END_OF_2500, YEAR_1900 - 1, END_OF_2500 + 1])
    assert got == [YEAR_1900, END_OF_2500, None, None]


def test_int64_extremes_are_out_of_range_with_the_column_value_and_range():
    got, reasons, outside = checked([INT64_MAX, INT64_MIN, 5])
    assert got == [None, None, 5] and outside == [True, True, False]
    assert reasons[0] == (f"timestamp 't' = {INT64_MAX} is outside the valid range "
                          "1900-01-01T00:00:00.000Z .. 2500-12-31T23:59:59.999Z (the watermark "
                          "step's min_timestamp / max_timestamp)")
    assert f"= {INT64_MIN} is outside" in reasons[1]


def test_huge_floats_and_infinities_are_out_of_range_not_overflowed():
    got, reasons, outside = checked([1e300, -1e300, float("inf"), 1.7e12])
    assert got == [None, None, None, 1_700_000_000_000]
    assert outside == [True, True, True, False]
    assert "= 1e+300 is outside the valid range" in reasons[0]


def test_nan_is_unparseable():
    got, reasons, outside = checked([float("nan"), 1.0])
    assert got == [None, 1000] and outside == [False, False]
    assert reasons[0].startswith("unparseable timestamp 't': nan")


def test_iso_strings_of_year_9999_and_huge_numeric_strings_are_out_of_range():
    got, reasons, outside = checked(["9999-12-31T00:00:00Z", "1e300", "2025-01-01T00:00:00Z"])
    assert got == [None, None, 1_735_689_600_000] and outside == [True, True, False]
    assert "'9999-12-31T00:00:00Z' is outside the valid range" in reasons[0]


def test_seconds_that_overflow_as_milliseconds_are_out_of_range():
    got, _, outside = checked([INT64_MAX // 10, 1_700_000_000], unit="s")
    assert got == [None, 1_700_000_000_000] and outside == [True, False]


def test_values_before_1970_inside_the_range_are_valid():
    got, reasons, _ = checked([-1_000, -86_400_000 * 365])
    assert got == [-1_000, -31_536_000_000] and reasons is None
    assert checked([-1.5])[0] == [-1_500]  # seconds, floored
    june_1950 = dt.datetime(1950, 6, 1, 12, tzinfo=dt.UTC) - dt.datetime(1970, 1, 1,
                                                                         tzinfo=dt.UTC)
    assert checked(["1950-06-01T12:00:00Z"])[0] == [june_1950 // dt.timedelta(milliseconds=1)]


def test_datetime_columns_are_range_checked_too():
    frame = pl.DataFrame({"t": [dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
                                dt.datetime(1850, 1, 1, tzinfo=dt.UTC)]})
    r = extract_event_time(frame, "t")
    assert r.ok.tolist() == [True, False] and r.out_of_range.tolist() == [False, True]


def test_the_range_is_configurable():
    got, reasons, _ = checked([-1, 0, 10, 11], valid_range=(0, 10))
    assert got == [None, 0, 10, None]
    assert "outside the valid range 1970-01-01T00:00:00.000Z .. " \
           "1970-01-01T00:00:00.010Z" in reasons[0]
