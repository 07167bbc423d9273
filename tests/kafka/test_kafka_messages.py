"""Records as Kafka messages: keys, values, default headers, and what a message cannot
hold (refused by ``reject`` with a reason, never changed to fit)."""

from __future__ import annotations

import json

import polars as pl

from surestream.connectors.kafka.messages import MessageEncoder


def test_keys_values_and_header_fields() -> None:
    data = pl.DataFrame({"sym": ["AAPL", None], "venue": ["XNAS", "XNYS"], "qty": [3, 4],
                         "note": ["a\nb", None]})
    one = MessageEncoder("out", ["sym"], ["venue"], "records").encode(data)
    assert one.keys == [b"AAPL", None]  # a null single key is no key
    assert [json.loads(v) for v in one.values] == data.to_dicts()  # a newline stays inside
    assert one.headers == [[("venue", b"XNAS")], [("venue", b"XNYS")]]
    several = MessageEncoder("out", ["sym", "qty"], None, "records").encode(data)
    assert several.keys == [b'["AAPL",3]', b"[null,4]"]
    assert several.headers == [[], []]
    number = MessageEncoder("out", ["qty"], None, "records").encode(data)
    assert number.keys == [b"3", b"4"]


def test_default_headers_of_error_and_late_outputs() -> None:
    errors = pl.DataFrame({"error_type": ["deserialization_error"], "error_message": ["bad"],
                           "raw": ["{"]})
    encoded = MessageEncoder("dlq", None, None, "errors").encode(errors)
    assert encoded.headers == [[("error_type", b"deserialization_error"),
                                ("error_message", b"bad")]]
    late = pl.DataFrame({"id": [1], "watermark_ms": [10], "lateness_ms": [5],
                         "original_timestamp": [5], "pipeline": ["p"], "operator": ["late"]})
    encoded = MessageEncoder("q", None, None, "late").encode(late)
    assert dict(encoded.headers[0]) == {"watermark_ms": b"10", "lateness_ms": b"5",
                                        "original_timestamp": b"5", "pipeline": b"p",
                                        "operator": b"late"}


def test_reject_refuses_what_json_or_a_message_cannot_hold() -> None:
    data = pl.DataFrame({"id": [1, 2, 3, 4], "x": [1.0, float("nan"), 2.0, 3.0],
                         "blob": ["a", "b", "c" * 5_000, "d"]})
    encoder = MessageEncoder("output 'main' (Kafka topic t)", None, None, "records",
                             max_bytes=1_000)
    rejection = encoder.reject(data)
    assert rejection.rows.tolist() == [1, 2]
    assert "cannot hold the float nan in column 'x'" in rejection.reasons[0]
    assert "a record of 5,0" in rejection.reasons[1] and "message.max.bytes" in rejection.reasons[1]
    binary = pl.DataFrame({"b": [b"\x00", None]})
    rejection = encoder.reject(binary)
    assert rejection.rows.tolist() == [0] and "binary data" in rejection.reasons[0]
    fine = pl.DataFrame({"id": [1]})
    assert encoder.reject(fine) is None
    assert encoder.encode(fine).values == [b'{"id":1}']
