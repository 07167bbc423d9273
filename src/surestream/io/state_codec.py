"""Operator state as data: a JSON tree for structure, raw and Arrow IPC blocks for columns.

Checkpoints and savepoints outlive the process that wrote them and travel between
machines, so their state must be *data*: reading a state file may never import or call
anything the file names (a pickle does exactly that, so a crafted savepoint could run
code). This codec writes the plain values operators keep and nothing else:

- ``None``, ``bool``, ``int`` (any size), ``float`` (NaN and infinities included), ``str``;
- ``list``, ``tuple``, ``dict`` (any plain keys), ``set``, ``frozenset``;
- ``bytes``; ``datetime``/``date``/``time``/``timedelta``, ``Decimal``; numpy scalars;
- numpy arrays (numbers, booleans, datetimes: raw little-endian bytes; ``object`` arrays of
  plain values, element by element); polars ``DataFrame``/``Series`` (Arrow IPC) and
  polars data types.

Anything else is refused at encoding time with the path inside the state where it sits
(``state['tables']['last'][('ABC',)]``), so a pipeline learns at its first checkpoint --
not at a restore months later -- that a user function keeps something that is not data.
User code whose state is not plain data gives an explicit codec (``state_codec``: an object
with ``encode(value) -> plain`` and ``decode(plain) -> value``; docs/exactly-once.md).

Layout of one encoded state::

    b"SURESTATE" + version byte      magic (10 bytes)
    8 bytes little-endian            length of the header
    header                           UTF-8 JSON: {"value": tree, "blobs": [[offset, length]]}
    blobs                            the binary blocks the tree refers to by index

In the tree a JSON object whose first key starts with ``$`` is a tagged value
(``{"$tuple": [...]}``, ``{"$nd": 3, "dtype": "<i8", "shape": [10]}``); a dict whose keys
are all strings not starting with ``$`` is written as a JSON object, any other dict as
``{"$dict": [[key, value], ...]}``. Decoding maps each tag through a fixed table of
constructors: no name from the file ever reaches an import or a call.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import struct
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pyarrow as pa

MAGIC = b"SURESTATE"
VERSION = 1
_PREFIX = MAGIC + bytes([VERSION])
_LEN = struct.Struct("<Q")
#: numpy dtype kinds stored as raw bytes: bool, signed, unsigned, float, datetime, timedelta
_RAW_KINDS = frozenset("biufMm")


class StateCodecError(ValueError):
    """A state holds a value that is not plain data, or a state file is not one we wrote."""


# -- encoding -------------------------------------------------------------------------------
class _Encoder:
    def __init__(self) -> None:
        self.blobs: list[bytes | memoryview] = []
        self._dtype_cache: dict[pl.DataType, int] = {}

    def blob(self, data: bytes | memoryview) -> int:
        self.blobs.append(data)
        return len(self.blobs) - 1

    def frame_blob(self, frame: pl.DataFrame, path: str) -> int:
        try:
            return self.blob(_ipc(frame))
        except Exception as e:  # noqa: BLE001 - e.g. an Object column
            raise StateCodecError(f"{path}: a polars frame with columns "
                                  f"{dict(frame.schema)} cannot be stored ({e})") from None

    def tree(self, v: Any, path: str) -> Any:  # noqa: C901, PLR0911, PLR0912 - one case per type
        t = type(v)
        if v is None or t is bool or t is str:
            return v
        if t is int:
            return v
        if t is float:
            return v if v == v and v not in (float("inf"), float("-inf")) else {"$float": repr(v)}
        if t is list:
            return [self.tree(x, f"{path}[{i}]") for i, x in enumerate(v)]
        if t is tuple:
            return {"$tuple": [self.tree(x, f"{path}[{i}]") for i, x in enumerate(v)]}
        if t is dict:
            if all(type(k) is str and not k.startswith("$") for k in v):
                return {k: self.tree(x, f"{path}[{k!r}]") for k, x in v.items()}
            return {"$dict": [[self.tree(k, f"{path}.keys()"), self.tree(x, f"{path}[{k!r}]")]
                              for k, x in v.items()]}
        if t is set or t is frozenset:
            items = _stable_order(v)
            return {"$set" if t is set else "$frozenset":
                    [self.tree(x, f"{path}.item") for x in items]}
        if t is np.ndarray:
            return self.array(v, path)
        if isinstance(v, np.generic) and v.dtype.kind in _RAW_KINDS:
            return {"$np": v.dtype.str, "v": self.tree(v.item(), path)}
        if t is pl.DataFrame:
            return {"$frame": self.frame_blob(v, path)}
        if t is pl.Series:
            return {"$series": self.frame_blob(v.to_frame(), path)}
        if t is pl.Schema:
            return {"$schema": self.frame_blob(pl.DataFrame(schema=v), path)}
        if isinstance(v, pl.DataType) or (isinstance(v, type) and issubclass(v, pl.DataType)):
            return {"$dtype": self.dtype(v, path)}
        if t is bytes or t is bytearray:
            return {"$bytes": self.blob(bytes(v))}
        if t is dt.datetime:
            return _datetime(v, path)
        if t is dt.date:
            return {"$date": v.isoformat()}
        if t is dt.time:
            if v.tzinfo is not None:
                raise StateCodecError(f"{path}: a time with a zone cannot be stored")
            return {"$time": v.isoformat()}
        if t is dt.timedelta:
            return {"$timedelta": [v.days, v.seconds, v.microseconds]}
        if t is Decimal:
            return {"$decimal": str(v)}
        raise StateCodecError(
            f"{path}: a {t.__module__}.{t.__qualname__} is not plain data; keep numbers, "
            "strings, lists, dicts, tuples, numpy arrays or polars frames in state, or give "
            "the function a state_codec (docs/exactly-once.md, 'State is data')")

    def array(self, a: np.ndarray, path: str) -> dict[str, Any]:
        if a.dtype.kind in _RAW_KINDS:
            a = np.ascontiguousarray(a)
            if a.dtype.byteorder == ">":
                a = a.astype(a.dtype.newbyteorder("<"))
            return {"$nd": self.blob(memoryview(a).cast("B") if a.size else b""),
                    "dtype": a.dtype.str, "shape": list(a.shape)}
        if a.dtype.kind == "O":
            flat = a.ravel().tolist()
            return {"$ndobj": [self.tree(x, f"{path}[{i}]") for i, x in enumerate(flat)],
                    "shape": list(a.shape)}
        if a.dtype.kind == "U":
            return {"$ndstr": a.ravel().tolist(), "shape": list(a.shape)}
        raise StateCodecError(f"{path}: numpy arrays of dtype {a.dtype} cannot be stored")

    def dtype(self, d: Any, path: str) -> int:
        d = d() if isinstance(d, type) else d
        if d not in self._dtype_cache:
            self._dtype_cache[d] = self.frame_blob(pl.DataFrame(schema={"d": d}), path)
        return self._dtype_cache[d]


def _ipc(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_ipc_stream(buf)
    return buf.getvalue()


def _stable_order(items: set | frozenset) -> list[Any]:
    """A set's elements in a fixed order where they can be ordered (stable bytes, so an
    unchanged state keeps its digest and is not written again)."""
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=repr)


def _datetime(v: dt.datetime, path: str) -> dict[str, Any]:
    tz = v.tzinfo
    if tz is None or tz is dt.UTC or isinstance(tz, dt.timezone):
        return {"$datetime": v.isoformat()}
    if isinstance(tz, ZoneInfo):
        return {"$datetime": v.replace(tzinfo=None).isoformat(), "zone": tz.key,
                "fold": v.fold}
    raise StateCodecError(f"{path}: a datetime with the zone {tz!r} cannot be stored "
                          "(use UTC, a fixed offset or a zoneinfo zone)")


def encode(value: Any, what: str = "state") -> bytes:
    """``value`` as bytes; raises ``StateCodecError`` naming the first value that is not
    plain data (``what`` starts the path in the message)."""
    enc = _Encoder()
    tree = enc.tree(value, what)
    offsets, pos = [], 0
    for b in enc.blobs:
        n = len(b) if isinstance(b, bytes) else b.nbytes
        offsets.append([pos, n])
        pos += n
    header = json.dumps({"value": tree, "blobs": offsets}, separators=(",", ":"),
                        allow_nan=False).encode()
    return b"".join([_PREFIX, _LEN.pack(len(header)), header, *enc.blobs])


# -- decoding -------------------------------------------------------------------------------
class _Decoder:
    def __init__(self, data: bytes | bytearray | memoryview, blobs: list[list[int]],
                 start: int) -> None:
        self.view = memoryview(data)
        self.blobs = blobs
        self.start = start

    def blob(self, i: Any) -> memoryview:
        if type(i) is not int or not 0 <= i < len(self.blobs):
            raise StateCodecError(f"state file refers to a block {i!r} it does not hold")
        off, n = self.blobs[i]
        lo = self.start + off
        if lo + n > len(self.view):
            raise StateCodecError("state file is shorter than its header says")
        return self.view[lo:lo + n]

    def frame(self, i: Any) -> pl.DataFrame:
        reader = pa.ipc.open_stream(pa.py_buffer(self.blob(i)))
        return pl.from_arrow(reader.read_all(), rechunk=False)

    def tree(self, v: Any) -> Any:
        if type(v) is list:
            return [self.tree(x) for x in v]
        if type(v) is not dict:
            return v
        if not v:
            return {}
        tag = next(iter(v))
        if not tag.startswith("$"):
            return {k: self.tree(x) for k, x in v.items()}
        build = _TAGS.get(tag)
        if build is None:
            raise StateCodecError(f"state file holds an unknown kind of value {tag!r}")
        return build(self, v)

    def array(self, v: dict[str, Any]) -> np.ndarray:
        dtype = np.dtype(str(v["dtype"]))
        if dtype.kind not in _RAW_KINDS:
            raise StateCodecError(f"state file holds an array of dtype {dtype}")
        shape = tuple(int(s) for s in v["shape"])
        raw = self.blob(v["$nd"])
        count = int(np.prod(shape)) if shape else 1
        if raw.nbytes != count * dtype.itemsize:
            raise StateCodecError("state file holds an array whose size does not match")
        # a writable copy: restored state is modified in place by the operators
        return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape).copy()


def _object_array(d: _Decoder, v: dict[str, Any]) -> np.ndarray:
    items = [d.tree(x) for x in v["$ndobj"]]
    out = np.empty(len(items), dtype=object)
    for i, x in enumerate(items):  # element by element: a tuple must stay one element
        out[i] = x
    return out.reshape(tuple(int(s) for s in v["shape"]))


def _decode_datetime(v: dict[str, Any]) -> dt.datetime:
    value = dt.datetime.fromisoformat(v["$datetime"])
    if "zone" in v:
        value = value.replace(tzinfo=ZoneInfo(str(v["zone"])), fold=int(v.get("fold", 0)))
    return value


def _dtype(d: _Decoder, v: dict[str, Any]) -> pl.DataType:
    return d.frame(v["$dtype"]).schema["d"]


def _np_scalar(d: _Decoder, v: dict[str, Any]) -> np.generic:
    dtype = np.dtype(str(v["$np"]))
    if dtype.kind not in _RAW_KINDS:
        raise StateCodecError(f"state file holds a scalar of dtype {dtype}")
    return dtype.type(d.tree(v["v"]))


_TAGS: dict[str, Callable[[_Decoder, dict[str, Any]], Any]] = {
    "$float": lambda d, v: float(v["$float"]),
    "$tuple": lambda d, v: tuple(d.tree(x) for x in v["$tuple"]),
    "$dict": lambda d, v: {_hashable(d.tree(k)): d.tree(x) for k, x in v["$dict"]},
    "$set": lambda d, v: {_hashable(d.tree(x)) for x in v["$set"]},
    "$frozenset": lambda d, v: frozenset(_hashable(d.tree(x)) for x in v["$frozenset"]),
    "$nd": lambda d, v: d.array(v),
    "$ndobj": _object_array,
    "$ndstr": lambda d, v: np.array(v["$ndstr"], dtype=str).reshape(
        tuple(int(s) for s in v["shape"])),
    "$np": _np_scalar,
    "$frame": lambda d, v: d.frame(v["$frame"]),
    "$series": lambda d, v: d.frame(v["$series"]).to_series(0),
    "$dtype": _dtype,
    "$schema": lambda d, v: d.frame(v["$schema"]).schema,
    "$bytes": lambda d, v: bytes(d.blob(v["$bytes"])),
    "$datetime": lambda d, v: _decode_datetime(v),
    "$date": lambda d, v: dt.date.fromisoformat(v["$date"]),
    "$time": lambda d, v: dt.time.fromisoformat(v["$time"]),
    "$timedelta": lambda d, v: dt.timedelta(*(int(x) for x in v["$timedelta"])),
    "$decimal": lambda d, v: Decimal(str(v["$decimal"])),
}


def _hashable(key: Any) -> Any:
    try:
        hash(key)
    except TypeError:
        raise StateCodecError(f"state file holds an unhashable dict key {key!r}") from None
    return key


def decode(data: bytes | bytearray | memoryview) -> Any:
    """The value ``encode`` wrote. Refuses anything that is not a state file."""
    view = memoryview(data)
    if bytes(view[: len(MAGIC)]) != MAGIC:
        raise StateCodecError("not a surestream state file (it may be a pickle written by "
                              "surestream 0.1, which is never loaded: it could run code)")
    if view[len(MAGIC)] != VERSION:
        raise StateCodecError(f"state file format {view[len(MAGIC)]} is not the format "
                              f"{VERSION} this version reads")
    start = len(_PREFIX)
    (n,) = _LEN.unpack_from(view, start)
    try:
        header = json.loads(bytes(view[start + _LEN.size: start + _LEN.size + n]))
        blobs = header["blobs"]
        tree = header["value"]
    except (ValueError, KeyError, TypeError) as e:
        raise StateCodecError(f"state file header is unreadable ({e})") from None
    return _Decoder(view, blobs, start + _LEN.size + n).tree(tree)


def round_trip(value: Any, what: str = "state") -> Any:
    """``decode(encode(value))``: a deep copy that also proves the value is plain data."""
    return decode(encode(value, what))
