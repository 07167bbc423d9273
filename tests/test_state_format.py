"""Safe, portable state (issue 7, item 8): checkpoints hold data, never code.

- a savepoint whose state file is a pickle that runs code is refused; the code never runs;
- a manifest naming a state file outside the folder is refused; nothing outside is read,
  written or deleted;
- state values are plain data (the codec round-trips them exactly); a user function that
  keeps something else fails its first checkpoint with the path of the value, and works
  with a ``state_codec``;
- a checkpoint of the pickle format, or an operator state of another layout, is refused;
- ``surestream checkpoints --inspect`` shows each operator's keys, windows, timers, bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import pickle
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from surestream.io.state_codec import StateCodecError, decode, encode, round_trip
from surestream.model.steps import KeyedDedupStep, ProcessStep, WatermarkStep, WindowStep
from surestream.runners.local.checkpoint_store import CheckpointError, CheckpointStore
from surestream.runners.local.runner import LocalRunner
from surestream.testing import memory_spec


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surestream", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


# -- a small pipeline on disk, with checkpoints -------------------------------------------------
N_TRADES = 600


def write_pipeline(folder: Path) -> Path:
    """A spec over 600 trades (24 symbols, every trade id twice) with checkpoints every 200
    records: watermark, dedup, a 1-minute window per symbol."""
    lines = []
    for i in range(N_TRADES):
        t = 1_767_225_600_000 + i * 1_000
        lines.append(json.dumps({"trade_id": i // 2, "symbol": f"S{i % 24:02d}",
                                 "ts": t, "qty": i % 7 + 1}))
    (folder / "trades.jsonl").write_text("\n".join(lines) + "\n")
    spec = folder / "spec.yaml"
    spec.write_text("""
pipeline: state-format
source: {type: file, path: trades.jsonl}
steps:
  - {type: watermark, name: wm, timestamp_column: ts, max_out_of_orderness_ms: 0}
  - {type: keyed_dedup, name: dedup, key_fields: [trade_id], time_window_ms: 600000}
  - {type: window, name: per_symbol, key_fields: [symbol], kind: tumbling, size_ms: 60000,
     aggregations: {n: count(), qty: sum(qty)}}
outputs:
  main: {type: file, path: out/windows.jsonl}
  late_window: {type: file, path: out/late.jsonl}
  errors: {type: file, path: out/errors.jsonl}
checkpoint: {dir: chk, interval_records: 200}
runtime: {batch_size: 100}
""")
    return spec


def rewrite_manifest(folder: Path, change) -> None:
    """Edit the newest manifest in ``folder`` and re-seal it (its checksum is unkeyed: an
    attacker can do the same, so the checksum is no defence and the format must be)."""
    path = sorted(folder.glob("chk-*.json"))[-1]
    manifest = json.loads(path.read_bytes())
    change(manifest["body"])
    text = json.dumps(manifest["body"], sort_keys=True, default=str)
    manifest["checksum"] = hashlib.sha256(text.encode()).hexdigest()
    path.write_text(json.dumps(manifest, sort_keys=True, default=str))


@pytest.fixture
def savepoint(tmp_path) -> tuple[Path, Path]:
    """(spec, savepoint folder) of the pipeline stopped after its second checkpoint."""
    spec = write_pipeline(tmp_path)
    for _ in range(2):
        assert cli("savepoint", str(spec), "--to", str(tmp_path / "sp")).returncode == 0
    return spec, tmp_path / "sp"


class _RunsCode:
    """Unpickling this calls ``os.system`` -- what a crafted savepoint could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_savepoint_whose_state_runs_code_is_refused_and_the_code_never_runs(savepoint,
                                                                           tmp_path):
    spec, sp = savepoint
    marker = tmp_path / "the-savepoint-ran-code"
    evil = pickle.dumps({"tracker": _RunsCode(marker)})
    state_dir = sp / "state"

    def plant(body):  # the watermark's state file becomes the pickle, digests made to fit
        entry = body["operators"]["wm"]
        (state_dir / entry["file"]).write_bytes(evil)
        entry["sha256"], entry["bytes"] = hashlib.sha256(evil).hexdigest(), len(evil)

    rewrite_manifest(sp, plant)
    output = tmp_path / "out" / "windows.jsonl"
    before = output.read_bytes()
    r = cli("run", str(spec), "--from-savepoint", str(sp))
    assert not marker.exists(), "restoring a savepoint ran code from it"
    assert r.returncode == 2, r.stderr
    assert "state of 'wm'" in r.stderr and "pickle" in r.stderr
    assert output.read_bytes() == before  # refused before touching any output


