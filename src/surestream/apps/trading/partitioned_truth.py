"""Which trades are late when ``raw.trades`` is read from several partitions.

The simulator's truth (``truth.json``: ``late``) counts a trade late when it is more than
30 s behind the largest timestamp before it *in its one stream*. On Kafka, ``raw.trades``
has 8 partitions (keyed by symbol), and the stream's watermark is the minimum over the
partitions (SEMANTICS §2), so which trades are late depends on how the partitions are
read. A bounded run reads them as it reads files: in turns of
``runtime.interleave_records`` records, partition 0 first (docs/concepts.md, "Same input,
same output"). The partitions hold unequal numbers of records (symbols trade at different
rates), so a partition with fewer records runs ahead in event time turn by turn, the
densest one holds the watermark back, and some trades injected late arrive while the
watermark is still behind them: they are routed like on-time trades. On-time trades are
never late here either (each is at most ``out_of_order_ms`` behind its own partition,
which bounds the minimum).

``late_trade_ids`` replays exactly that rule, record by record, from the partitions'
contents -- an independent model of SEMANTICS §2 and §3, not the engine's code -- so the
demo can check the router's ``is_late`` flags against it trade by trade. With one
partition it gives the simulator's own count (``tests/apps/test_kafka_demo_parts.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

NEG_INF = float("-inf")
POS_INF = float("inf")


def trade_record(line: bytes) -> tuple[str, int] | None:
    """``(trade_id, timestamp_ms)`` of a well-formed trade line; None for a line that does
    not parse (it never reaches the watermark, but it takes its place in a turn)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return str(record["trade_id"]), int(record["timestamp_ms"])


def late_trade_ids(partitions: Sequence[Sequence[tuple[str, int] | None]], turn: int,
                   delay_ms: int) -> list[str]:
    """The trade ids judged late (``ts <= W`` before the record, W = the minimum over the
    partitions of ``max_ts - delay_ms - 1``; -inf before a partition's first record, +inf
    once it has ended) when the partitions are read in turns of ``turn`` records
    (``None`` entries: lines that do not parse, which count in a turn only)."""
    n = len(partitions)
    wm = [NEG_INF] * n  # each partition's watermark: max_ts - delay - 1, +inf once ended
    pos = [0] * n
    ended = [len(p) == 0 for p in partitions]
    for q in range(n):
        if ended[q]:
            wm[q] = POS_INF
    late: list[str] = []
    p = 0
    while not all(ended):
        if ended[p]:
            p = (p + 1) % n
            continue
        records = partitions[p]
        stop = min(pos[p] + turn, len(records))
        for record in records[pos[p]:stop]:
            if record is not None:
                trade_id, ts = record
                if ts <= min(wm):
                    late.append(trade_id)
                wm[p] = max(wm[p], ts - delay_ms - 1)
        pos[p] = stop
        if stop >= len(records):
            ended[p] = True  # its end is known once its last record is read
            wm[p] = POS_INF
        p = (p + 1) % n
    return late
