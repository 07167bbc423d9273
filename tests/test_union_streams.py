"""A stream reading a list of streams (``from: [a, b]``): their union, in one order whatever
the batch size; steps that judge lateness are refused after it."""

from __future__ import annotations

import pytest

from surestream.api import Pipeline, memory
from surestream.model.loader import SpecError

TRADES = [{"symbol": s, "ts": t, "qty": q} for s, t, q in [
    ("A", 1_000, 1), ("B", 30_000, 2), ("A", 61_000, 3), ("A", 119_000, 4),
    ("B", 125_000, 5), ("A", 181_000, 6), ("B", 250_000, 7), ("A", 301_000, 8)]]


def windows_union(batch_size: int) -> Pipeline:
    p = Pipeline("u", batch_size=batch_size)
    trades = p.read_records(TRADES, stream="trades").watermark("ts")
    for size, ms in (("1m", 60_000), ("2m", 120_000)):
        trades.branch(f"w{size}").window(f"win_{size}", key_fields=["symbol"], size_ms=ms,
                                         late_output_tag=f"late_{size}",
                                         aggregations={"volume": "sum(qty)"})
        p.output(f"late_{size}", memory())
    (p.union("all_sizes", ["w1m", "w2m"])
     .with_columns({"size": "window_end - window_start"}, name="size")
     .to(memory()))
    return p


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_a_union_holds_every_window_of_both_streams_in_one_order(batch_size):
    rows = windows_union(batch_size).run().rows("all_sizes")
    got = [(r["symbol"], r["window_start"], r["size"], r["volume"]) for r in rows]
    # 1-minute windows: A [0,1m) 1, B [0,1m) 2, A [1m,2m) 3+4, B [2m,3m) 5, A [3m,4m) 6,
    # B [4m,5m) 7, A [5m,6m) 8; 2-minute: A [0,2m) 1+3+4, B [0,2m) 2, B [2m,4m) 5,
    # A [2m,4m) 6, B [4m,6m) 7, A [4m,6m) 8
    assert sorted(got) == sorted([
        ("A", 0, 60_000, 1), ("B", 0, 60_000, 2), ("A", 60_000, 60_000, 7),
        ("B", 120_000, 60_000, 5), ("A", 180_000, 60_000, 6), ("B", 240_000, 60_000, 7),
        ("A", 300_000, 60_000, 8), ("A", 0, 120_000, 8), ("B", 0, 120_000, 2),
        ("B", 120_000, 120_000, 5), ("A", 120_000, 120_000, 6), ("B", 240_000, 120_000, 7),
        ("A", 240_000, 120_000, 8)])
    # the order is the emission order, ties in `from` order: one answer for every cut
    assert got == [(r["symbol"], r["window_start"], r["size"], r["volume"])
                   for r in windows_union(1).run().rows("all_sizes")]


def test_a_window_after_a_union_is_refused_naming_the_union():
    p = Pipeline("u")
    trades = p.read_records(TRADES, stream="trades").watermark("ts")
    trades.branch("a")
    trades.branch("b")
    p.union("both", ["a", "b"]).window("w", key_fields=["symbol"], size_ms=60_000,
                                       aggregations={"n": "count()"}).to(memory())
    with pytest.raises(SpecError, match=r"streams.both.steps\[0\].*union \('both'\)"):
        p.spec()


def test_a_union_of_a_source_is_refused():
    p = Pipeline("u")
    p.read_records(TRADES, stream="trades").watermark("ts")
    p.union("both", ["source", "trades"]).to(memory())
    with pytest.raises(SpecError, match="a union reads streams or tags, not the source"):
        p.spec()