@pytest.mark.parametrize("name", ["../../outside.state", "/tmp/abs.0000000001.state",
                                  "..", ".hidden.0000000001.state"])
def test_a_manifest_naming_a_file_outside_the_folder_is_refused(savepoint, tmp_path, name):
    spec, sp = savepoint
    outside = tmp_path / "outside.state"
    real = sp / "state" / json.loads(sorted(sp.glob("chk-*.json"))[-1].read_bytes())[
        "body"]["operators"]["wm"]["file"]
    outside.write_bytes(real.read_bytes())  # a valid state file, but outside the folder

    def point_outside(body):
        body["operators"]["wm"]["file"] = name

    rewrite_manifest(sp, point_outside)
    before = sorted(p.name for p in tmp_path.iterdir())
    r = cli("run", str(spec), "--from-savepoint", str(sp))
    assert r.returncode == 2, r.stderr
    assert "no readable checkpoint" in r.stderr or "not a state file name" in r.stderr
    assert outside.read_bytes() == real.read_bytes()
    after = sorted(p.name for p in tmp_path.iterdir())
    assert set(after) - set(before) <= {"out", "chk", "chk-errors.jsonl"}
    with pytest.raises(CheckpointError, match="not a state file name"):
        from surestream.runners.local.checkpoint_store import state_file_path
        state_file_path(sp, name)


def test_a_checkpoint_in_the_pickle_format_is_refused_with_the_reason(savepoint, tmp_path):
    spec, sp = savepoint
    rewrite_manifest(sp, lambda body: body.update(format=1))
    with pytest.raises(CheckpointError, match="never loads pickles"):
        CheckpointStore(sp).latest()
    r = cli("run", str(spec), "--from-savepoint", str(sp))
    assert r.returncode == 2 and "never loads pickles" in r.stderr


def test_an_operator_state_of_another_layout_is_refused_naming_it(savepoint, tmp_path):
    spec, sp = savepoint
    rewrite_manifest(sp, lambda body: body["operators"]["dedup"].update(state_format=7))
    r = cli("run", str(spec), "--from-savepoint", str(sp))
    assert r.returncode == 2
    assert "operator 'dedup' saved its state in layout 7" in r.stderr


