"""State kept by user code, as data: the optional ``state_codec`` of a user function.

Checkpoints store state as plain data (``surestream.io.state_codec``), never as pickles.
What a process function keeps in ``ctx`` state, or a user aggregate in its accumulator, is
usually plain already (numbers, strings, lists, dicts, tuples). When it is not -- a
dataclass, a class of the user's -- the function names the translation explicitly::

    class PositionCodec:
        def encode(self, value): return {"qty": value.qty, "avg": value.avg}
        def decode(self, plain): return Position(plain["qty"], plain["avg"])

    class Positions(KeyedProcessFunction):
        state_codec = PositionCodec()

``encode`` gets what one state holds for one key (a value state's value, a map state's
dict, a list state's list; a user aggregate's accumulator) and returns plain data;
``decode`` gets that plain data back at restore. Without a codec, a value that is not plain
data fails the first checkpoint with the path where it sits.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class StateCodec(Protocol):
    def encode(self, value: Any) -> Any: ...
    def decode(self, plain: Any) -> Any: ...


def codec_of(function: Any) -> StateCodec | None:
    """The function's ``state_codec``, checked to have both methods, or None."""
    codec = getattr(function, "state_codec", None)
    if codec is None:
        return None
    if not isinstance(codec, StateCodec):
        raise TypeError(f"state_codec of {type(function).__name__} needs encode(value) and "
                        "decode(plain) methods")
    return codec
