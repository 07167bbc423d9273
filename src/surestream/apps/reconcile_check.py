"""One reconciliation line of a seed system's demo: what the run produced against what
the simulator's truth says (the ISO and medallion reconciliations print these)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    """A named expectation and the value found; ``ok`` when they are equal."""

    name: str
    expected: Any
    actual: Any

    @property
    def ok(self) -> bool:
        return self.expected == self.actual
