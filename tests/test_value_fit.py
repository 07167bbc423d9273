"""The quick type test of nested values never accepts what the full check refuses, and a
nested line with a key written twice keeps its first value on the line-by-line path."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from surestream.connectors.parsing import decode_object
from surestream.connectors.value_types import fit_problem, quick_fit

LEVEL = pl.Struct({"price": pl.Float64(), "quantity": pl.Int64(), "venue": pl.String()})
TYPES = [pl.Float64(), pl.Int64(), pl.UInt64(), pl.String(), pl.Boolean(),
         pl.List(pl.Int64()), pl.List(LEVEL), LEVEL, pl.List(pl.List(pl.Float64()))]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(1 << 65), 1 << 65),
                    st.floats(allow_nan=False), st.text(max_size=3))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["price", "quantity", "venue", "other"]), inner,
                        max_size=3)),
    max_leaves=12)


@settings(max_examples=1500, deadline=None)
@given(value=values.filter(lambda v: v is not None), dtype=st.sampled_from(TYPES))
def test_quick_fit_accepts_only_what_fit_problem_accepts(value, dtype):
    if quick_fit(dtype)(value):
        assert fit_problem(value, dtype) is None


def test_quick_fit_accepts_an_order_books_levels():
    levels = [{"price": 101.25, "quantity": 300, "venue": "X"}, None,
              {"price": 101, "quantity": 0}]  # an integer price fits a float column
    assert quick_fit(pl.List(LEVEL))(levels)


def test_quick_fit_refuses_what_would_change():
    fits = quick_fit(pl.List(LEVEL))
    assert not fits([{"price": "101.25", "quantity": 300}])  # text in a float field
    assert not fits([{"price": 1.5, "quantity": 2.5}])  # a float in an integer field
    assert not fits([{"price": 1.5, "quantity": 1 << 63}])  # beyond int64
    assert not fits([{"price": 1.5, "size": 1}])  # a field the objects do not have
    assert not fits([{"price": True}])  # a boolean is not a number


def test_a_nested_key_written_twice_keeps_its_first_value():
    record, problem, _ = decode_object(
        b'{"symbol": "A", "bids": [{"price": 1.0, "price": 2.0, "quantity": 3}]}')
    assert problem is None
    assert record["bids"] == [{"price": 1.0, "quantity": 3}]


def test_a_colon_inside_a_nested_string_is_no_key():
    record, problem, _ = decode_object(b'{"a": [{"note": "x:y", "n": 1}], "b": "c:d"}')
    assert problem is None
    assert record == {"a": [{"note": "x:y", "n": 1}], "b": "c:d"}


def test_a_large_block_with_a_few_undecodable_lines_keeps_every_good_record_in_order():
    import json

    from surestream.connectors.parsing import parse_json_block
    from surestream.connectors.source_schema import SourceSchema

    lines = [json.dumps({"id": i, "v": i / 2}).encode() for i in range(1000)]
    for at, junk in ((7, b'{"id": 7, "v'), (500, b"not json"), (501, b""), (998, b"[1, 2]")):
        lines[at] = junk
    schema = SourceSchema({"id": pl.Int64(), "v": pl.Float64()})
    parsed = parse_json_block(b"\n".join(lines) + b"\n", len(lines), schema)
    good = [i for i in range(1000) if i not in (7, 500, 501, 998)]
    assert parsed.frame["id"].to_list() == good
    assert parsed.frame["v"].to_list() == [i / 2 for i in good]
    assert (parsed.rows_from or list(range(parsed.frame.height))) == good
    assert sorted(b.index for b in parsed.bad) == [7, 500, 998]  # a blank line is no record
    assert parsed.used == 1000
