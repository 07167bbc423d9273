"""Spec problems that carry the field path they concern.

A pydantic field error knows its location; a whole-spec rule (a stream reading a tag
nobody produces, a cycle, ...) runs after the fields and would be reported at the spec's
root. Raising ``SpecProblems`` from such a rule keeps each problem's path: the loader
(``format_validation_error``) finds the exception in pydantic's error context and reports
one ``(path, reason)`` per problem, as it does for field errors.
"""

from __future__ import annotations

import re

_PLAIN_KEY = re.compile(r"^(?!\d+$)[A-Za-z0-9_-]+$")  # not all digits: that is an index


class SpecProblems(ValueError):
    """One or more ``(field path, reason)`` problems found by a whole-spec rule."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{p}: {r}" if p else r for p, r in self.problems))


def key_path(prefix: str, key: str) -> str:
    """``outputs`` + ``late`` -> ``outputs.late``; a key with dots or other punctuation is
    quoted as ``--set`` takes it: ``outputs["processed.trades.new"]``."""
    part = f".{key}" if _PLAIN_KEY.match(key) else f'["{key}"]'
    return (prefix + part) if prefix else part.lstrip(".")