def test_a_window_state_of_float_sums_is_refused_and_integer_sums_resume_exactly(savepoint,
                                                                                 tmp_path):
    """Window state layout 1 kept every sum as a float64 total; layout 2 keeps integer
    sums exact. A layout-1 checkpoint is refused with the reason, never misread; a
    layout-2 one resumes, and the sums stay integers."""
    spec, sp = savepoint
    rewrite_manifest(sp, lambda body: body["operators"]["per_symbol"].update(state_format=1))
    r = cli("run", str(spec), "--from-savepoint", str(sp))
    assert r.returncode == 2
    assert "operator 'per_symbol' saved its state in layout 1" in r.stderr

    fresh = tmp_path / "again"
    fresh.mkdir()
    spec = write_pipeline(fresh)
    assert cli("savepoint", str(spec), "--to", str(fresh / "sp")).returncode == 0
    r = cli("run", str(spec), "--from-savepoint", str(fresh / "sp"))
    assert r.returncode == 0, r.stderr
    # every trade id twice, the first kept: records 0, 2, 4, ... with qty i % 7 + 1
    expected: dict[tuple[str, int], int] = {}
    for i in range(0, N_TRADES, 2):
        key = (f"S{i % 24:02d}", (1_767_225_600_000 + i * 1_000) // 60_000 * 60_000)
        expected[key] = expected.get(key, 0) + i % 7 + 1
    rows = [json.loads(line) for line in (fresh / "out" / "windows.jsonl").read_text()
            .splitlines()]
    assert {(r["symbol"], r["window_start"]): r["qty"] for r in rows} == expected
    assert all(type(r["qty"]) is int for r in rows)


def test_inspect_shows_each_operators_state(savepoint, tmp_path):
    spec, sp = savepoint
    # savepoint 2 = the second checkpoint, after one batch per run: records 0..199 read
    # (trade ids 0..99, each twice: 100 duplicates). Minute m holds records 60m..60m+59;
    # with no delay the watermark after record 199 has fired minutes 0..2, so minute 3 is
    # open: its kept (even) records 180..198 fall on 10 symbols -> 10 windows, 10 timers.
    r = cli("checkpoints", "--inspect", str(sp))
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[2:]}
    assert "checkpoint 2 of 'state-format'" in r.stdout.splitlines()[0]
    assert "keys 100" in rows["dedup"] and "duplicates 100" in rows["dedup"]
    assert "windows 10, keys 10, timers 10" in rows["per_symbol"]
    assert "records_in 200" in rows["__runner__"]
    assert "watermark" in rows["wm"]
    for line in rows.values():
        assert int(line.split()[2].replace(",", "")) > 0  # bytes on disk
    by_spec = cli("checkpoints", str(spec), "--inspect")
    assert by_spec.returncode == 0 and "per_symbol" in by_spec.stdout
    missing = cli("checkpoints", "--inspect", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "not a folder" in missing.stderr


# -- the codec ----------------------------------------------------------------------------------
PLAIN = {
    "ints": [0, -1, 2**63 - 1, -(2**63), 2**80], "floats": [0.1, -0.0, 1e308, float("inf")],
    "text": "naïve ✓", "none": None, "bools": (True, False),
    "tuple_keys": {("AAPL", 1): [1, 2], 3: {"$not_a_tag": 1}},
    "set": {3, 1, 2}, "frozen": frozenset({"x"}),
    "array": np.arange(10, dtype=np.int64), "bits": np.packbits([1, 0, 1]),
    "floats_2d": np.ones((2, 3), dtype=np.float32), "empty": np.zeros(0, dtype=np.int64),
    "objects": np.array([None, ("a", 1), "s"], dtype=object),
    "frame": pl.DataFrame({"k": ["a", None], "n": [1, 2], "l": [[1], []]}),
    "series": pl.Series("s", [1.5, None]), "dtypes": {"k": pl.String(), "l": pl.List(pl.Int32)},
    "bytes": b"\x00\xff", "when": dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC),
    "naive": dt.datetime(2026, 1, 1), "day": dt.date(1969, 7, 20),
    "span": dt.timedelta(days=-1, microseconds=5), "money": Decimal("10.2500"),
    "scalar": np.int64(7),
}


def same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and a.tolist() == b.tolist())
    if isinstance(a, pl.DataFrame | pl.Series):
        return type(a) is type(b) and a.equals(b) and a.dtype if isinstance(a, pl.Series) \
            else (type(a) is type(b) and a.equals(b) and a.schema == b.schema)
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


def test_plain_values_round_trip_exactly():
    back = decode(encode(PLAIN))
    assert same(PLAIN, back)
    assert back["floats"][1] == 0.0 and str(back["floats"][1]) == "-0.0"
    nan = decode(encode(float("nan")))
    assert nan != nan
    assert encode(PLAIN) == encode(PLAIN)  # stable bytes: unchanged state is not rewritten


def test_restored_arrays_are_writable_copies():
    a = np.arange(3)
    b = round_trip(a)
    b[0] = 99
    assert a[0] == 0 and b[0] == 99


@pytest.mark.parametrize("value,where", [
    ({"x": [1, {"y": object()}]}, "state['x'][1]['y']"),
    ({"f": lambda: 1}, "state['f']"),
    ({"e": Exception("x")}, "state['e']"),
])
def test_values_that_are_not_data_are_refused_naming_where_they_are(value, where):
    with pytest.raises(StateCodecError) as e:
        encode(value)
    assert where in str(e.value) and "not plain data" in str(e.value)


@pytest.mark.parametrize("data", [b"", pickle.dumps({"a": 1}), b"SURESTATE\x09rest",
                                  b"SURESTATE\x01" + (10).to_bytes(8, "little") + b"{bad json}"])
