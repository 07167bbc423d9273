"""A ``map_batches`` function that holds a test's pipeline at chosen records, so the test
can break its sink at a known point of the input (no timing involved).

``SURESTREAM_TEST_GATES`` names a folder; for each ``gate-<id>`` file in it, the batch
holding record ``id`` writes ``reached-<id>`` and waits until the test writes ``go-<id>``.
A gate passed once (``passed-<id>``) is not held again (a rerun reads the record again).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import polars as pl

#: a test that never opens its gate fails instead of hanging
GATE_TIMEOUT_S = 300


def gate(frame: pl.DataFrame) -> pl.DataFrame:
    folder = Path(os.environ["SURESTREAM_TEST_GATES"])
    if not frame.height:
        return frame
    ids = set(frame.get_column("id").to_list())
    for marker in sorted(folder.glob("gate-*")):
        gate_id = int(marker.name.split("-", 1)[1])
        if gate_id not in ids or (folder / f"passed-{gate_id}").exists():
            continue
        (folder / f"reached-{gate_id}").touch()
        deadline = time.monotonic() + GATE_TIMEOUT_S
        while not (folder / f"go-{gate_id}").exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"gate {gate_id} was never opened")
            time.sleep(0.02)
        (folder / f"passed-{gate_id}").touch()
    return frame
