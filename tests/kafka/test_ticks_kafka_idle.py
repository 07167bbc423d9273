"""An idle vendor does not stall the others in a live run: the vendors' ticks come on two
partitions, one vendor falls silent after two minutes (event time), and with the template's
idle timeout the watermark follows the other vendor -- its one-minute bars keep firing,
exactly up to its own ticks' watermark. The run's clock is injected (1 s a step), so the
outcome does not depend on timing: both vendors' first two minutes are consumed before the
rest of the steady vendor's ticks are sent, and the silent partition is idle after 60 steps
without a record."""

from __future__ import annotations

import threading

import orjson
from live_source_helpers import create_topic, produce
from test_kafka_live_replay import lines, wait_for

from surestream.apps.energy.ticks_simulator import TickSimulation, parse_start
from surestream.apps.energy.ticks_template import vendor_ticks
from surestream.model.loader import build_spec
from surestream.runners.local.runner import LocalRunner

SILENT_AFTER_MS = 120_000


def test_bars_keep_firing_while_a_vendor_is_silent(kafka_bootstrap, kafka_topic, tmp_path):
    sim = TickSimulation(minutes=6, seed=5, vendors=2, symbols=2, ticks_per_s=2, duplicate_rate=0,
                         late_rate=0, malformed_rate=0, idle_vendors=0)
    start = parse_start(sim.start)
    lines_, _ = sim.generate()
    records = [orjson.loads(x) for x in lines_]
    ms = {id(r): parse_start(r["event_time"]) for r in records}
    steady = [r for r in records if r["vendor"] == "bloomberg"]
    silent = [r for r in records
              if r["vendor"] == "refinitiv" and ms[id(r)] < start + SILENT_AFTER_MS]
    # the watermark once the silent vendor is idle: the steady vendor's newest tick - 30 s
    watermark = max(ms[id(r)] for r in steady) - 30_000 - 1
    expected: dict[tuple[str, int], int] = {}
    for r in steady + silent:
        window = ms[id(r)] - ms[id(r)] % 60_000
        if window + 60_000 - 1 <= watermark:
            expected[(r["symbol"], window)] = expected.get((r["symbol"], window), 0) + 1
    assert max(w for _, w in expected) >= start + SILENT_AFTER_MS + 60_000  # past the silence

    topic = kafka_topic("ticks-idle")
    create_topic(kafka_bootstrap, topic, 2)
    first = [r for r in steady if ms[id(r)] < start + SILENT_AFTER_MS]
    rest = [r for r in steady if ms[id(r)] >= start + SILENT_AFTER_MS]
    produce(kafka_bootstrap, topic, [(0, orjson.dumps(r)) for r in first]
            + [(1, orjson.dumps(r)) for r in silent])
    doc = vendor_ticks(kafka_bootstrap=kafka_bootstrap, kafka_topic=topic, kafka_live=True,
                       idle_timeout_ms=60_000, out_dir="out")
    doc["source"]["options"] = {"fetch.wait.max.ms": 10}
    # plain files: this test is about the watermark, not the tables
    doc["outputs"] = {tag: {"type": "file", "path": f"out/{tag}.jsonl"}
                      for tag in ("ticks", "bars_1m", "late_vendor_ticks", "late_bars",
                                  "errors")}
    doc["checkpoint"]["interval_ms"] = 250
    doc["runtime"] = {"batch_size": 50, "max_batch_delay_ms": 40}
    steps = iter(range(0, 10**12, 1_000))
    runner = LocalRunner(build_spec(doc, tmp_path, None),
                         clock=lambda: 1_700_000_000_000 + next(steps))
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    bars = tmp_path / "out" / "bars_1m.jsonl"
    try:
        wait_for(lambda: len(lines(tmp_path / "out" / "ticks.jsonl")) == len(first + silent),
                 timeout_s=90)
        produce(kafka_bootstrap, topic, [(0, orjson.dumps(r)) for r in rest])
        wait_for(lambda: len(lines(bars)) >= len(expected), timeout_s=90)
    finally:
        runner.request_stop()
        thread.join(60)
    found = {(b["symbol"], b["window_start"]): b["ticks"] for b in lines(bars)}
    assert found == expected
    assert lines(tmp_path / "out" / "late_vendor_ticks.jsonl") == []
