"""What a correct run over a simulated ISO feed must produce, worked out from the feed alone.

The rules are the contract's (docs/concepts.md; SEMANTICS §2-4), applied line by line in
arrival order by plain Python -- an independent reading, not the pipeline's code:

- a malformed line (no JSON, no ``event_timestamp``, a non-numeric price) goes to errors;
- the watermark before a message is ``max(event time seen) - 10 min - 1 ms`` (one merged
  feed: one partition); a message at or behind it is late: quarantined;
- an on-time message whose ``message_id`` was already seen on time for the same
  iso/node/interval_start is a duplicate: dropped and counted;
- per iso/node/interval_start the curated row is the last on-time message, which is the
  newest ``event_version`` (the ISO publishes versions in order); the older ones are
  superseded;
- hourly aggregates per node: count, avg, min, max of the curated ``lmp`` per UTC hour of
  ``interval_start``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from surestream.apps.energy.iso_time import HOUR_MS, iso_utc, parse_utc

if TYPE_CHECKING:
    from surestream.apps.energy.iso_simulator import IsoSimulation, Line

WATERMARK_BOUND_MS = 600_000
TRUTH_FILE = "truth.json"


def build_truth(sim: IsoSimulation, lines: list[Line]) -> dict[str, Any]:
    """The truth of one feed (``lines`` in arrival order)."""
    causes = Counter(line.cause for line in lines)
    max_ts: int | None = None
    late_by_cause: Counter[str] = Counter()
    late_by_iso: Counter[str] = Counter()
    seen: set[tuple[str, str, str, str]] = set()
    duplicates = 0
    on_time: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    silence = sim.silence()
    resume_watermark: int | None = None
    late: list[list[str]] = []
    for line in lines:
        msg = line.message
        if msg is None:
            continue
        ts = parse_utc(msg["event_timestamp"])
        watermark = None if max_ts is None else max_ts - WATERMARK_BOUND_MS - 1
        if line.cause == "backfill" and resume_watermark is None:
            resume_watermark = watermark
        if watermark is not None and ts <= watermark:
            late_by_cause[line.cause] += 1
            late_by_iso[msg["iso"]] += 1
            late.append([msg["message_id"], line.cause])
            continue
        max_ts = ts if max_ts is None else max(max_ts, ts)
        key = (msg["iso"], msg["node"], msg["interval_start"])
        if (*key, msg["message_id"]) in seen:
            duplicates += 1
            continue
        seen.add((*key, msg["message_id"]))
        on_time[key].append(msg)
    final: list[list[Any]] = []
    superseded = corrected = 0
    for key in sorted(on_time):
        versions = on_time[key]
        last = versions[-1]
        newest = max(m["event_version"] for m in versions)
        if last["event_version"] != newest:  # the simulator publishes versions in order
            raise AssertionError(f"{key}: the last on-time version is not the newest")
        superseded += len(versions) - 1
        corrected += newest > 1
        final.append([*key, last["event_version"], last["lmp"], last["message_id"]])
    hourly = _hourly(final)
    malformed = {kind: causes[kind] for kind in ("bad_json", "missing_fields",
                                                 "non_numeric_price")}
    late_total = sum(late_by_cause.values())
    return {
        "system": "iso",
        "settings": sim.settings(),
        "span": {"from": iso_utc(sim.start_ms), "to": iso_utc(sim.end_ms)},
        "lines": len(lines),
        "messages": sum(1 for line in lines if line.message is not None),
        "keys": len({(m["iso"], m["node"], m["interval_start"])
                     for line in lines if (m := line.message) is not None}),
        "injected": {
            "duplicates": causes["resend"],
            "late": causes["delayed"],
            "corrections": causes["correction"],
            "malformed": malformed,
            "silence": None if silence is None else {
                "iso": sim.silent_iso, "from": iso_utc(silence[0]),
                "to": iso_utc(silence[1]), "backfilled": causes["backfill"],
                "watermark_at_resume_ms": resume_watermark},
        },
        "expected": {
            "curated_rows": len(final),
            "late": late_total,
            "late_by_cause": dict(sorted(late_by_cause.items())),
            "late_by_iso": dict(sorted(late_by_iso.items())),
            "duplicates": duplicates,
            "superseded": superseded,
            "corrected_keys": corrected,
            "errors": sum(malformed.values()),
            "hourly_rows": len(hourly),
        },
        "watermark_bound_ms": WATERMARK_BOUND_MS,
        "late_columns": ["message_id", "cause"],
        "late_messages": late,
        "final_columns": ["iso", "node", "interval_start", "event_version", "lmp",
                          "message_id"],
        "final": final,
        "hourly_columns": ["iso", "node", "window_start", "interval_count", "avg_lmp",
                           "min_lmp", "max_lmp"],
        "hourly": hourly,
    }


def _hourly(final: list[list[Any]]) -> list[list[Any]]:
    cents: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    for iso, node, start, _, lmp, _ in final:
        hour = parse_utc(start) // HOUR_MS * HOUR_MS
        cents[(iso, node, hour)].append(round(lmp * 100))
    return [[iso, node, iso_utc(hour), len(v), sum(v) / len(v) / 100, min(v) / 100,
             max(v) / 100] for (iso, node, hour), v in sorted(cents.items())]


def write_truth(folder: Path, truth: dict[str, Any]) -> None:
    (folder / TRUTH_FILE).write_bytes(orjson.dumps(truth) + b"\n")


def read_truth(folder: str | Path) -> dict[str, Any]:
    return orjson.loads((Path(folder) / TRUTH_FILE).read_bytes())


def truth_table(truth: dict[str, Any]) -> list[str]:
    """The truth as a few aligned lines (``simulate iso`` prints them)."""
    inj, exp = truth["injected"], truth["expected"]
    silence = inj["silence"]
    rows = [
        ("lines", truth["lines"]), ("valid messages", truth["messages"]),
        ("price keys (iso, node, interval)", truth["keys"]),
        ("re-sent duplicates injected", inj["duplicates"]),
        ("late messages injected (18-45 min)", inj["late"]),
        ("corrections injected", inj["corrections"]),
        ("malformed lines", sum(inj["malformed"].values())),
        ("expected curated rows", exp["curated_rows"]),
        ("expected quarantined (late)", exp["late"]),
        ("expected duplicates dropped", exp["duplicates"]),
        ("expected superseded versions", exp["superseded"]),
        ("expected keys ending corrected", exp["corrected_keys"]),
        ("expected errors", exp["errors"]),
        ("expected hourly aggregate rows", exp["hourly_rows"]),
    ]
    text = [f"  {name:<40}{value:>10,}" for name, value in rows]
    if silence:
        text.append(f"  silent ISO: {silence['iso']} from {silence['from']} to "
                    f"{silence['to']}, {silence['backfilled']:,} messages back-filled")
    return text
