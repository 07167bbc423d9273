"""Keyed state for process functions: value, map and list state, as in Flink.

Each named state is a table ``key tuple -> value`` (a dict), so the whole store is plain,
picklable Python and a checkpoint is a copy of it. A state handle reads the *current* key
from its scope (the process context) at every call, like Flink's keyed state: the same
handle serves every key.

Every write goes through a ``Journal``, the undo log of one user call. When user code
raises, the operator rolls the journal back, so a failing call leaves state (and timers)
as they were before it: the record goes to ``errors`` and can be replayed from there
without a half-applied update. Only writes through the state API are undone; an object
taken out of state and mutated in place without ``update``/``put`` is not (keep state
values immutable, or write them back).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, Literal, Protocol

Key = tuple[Hashable, ...]
StateKind = Literal["value", "map", "list"]

_MISSING = object()
_APPENDED = object()


class Journal:
    """Undo log of the writes of one user call."""

    __slots__ = ("_undo",)

    def __init__(self) -> None:
        self._undo: list[tuple[Any, Any, Any]] = []

    def set(self, container: dict, key: Any, value: Any) -> None:
        self._undo.append((container, key, container.get(key, _MISSING)))
        container[key] = value

    def delete(self, container: dict, key: Any) -> None:
        if key in container:
            self._undo.append((container, key, container.pop(key)))

    def append(self, items: list, value: Any) -> None:
        self._undo.append((items, None, _APPENDED))
        items.append(value)

    def commit(self) -> None:
        self._undo.clear()

    def rollback(self) -> None:
        for container, key, old in reversed(self._undo):
            if old is _APPENDED:
                container.pop()
            elif old is _MISSING:
                container.pop(key, None)
            else:
                container[key] = old
        self._undo.clear()


class Scope(Protocol):
    """What a state handle needs from the context: the current key and the call's journal."""

    key: Key
    journal: Journal


class ValueState:
    """One value per key; ``None`` means unset (``update(None)`` clears, as in Flink)."""

    __slots__ = ("_table", "_scope")

    def __init__(self, table: dict[Key, Any], scope: Scope) -> None:
        self._table = table
        self._scope = scope

    def value(self) -> Any:
        return self._table.get(self._scope.key)

    def update(self, value: Any) -> None:
        if value is None:
            self.clear()
        else:
            self._scope.journal.set(self._table, self._scope.key, value)

    def clear(self) -> None:
        self._scope.journal.delete(self._table, self._scope.key)


class MapState:
    """A dict per key. Iteration follows insertion order, which is deterministic."""

    __slots__ = ("_table", "_scope")

    def __init__(self, table: dict[Key, dict], scope: Scope) -> None:
        self._table = table
        self._scope = scope

    def _entries(self) -> dict:
        return self._table.get(self._scope.key) or {}

    def get(self, key: Any, default: Any = None) -> Any:
        return self._entries().get(key, default)

    def contains(self, key: Any) -> bool:
        return key in self._entries()

    def put(self, key: Any, value: Any) -> None:
        journal, owner = self._scope.journal, self._scope.key
        entries = self._table.get(owner)
        if entries is None:
            entries = {}
            journal.set(self._table, owner, entries)
        journal.set(entries, key, value)

    def put_all(self, items: dict[Any, Any]) -> None:
        for key, value in items.items():
            self.put(key, value)

    def remove(self, key: Any) -> None:
        journal, owner = self._scope.journal, self._scope.key
        entries = self._table.get(owner)
        if entries is None or key not in entries:
            return
        journal.delete(entries, key)
        if not entries:  # an empty map holds no memory: the key's state is gone
            journal.delete(self._table, owner)

    def keys(self) -> list[Any]:
        return list(self._entries())

    def values(self) -> list[Any]:
        return list(self._entries().values())

    def items(self) -> list[tuple[Any, Any]]:
        """A copy: the map may be changed while iterating over it."""
        return list(self._entries().items())

    def is_empty(self) -> bool:
        return not self._entries()

    def __len__(self) -> int:
        return len(self._entries())

    def clear(self) -> None:
        self._scope.journal.delete(self._table, self._scope.key)


class ListState:
    """A list per key. ``get`` returns a copy: change it with ``add``/``update``."""

    __slots__ = ("_table", "_scope")

    def __init__(self, table: dict[Key, list], scope: Scope) -> None:
        self._table = table
        self._scope = scope

    def get(self) -> list[Any]:
        return list(self._table.get(self._scope.key, ()))

    def add(self, value: Any) -> None:
        journal, owner = self._scope.journal, self._scope.key
        items = self._table.get(owner)
        if items is None:
            journal.set(self._table, owner, [value])
        else:
            journal.append(items, value)

    def add_all(self, values: Iterable[Any]) -> None:
        for value in values:
            self.add(value)

    def update(self, values: Iterable[Any]) -> None:
        items = list(values)
        if items:
            self._scope.journal.set(self._table, self._scope.key, items)
        else:
            self.clear()

    def clear(self) -> None:
        self._scope.journal.delete(self._table, self._scope.key)


_HANDLES: dict[StateKind, type] = {"value": ValueState, "map": MapState, "list": ListState}


class KeyedStateStore:
    """All named states of one operator: ``name -> (kind, key -> value)``."""

    def __init__(self) -> None:
        self._kinds: dict[str, StateKind] = {}
        self._tables: dict[str, dict[Key, Any]] = {}

    def handle(self, name: str, kind: StateKind, scope: Scope) -> Any:
        """A handle on state ``name``; a name keeps the kind it was first used with."""
        known = self._kinds.setdefault(name, kind)
        if known != kind:
            raise TypeError(f"state {name!r} is a {known} state; it cannot be used as a "
                            f"{kind} state (give the {kind} state another name)")
        return _HANDLES[kind](self._tables.setdefault(name, {}), scope)

    def key_count(self) -> int:
        """Keys holding any state (a size metric; each key counted once per state)."""
        return sum(len(table) for table in self._tables.values())

    def snapshot(self) -> dict[str, Any]:
        """The live tables; the caller copies them (one deep copy for the whole operator)."""
        return {"kinds": self._kinds, "tables": self._tables}

    def restore(self, state: dict[str, Any]) -> None:
        self._kinds = state["kinds"]
        self._tables = state["tables"]
