"""Bronze's columns: the raw message plus what can be read from it *honestly*, as received.

``bronze_columns`` is the bronze hop's ``map_batches`` step. From a Kafka source
(``format: raw``, metadata topic/partition/offset) it names the message and its metadata
like a landing line's (``raw``, ``ingest_source`` = the topic, ``ingest_partition``,
``ingest_offset``); from the landing reader (``landing.received_lines``) they are there
already. Then it adds the envelope fields a consumer filters on -- ``event_id``,
``event_type``, ``source``, ``event_timestamp`` -- each as the *text* the message holds
(``json_path_match``: a number is its digits, a missing field or a line that is not JSON is
null). Nothing is validated, converted or dropped: that is silver's job; bronze is what was
received. Vectorized (polars), no per-record Python.
"""

from __future__ import annotations

import polars as pl

#: envelope fields kept in bronze as received text: bronze column -> JSON field
ENVELOPE = {"event_id": "event_id", "event_type": "event_type", "source": "source",
            "event_timestamp": "timestamp"}
KAFKA_COLUMNS = {"kafka_topic": "ingest_source", "kafka_partition": "ingest_partition",
                 "kafka_offset": "ingest_offset"}


def bronze_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """``raw``, ingestion metadata and the envelope as received (module docstring)."""
    if "value" in frame.columns:  # a Kafka source, format: raw
        frame = pl.DataFrame({
            "raw": _text(frame["value"]),
            **{new: frame[old] for old, new in KAFKA_COLUMNS.items()}})
    frame = frame.with_columns(pl.col("ingest_partition").cast(pl.Int64),
                               pl.col("ingest_offset").cast(pl.Int64))
    return frame.with_columns(pl.col("raw").str.json_path_match(f"$.{field}").alias(column)
                              for column, field in ENVELOPE.items())


def _text(values: pl.Series) -> pl.Series:
    """Message bytes as text: UTF-8 at once (the usual case), else each value decoded with
    replacement characters, so a message that is not UTF-8 still lands in bronze."""
    if values.dtype != pl.Binary:
        return values.cast(pl.String)
    try:
        return values.cast(pl.String)
    except pl.exceptions.ComputeError:
        return pl.Series(values.name, [None if v is None else v.decode("utf-8", "replace")
                                       for v in values.to_list()], dtype=pl.String)