def test_bytes_that_are_not_a_state_file_are_refused(data):
    with pytest.raises((StateCodecError, ValueError)):
        decode(data)


def test_a_tag_the_codec_does_not_know_is_refused():
    header = json.dumps({"value": {"$import": "os:system"}, "blobs": []}).encode()
    data = b"SURESTATE\x01" + len(header).to_bytes(8, "little") + header
    with pytest.raises(StateCodecError, match="unknown kind of value '\\$import'"):
        decode(data)


# -- user state: plain, or through a state_codec ---------------------------------------------------
class Position:
    def __init__(self, qty: int) -> None:
        self.qty = qty


class KeepsAnObject:
    def process_element(self, record, ctx):
        pos = ctx.value_state("pos").value() or Position(0)
        pos.qty += record["qty"]
        ctx.value_state("pos").update(pos)
        yield {"symbol": record["symbol"], "qty": pos.qty}


class PositionCodec:
    def encode(self, value: Position) -> dict:
        return {"qty": value.qty}

    def decode(self, plain: dict) -> Position:
        return Position(plain["qty"])


class KeepsAnObjectWithACodec(KeepsAnObject):
    state_codec = PositionCodec()


RECORDS = [{"symbol": "AB"[i % 2], "qty": i, "ts": i * 10} for i in range(40)]


def process_spec(function, tmp_path: Path, interval: int):
    spec = memory_spec(RECORDS, [WatermarkStep(timestamp_column="ts"),
                                 ProcessStep(name="positions", key_fields=["symbol"],
                                             function=function)], batch_size=5)
    return spec.model_copy(update={"checkpoint": spec.checkpoint.model_copy(update={
        "dir": str(tmp_path / "chk"), "interval_records": interval})})


def test_a_user_function_keeping_an_object_fails_its_first_checkpoint_naming_it(tmp_path):
    with pytest.raises(StateCodecError) as e:
        LocalRunner(process_spec(KeepsAnObject, tmp_path, 10)).run()
    assert "state of 'positions'" in str(e.value) and "Position" in str(e.value)
    assert "state_codec" in str(e.value)


def test_a_state_codec_makes_user_state_survive_every_restore(tmp_path):
    whole = LocalRunner(process_spec(KeepsAnObjectWithACodec, tmp_path / "a", 10**6)).run()
    runs, resumed = 0, None
    while resumed is None or not CheckpointStore(tmp_path / "b" / "chk").latest().finished:
        spec = process_spec(KeepsAnObjectWithACodec, tmp_path / "b", 10)
        resumed = LocalRunner(spec, stop_after_checkpoint=True).run()
        runs += 1
    assert runs > 3
    expected = [(r["symbol"], sum(x["qty"] for x in RECORDS[: i + 1] if x["symbol"] ==
                                  r["symbol"])) for i, r in enumerate(RECORDS)]
    assert [(r["symbol"], r["qty"]) for r in whole.rows()] == expected


def test_state_of_every_builtin_operator_is_plain_data(tmp_path):
    """Dedup (both strategies), windows and the watermark checkpoint through the codec and
    restore into the same results as an uncut run."""
    records = [{"id": i % 5, "k": "xyz"[i % 3], "ts": i * 100, "v": float(i)}
               for i in range(300)]
    for strategy in ("first", "last"):
        steps = [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=300),
                 KeyedDedupStep(name="d", key_fields=["id"], time_window_ms=700,
                                strategy=strategy),
                 WindowStep(name="w", key_fields=["k"], kind="tumbling", size_ms=1000,
                            aggregations={"n": "count()", "s": "sum(v)", "lo": "min(k)"})]
        whole = LocalRunner(memory_spec(records, steps, batch_size=1000)).run().rows()
        chk = tmp_path / strategy / "chk"
        got: list[dict] = []
        while True:
            spec = memory_spec(records, steps, batch_size=17)
            spec = spec.model_copy(update={"checkpoint": spec.checkpoint.model_copy(
                update={"dir": str(chk), "interval_records": 17})})
            got.extend(LocalRunner(spec, stop_after_checkpoint=True).run().rows())
            if CheckpointStore(chk).latest().finished:
                break
        assert got == whole, strategy

