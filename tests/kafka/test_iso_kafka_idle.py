"""A silent ISO does not stall the others, live: PJM and MISO each on a partition of their
own, MISO silent after its first half hour. With the template's idle timeout (1 minute,
on a clock the test moves 10 s a step) MISO's partition stops holding the watermark back,
and PJM's hours close; without it, no hour closes while MISO is silent."""

from __future__ import annotations

import threading

import orjson
import pytest
from live_source_helpers import create_topic, produce
from test_kafka_live_replay import wait_for

from surestream.apps.energy.iso_nodes import ISO_NODES
from surestream.apps.energy.iso_simulator import IsoSimulation
from surestream.apps.energy.iso_template import hardened_iso_streaming
from surestream.model.loader import build_spec
from surestream.runners.local.runner import LocalRunner

CLEAN = {"duplicate_rate": 0, "late_rate": 0, "correction_rate": 0, "malformed_rate": 0}


def feed() -> list[tuple[int, bytes]]:
    """(partition, line) in arrival order: PJM throughout on 0, MISO's first 30 min on 1."""
    sim = IsoSimulation(hours=3, seed=4, isos=("PJM", "MISO"), silent_iso=None, **CLEAN)
    out = []
    for line in sim.lines():
        msg = line.message
        if msg["iso"] == "PJM":
            out.append((0, line.data))
        elif msg["interval_start"] < "2026-03-02T00:30:00Z":
            out.append((1, line.data))
    return out


def hourly_written(runner: LocalRunner) -> int:
    outputs = (runner.telemetry.snapshot or {}).get("outputs", [])
    return sum(o["written"] for o in outputs if o["tag"] == "rt_lmp_hourly")


def records_in(runner: LocalRunner) -> int:
    return (runner.telemetry.snapshot or {}).get("records_in", 0)


@pytest.mark.parametrize("idle_timeout_ms", [60_000, 10**9])
def test_a_silent_iso_does_not_hold_back_the_others(kafka_bootstrap, kafka_topic, tmp_path,
                                                   idle_timeout_ms):
    topic = kafka_topic("iso-idle")
    create_topic(kafka_bootstrap, topic, 2)
    lines = feed()
    last_miso = max(i for i, (part, _) in enumerate(lines) if part == 1)
    # the feed arrives as it is published: until MISO falls silent, then PJM in three waves
    # (a partition is judged idle when the watermark moves, i.e. when records come)
    waves = [lines[:last_miso + 1]]
    rest = lines[last_miso + 1:]
    waves += [rest[len(rest) * i // 3:len(rest) * (i + 1) // 3]
              for i in range(3)]
    doc = hardened_iso_streaming(out_dir="out", idle_timeout_ms=idle_timeout_ms,
                                 checkpoint_interval_records=None,
                                 checkpoint_interval_ms=None,
                                 kafka={"topic": topic, "bootstrap": kafka_bootstrap})
    ticks = iter(range(0, 10**15, 10_000))
    runner = LocalRunner(build_spec(doc, base_dir=tmp_path),
                         clock=lambda: 1_700_000_000_000 + next(ticks))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            runner.run()
        except BaseException as e:  # noqa: BLE001 -- reported below
            failure.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    # PJM's hours 00:00 and 01:00 (its watermark reaches 02:45) and MISO's 00:00
    closed = 2 * len(ISO_NODES["PJM"]) + len(ISO_NODES["MISO"])
    try:
        sent = 0
        for wave in waves:
            produce(kafka_bootstrap, topic, wave)
            sent += len(wave)
            wait_for(lambda n=sent: records_in(runner) == n)
            threading.Event().wait(0.3)  # steps with nothing to read: the clock moves on
        if idle_timeout_ms == 60_000:
            wait_for(lambda: hourly_written(runner) == closed)
        else:
            threading.Event().wait(1.0)  # many more steps, each moving the clock 10 s
            assert hourly_written(runner) == 0  # MISO's last price holds every hour open
    finally:
        runner.request_stop()
        thread.join(60)
    assert not failure and not thread.is_alive()
    assert all(orjson.loads(v)["iso"] in ("PJM", "MISO") for _, v in lines)
