"""A snapshot in named, immutable chunks: state whose checkpoint cost grows with what
changed, not with its size (see ``runners/local/checkpoint_store.py`` for how the store
uses the names)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ChunkedState:
    """An operator's snapshot in named, immutable chunks plus a ``head`` for the rest.

    A chunk name is a promise: a chunk of that name (for that operator) never has other
    content. The store relies on it to skip a chunk the previous checkpoint already holds
    without materializing it, so a value may be a callable that produces the chunk (called
    only when the chunk is written). The promise must hold for everything that writes to
    the checkpoint directory: a run restored from an older checkpoint or a savepoint, which
    may go on differently, must not give a name other content than the original run did
    (the previous checkpoint is the latest on disk, not necessarily the one restored).
    ``Checkpoint.state`` gives the chunks as values."""

    head: Any
    chunks: dict[str, Callable[[], Any] | Any] = field(default_factory=dict)

    def value(self, name: str) -> Any:
        """The chunk ``name`` itself (calling it if it is a callable)."""
        chunk = self.chunks[name]
        return chunk() if callable(chunk) else chunk

    def materialized(self) -> ChunkedState:
        """The same state with every chunk a value."""
        return ChunkedState(self.head, {name: self.value(name) for name in self.chunks})
