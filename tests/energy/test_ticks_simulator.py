"""The vendor-tick simulator (deterministic, exact truth), ``surestream simulate ticks``,
and the shipped ``vendor_ticks`` template (= the factory's defaults)."""

from __future__ import annotations

import json
from importlib import resources

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from surestream.apps.energy.ticks_simulator import TickSimulation
from surestream.apps.energy.ticks_template import vendor_ticks
from surestream.cli.main import main
from surestream.model.loader import build_spec

TINY = {"minutes": 6, "seed": 3, "vendors": 3, "symbols": 2, "idle_minutes": 2,
        "ticks_per_s": 2.0}


def test_same_seed_same_bytes_other_seed_other_feed(tmp_path):
    a, b, c = (TickSimulation(**{**TINY, "seed": s}) for s in (3, 3, 4))
    lines_a, truth_a = a.generate()
    lines_b, truth_b = b.generate()
    lines_c, _ = c.generate()
    assert lines_a == lines_b and truth_a.to_dict() == truth_b.to_dict()
    assert lines_a != lines_c


def test_the_truth_counts_what_was_written(tmp_path):
    truth = TickSimulation(**TINY).write(tmp_path)
    lines = (tmp_path / "ticks.jsonl").read_bytes().splitlines()
    parsed, cut = [], 0
    for line in lines:
        try:
            parsed.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            cut += 1
    timed = [r for r in parsed if str(r.get("event_time", "")).startswith("20")]
    keys = [(r["vendor"], r["symbol"], r["tick_id"]) for r in timed]
    assert truth.lines == len(lines)
    assert truth.malformed_kinds["cut_short"] == cut
    assert truth.malformed == len(lines) - len(timed)
    assert truth.ticks == len(timed)
    # duplicates and late ticks are extra lines of known keys: distinct keys = the rest
    assert len(set(keys)) == truth.curated + truth.late
    assert len(keys) - len(set(keys)) == truth.duplicates
    assert all(r["event_time"].endswith("Z") and len(r["event_time"]) == 24 for r in timed)
    (idle,) = truth.idle
    silent = [r for r in timed if r["vendor"] == idle["vendor"]
              and idle["from_ms"] <= _ms(r["event_time"]) < idle["to_ms"]]
    assert silent == []


def _ms(text: str) -> int:
    import datetime as dt

    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def test_impossible_settings_are_refused_with_the_setting_named():
    with pytest.raises(ValueError, match="idle_vendors: 3 must be below vendors"):
        TickSimulation(vendors=3, idle_vendors=3)
    with pytest.raises(ValueError, match="late_rate"):
        TickSimulation(late_rate=0.5)


def test_simulate_ticks_writes_the_feed_and_its_truth(tmp_path, capsys):
    out = tmp_path / "feed"
    assert main(["simulate", "ticks", "--minutes", "6", "--vendors", "3", "--symbols", "2",
                 "--idle-minutes", "2", "--ticks-per-s", "2", "--seed", "3",
                 "--out", str(out)]) == 0
    truth = json.loads((out / "truth.json").read_text())
    assert truth == TickSimulation(**TINY).generate()[1].to_dict()
    assert "curated (unique, on time)" in capsys.readouterr().out
    assert main(["simulate", "ticks", "--vendors", "9", "--out", str(out)]) == 2


def test_the_shipped_yaml_is_the_factory_with_its_defaults(tmp_path):
    shipped = resources.files("surestream.apps").joinpath("templates/vendor_ticks.yaml")
    text = shipped.read_text()
    assert text.startswith("# surestream template vendor_ticks")  # the registry's header
    assert yaml.safe_load(text) == vendor_ticks()
    spec = build_spec(vendor_ticks(), tmp_path, None)
    steps = {s.name: s for stream in spec.streams.values() for s in stream.steps}
    assert steps["event_time_watermark"].max_out_of_orderness_ms == 30_000
    assert steps["event_time_watermark"].idle_source_timeout_ms == 60_000
    assert steps["dedup_ticks"].key_fields == ["vendor", "symbol", "tick_id"]
    assert (steps["dedup_ticks"].time_window_ms, steps["dedup_ticks"].state_ttl_ms) == \
        (60_000, 300_000)


def test_the_feed_profile_parameters_reach_the_spec(tmp_path):
    spec = build_spec(vendor_ticks(watermark_max_out_of_order_ms=5_000, dedup_window_ms=10_000,
                                   state_ttl_ms=20_000, idle_timeout_ms=7_000), tmp_path, None)
    steps = {s.name: s for stream in spec.streams.values() for s in stream.steps}
    assert steps["event_time_watermark"].max_out_of_orderness_ms == 5_000
    assert steps["event_time_watermark"].idle_source_timeout_ms == 7_000
    assert (steps["dedup_ticks"].time_window_ms, steps["dedup_ticks"].state_ttl_ms) == \
        (10_000, 20_000)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), vendors=st.integers(2, 6), symbols=st.integers(1, 8),
       idle=st.integers(0, 1), rates=st.tuples(*[st.floats(0, 0.05)] * 3))
def test_any_seed_gives_a_feed_whose_truth_adds_up(seed, vendors, symbols, idle, rates):
    duplicate_rate, late_rate, malformed_rate = rates
    lines, truth = TickSimulation(
        minutes=5, seed=seed, vendors=vendors, symbols=symbols, ticks_per_s=1,
        idle_vendors=idle, idle_minutes=2, duplicate_rate=duplicate_rate,
        late_rate=late_rate, malformed_rate=malformed_rate).generate()
    assert truth.lines == len(lines) == \
        truth.curated + truth.duplicates + truth.late + truth.malformed
    assert sum(b["ticks"] for b in truth.bars) == truth.curated
    assert all(t["lateness_ms"] > 0 for t in truth.late_ticks)
