"""The settings of a simulated vendor-tick feed: what ``surestream simulate ticks`` and
``surestream demo ticks`` take as options. Kept free of numpy and polars, so that building
the command line (every ``surestream`` command does) stays light; the simulator itself is
``ticks_simulator.TickSimulation``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any

VENDORS = ("bloomberg", "refinitiv", "ice", "factset", "spglobal", "quodd")
#: energy and commodity futures roots, with a base price each
SYMBOLS = {"CL": 72.0, "NG": 2.9, "HO": 2.45, "RB": 2.2, "BZ": 76.5, "GC": 2040.0,
           "ZC": 4.4, "ZW": 5.9}
DEFAULT_START = "2026-03-02T14:00:00Z"
DATA_FILE = "ticks.jsonl"
TRUTH_FILE = "truth.json"


def parse_start(text: str) -> int:
    """``--start`` (ISO-8601 with a zone) as epoch ms."""
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"start: {text!r} has no zone; write it in UTC, e.g. {DEFAULT_START}")
    return int(when.timestamp() * 1000)


@dataclass
class TickSettings:
    """The settings of one simulated feed, checked when made."""

    minutes: int = 60
    seed: int = 7
    vendors: int = 4
    symbols: int = 5
    ticks_per_s: float = 10.0  # per vendor
    duplicate_rate: float = 0.02
    late_rate: float = 0.01
    malformed_rate: float = 0.005
    idle_vendors: int = 1
    idle_minutes: int = 5
    start: str = DEFAULT_START

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.vendors <= len(VENDORS):
            problems.append(f"vendors: {self.vendors} is outside 1..{len(VENDORS)}")
        if not 1 <= self.symbols <= len(SYMBOLS):
            problems.append(f"symbols: {self.symbols} is outside 1..{len(SYMBOLS)}")
        if self.minutes < 5:
            problems.append(f"minutes: {self.minutes} is below 5 (late ticks need room)")
        if not 0 < self.ticks_per_s <= 1000:
            problems.append(f"ticks_per_s: {self.ticks_per_s} is outside (0, 1000]")
        for name in ("duplicate_rate", "late_rate", "malformed_rate"):
            if not 0 <= getattr(self, name) <= 0.2:
                problems.append(f"{name}: {getattr(self, name)} is outside 0..0.2")
        if not 0 <= self.idle_vendors < self.vendors:
            problems.append(f"idle_vendors: {self.idle_vendors} must be below vendors "
                            f"({self.vendors}): someone has to keep sending")
        if self.idle_vendors and not 1 <= self.idle_minutes <= self.minutes // 2:
            problems.append(f"idle_minutes: {self.idle_minutes} is outside 1..minutes/2")
        try:
            parse_start(self.start)
        except ValueError as e:
            problems.append(str(e))
        if problems:
            raise ValueError("; ".join(problems))

    def settings(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
