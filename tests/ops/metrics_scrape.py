"""Helpers of the metrics tests: an input whose fate the test knows record by record, the
pipeline over it, and reading metrics back (over HTTP or from a file) as plain samples."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

#: the tumbling window's size, and the watermark's out-of-orderness (ms)
WINDOW_MS = 10_000
DELAY_MS = 2_000


@dataclass
class Input:
    """What the test wrote and what must become of it."""

    path: Path
    lines: list[str]
    duplicates: int = 0
    late: int = 0
    bad_lines: int = 0  # not JSON: deserialization errors at the source
    no_time: int = 0  # no timestamp: missing_timestamp errors at the watermark step
    #: per line: (id, ts, symbol) of a good record, None for a bad line or one with no time
    records: list[tuple[int, int, str] | None] = field(default_factory=list)


def build_input(folder: Path, n: int = 400) -> Input:
    """``n`` unique trades one second apart (ids 0..n-1, symbols A/B), with, at fixed
    places: an exact duplicate right after every 25th trade, a trade 60 s behind after
    every 50th (late: the watermark trails the newest time by 2 s), a line that is not
    JSON after every 80th, a trade with no timestamp after every 90th."""
    inp = Input(folder / "trades.jsonl", [])

    def add(record: dict[str, Any] | str, known: tuple[int, int, str] | None) -> None:
        inp.lines.append(record if isinstance(record, str) else json.dumps(record))
        inp.records.append(known)

    for i in range(n):
        t, sym = 1_000_000 + 1_000 * i, "AB"[i % 2]
        trade = {"id": i, "ts": t, "symbol": sym, "qty": 1 + i % 5}
        add(trade, (i, t, sym))
        if i % 25 == 24:
            add(trade, (i, t, sym))
            inp.duplicates += 1
        if i % 50 == 49:
            late = {"id": 100_000 + i, "ts": t - 60_000, "symbol": sym, "qty": 1}
            add(late, (100_000 + i, t - 60_000, sym))
            inp.late += 1
        if i % 80 == 79:
            add('{"id": ' + str(i) + ', "ts": ', None)
            inp.bad_lines += 1
        if i % 90 == 89:
            add({"id": 200_000 + i, "symbol": sym, "qty": 1}, None)
            inp.no_time += 1
    folder.mkdir(parents=True, exist_ok=True)
    inp.path.write_text("".join(line + "\n" for line in inp.lines))
    return inp


def pipeline_doc(inp: Input, out: Path, batch_size: int = 16,
                 interval_records: int = 100) -> dict[str, Any]:
    """watermark -> late side output -> dedup (keep first) -> 10 s windows per symbol;
    every output a JSON-lines file (a file holds exactly what was committed)."""
    return {
        "pipeline": "metrics-trades",
        "source": {"type": "file", "path": str(inp.path), "format": "jsonl",
                   "schema": {"id": "int", "ts": "int", "symbol": "string", "qty": "int"}},
        "steps": [
            {"type": "watermark", "name": "event_time", "timestamp_column": "ts",
             "max_out_of_orderness_ms": DELAY_MS},
            {"type": "late_data_side_output", "name": "late_trades", "output_tag": "late"},
            {"type": "keyed_dedup", "name": "dedup_id", "key_fields": ["id"],
             "time_window_ms": 600_000, "state_ttl_ms": 3_600_000},
            {"type": "window", "name": "qty_10s", "kind": "tumbling", "size_ms": WINDOW_MS,
             "key_fields": ["symbol"], "aggregations": {"n": "count()", "qty": "sum(qty)"}},
        ],
        "outputs": {"main": {"type": "file", "path": str(out / "windows.jsonl")},
                    "late": {"type": "file", "path": str(out / "late.jsonl")},
                    # (never written: a record on time for the watermark is on time for
                    # its window, which ends after it)
                    "late_window": {"type": "file", "path": str(out / "late_window.jsonl")},
                    "errors": {"type": "file", "path": str(out / "errors.jsonl")}},
        "checkpoint": {"dir": str(out / "checkpoints"), "interval_records": interval_records},
        "runtime": {"batch_size": batch_size},
    }


def lines_in(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


# -- reading metrics ----------------------------------------------------------------------
Sample = tuple[str, dict[str, str], float]


def parse(text: str) -> list[Sample]:
    """Every sample of a Prometheus text exposition: (name, labels, value)."""
    return [(s.name, dict(s.labels), s.value)
            for family in text_string_to_metric_families(text) for s in family.samples]


def scrape(url: str) -> list[Sample]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return parse(response.read().decode())


def matching(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    """The samples of ``name`` whose labels include ``labels``."""
    return [s for s in samples
            if s[0] == name and all(s[1].get(k) == v for k, v in labels.items())]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The one sample of ``name`` with these labels (fails when there is none or several)."""
    found = matching(samples, name, **labels)
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples: {found}"
    return found[0][2]
