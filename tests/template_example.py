"""A small template of the tests' own (the registry's machinery is tested with it while
the shipped factories live elsewhere): ISO-like LMP records, a watermark, quarantined late
records, dedup, files out. Keyword-only parameters with defaults, as a template has."""

from __future__ import annotations

from typing import Any


def example_feed(*, watermark_max_out_of_order_ms: int = 600_000,
                 dedup_window_ms: int = 600_000, state_ttl_ms: int = 3_600_000,
                 idle_timeout_ms: int = 60_000, input_path: str = "lmp.jsonl",
                 out_dir: str = "out") -> dict[str, Any]:
    return {
        "pipeline": "example-feed",
        "source": {"type": "file", "path": input_path, "format": "jsonl"},
        "steps": [
            {"type": "watermark", "name": "event_time", "timestamp_column": "interval_start",
             "max_out_of_orderness_ms": watermark_max_out_of_order_ms,
             "idle_source_timeout_ms": idle_timeout_ms},
            {"type": "late_data_side_output", "name": "quarantine_late", "output_tag": "late"},
            {"type": "keyed_dedup", "name": "dedup", "key_fields": ["iso", "node",
                                                                    "interval_start"],
             "time_window_ms": dedup_window_ms, "state_ttl_ms": state_ttl_ms},
        ],
        "outputs": {"main": {"type": "file", "path": f"{out_dir}/curated.jsonl"},
                    "late": {"type": "file", "path": f"{out_dir}/late.jsonl"},
                    "errors": {"type": "file", "path": f"{out_dir}/errors.jsonl"}},
        "checkpoint": {"dir": f"{out_dir}/checkpoints", "interval_records": 40},
    }


def broken_feed(*, dedup_window_ms: int = 600_000) -> dict[str, Any]:
    """A template whose output is no valid spec (no source)."""
    return {"pipeline": "broken", "steps": []}


ISOS = {"CAISO": ["SP15", "NP15"], "ERCOT": ["HB_NORTH", "HB_HOUSTON"], "PJM": ["WESTERN",
                                                                              "AEP"]}
START_MS = 1_772_409_600_000  # 2026-03-02T00:00:00Z
FIVE_MIN = 300_000


def iso_time(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def lmp_feed(intervals: int = 24, resend_every: int = 7,
             late_at: tuple[int, ...] = (10, 15, 20)) -> tuple[list[dict], dict[str, int]]:
    """ISO-like records in event-time order, with re-sent duplicates (every
    ``resend_every``-th record sent again right after itself) and one record 30 minutes
    behind the stream at each interval of ``late_at`` (node ``LATE``: a key of its own).
    Returns the records and the truth: curated (unique on-time keys), duplicates, late."""
    records, duplicates, late = [], 0, 0
    n = 0
    for i in range(intervals):
        start = START_MS + i * FIVE_MIN
        for iso, nodes in ISOS.items():
            for node in nodes:
                n += 1
                record = {"iso": iso, "node": node, "interval_start": iso_time(start),
                          "lmp": round(20 + (n % 13) * 1.25, 2), "event_version": 1,
                          "message_id": f"m{n}"}
                records.append(record)
                if n % resend_every == 0:
                    records.append(dict(record))
                    duplicates += 1
        if i in late_at:
            records.append({"iso": "PJM", "node": "LATE",
                            "interval_start": iso_time(start - 6 * FIVE_MIN), "lmp": 1.0,
                            "event_version": 1, "message_id": f"late{i}"})
            late += 1
    curated = intervals * sum(len(v) for v in ISOS.values())
    return records, {"curated": curated, "duplicates": duplicates, "late": late}


def write_feed(path, records: list[dict]) -> None:
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in records))
