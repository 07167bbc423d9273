"""``${NAME}`` and ``${NAME:-default}`` in a spec file's values, from the environment.

Deployments hand a job its connection settings through the environment (the payments
plan's ``KAFKA_BOOTSTRAP_SERVERS``, ``KAFKA_TOPIC_PAYMENTS``, ``CHECKPOINT_LOCATION``), so
one spec file serves every environment:

    source: {type: kafka, bootstrap: "${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}",
             topics: ["${KAFKA_TOPIC_PAYMENTS:-payments}"]}
    checkpoint: {dir: "${CHECKPOINT_LOCATION:-out/checkpoints}"}

Only values are expanded, never keys. A value that is exactly one placeholder and whose
text is a plain decimal integer (no leading zero) or ``true`` / ``false`` becomes that
integer or boolean, so ``interval_ms: "${CHECKPOINT_MS:-1000}"`` is the integer 1000 as if
it were written in the file; any other text (``007``, ``1e3``, ``yes``) stays a string, and
inside a longer string the text is inserted as is. ``$${`` writes a literal ``${``. A
variable that is not set and has no default is an error naming the value's path and the
variable: a job must not start with a setting silently empty.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_PLACEHOLDER = re.compile(r"\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


class MissingVariableError(ValueError):
    """A ``${NAME}`` whose variable is not set and that gives no default."""

    def __init__(self, path: str, name: str) -> None:
        self.path = path
        self.name = name
        super().__init__(f"environment variable {name} is not set (set it, or give a "
                         f"default: ${{{name}:-value}})")


def _expand_text(text: str, path: str, env: Mapping[str, str]) -> Any:
    whole = _PLACEHOLDER.fullmatch(text)
    if whole and not whole.group(1):
        value = _lookup(whole, path, env)
        if _INTEGER.fullmatch(value):
            return int(value)
        return {"true": True, "false": False}.get(value, value)

    def substitute(m: re.Match[str]) -> str:
        if m.group(1):  # $${...}: the literal text, one $ fewer
            return m.group(0)[1:]
        return _lookup(m, path, env)

    return _PLACEHOLDER.sub(substitute, text)


def _lookup(m: re.Match[str], path: str, env: Mapping[str, str]) -> str:
    name, default = m.group(2), m.group(3)
    if name in env:
        return env[name]
    if default is None:
        raise MissingVariableError(path, name)
    return default


def expand_environment(doc: Any, env: Mapping[str, str] | None = None,
                       path: str = "") -> Any:
    """``doc`` with every placeholder in its string values replaced (a new object);
    raises ``MissingVariableError`` for an unset variable without a default."""
    env = os.environ if env is None else env
    if isinstance(doc, str):
        return _expand_text(doc, path, env) if "${" in doc else doc
    if isinstance(doc, dict):
        return {k: expand_environment(v, env, f"{path}.{k}" if path else str(k))
                for k, v in doc.items()}
    if isinstance(doc, list):
        return [expand_environment(v, env, f"{path}[{i}]") for i, v in enumerate(doc)]
    return doc
