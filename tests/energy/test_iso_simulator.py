"""The ISO feed simulator: same seed same bytes, real node names, prices that add up in
their written decimals, every field, and a truth whose fault counts can be recounted from
the lines themselves."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import orjson
import pytest

from surestream.apps.energy.iso_nodes import ISO_NODES
from surestream.apps.energy.iso_simulator import IsoSimulation
from surestream.apps.energy.iso_time import parse_utc
from surestream.apps.energy.iso_truth import read_truth

FIELDS = {"iso", "node", "interval_start", "interval_end", "event_timestamp", "lmp",
          "energy", "congestion", "loss", "message_id", "event_version", "published_at"}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        IsoSimulation(hours=2, seed=seed).write(tmp_path / name)
    read = lambda n, f: (tmp_path / n / f).read_bytes()  # noqa: E731
    assert read("a", "lmp.jsonl") == read("b", "lmp.jsonl")
    assert read("a", "truth.json") == read("b", "truth.json")
    assert read("a", "lmp.jsonl") != read("c", "lmp.jsonl")


def test_messages_have_every_field_real_nodes_and_exact_price_sums(tmp_path):
    IsoSimulation(hours=2, seed=1).write(tmp_path)
    good = []
    for raw in (tmp_path / "lmp.jsonl").read_bytes().splitlines():
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if set(msg) == FIELDS and isinstance(msg["lmp"], float):
            good.append(msg)
    assert {m["iso"] for m in good} == {"CAISO", "MISO", "PJM", "ERCOT", "NYISO"}
    nodes = {(m["iso"], m["node"]) for m in good}
    assert ("CAISO", "TH_NP15_GEN-APND") in nodes and ("PJM", "PJM WESTERN HUB") in nodes
    assert ("ERCOT", "HB_HOUSTON") in nodes and ("NYISO", "N.Y.C.") in nodes
    assert nodes == {(iso, n.name) for iso, ns in ISO_NODES.items() for n in ns}
    for m in good:  # lmp = energy + congestion + loss in the decimals as written
        parts = [Decimal(repr(m[f])) for f in ("energy", "congestion", "loss")]
        assert Decimal(repr(m["lmp"])) == sum(parts), m
        assert m["interval_start"] == m["event_timestamp"]
        assert m["interval_start"].endswith("Z") and m["published_at"] > m["interval_end"]


def test_truth_counts_recount_from_the_lines(tmp_path):
    truth = IsoSimulation(hours=3, seed=5, duplicate_rate=0.05, correction_rate=0.05,
                          malformed_rate=0.02).write(tmp_path)
    assert truth == read_truth(tmp_path)
    lines = (tmp_path / "lmp.jsonl").read_bytes().splitlines()
    seen: Counter[bytes] = Counter()
    resent = 0
    broken = 0
    versions: dict[tuple[str, str, str], int] = {}
    for raw in lines:
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            broken += 1
            continue
        if "event_timestamp" not in msg or not isinstance(msg["lmp"], float):
            broken += 1
            continue
        resent += seen[raw] > 0
        seen[raw] += 1
        key = (msg["iso"], msg["node"], msg["interval_start"])
        versions[key] = max(versions.get(key, 0), msg["event_version"])
    inj = truth["injected"]
    assert truth["lines"] == len(lines)
    assert sum(inj["malformed"].values()) == broken == truth["expected"]["errors"]
    assert inj["duplicates"] == resent
    assert inj["corrections"] == sum(v - 1 for v in versions.values())
    assert all(inj["malformed"].values())  # every kind of malformed line occurs
    # every line ends in exactly one place
    exp = truth["expected"]
    assert (exp["curated_rows"] + exp["late"] + exp["duplicates"] + exp["superseded"]
            + exp["errors"]) == len(lines)
    # every injected late message is late; the silence's back-fill adds the rest
    assert exp["late_by_cause"]["delayed"] == inj["late"]
    assert set(exp["late_by_cause"]) <= {"delayed", "backfill", "resend"}


def test_the_silent_iso_sends_nothing_for_the_length_of_its_silence(tmp_path):
    truth = IsoSimulation(hours=3, seed=2, silence_minutes=40).write(tmp_path)
    silence = truth["injected"]["silence"]
    assert silence["iso"] == "MISO" and silence["backfilled"] == 8 * len(ISO_NODES["MISO"])
    sent = {"MISO": [], "PJM": []}
    for raw in (tmp_path / "lmp.jsonl").read_bytes().splitlines():
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if msg.get("iso") in sent and msg.get("published_at"):
            sent[msg["iso"]].append(parse_utc(msg["published_at"]))
    gap = lambda times: max(b - a for a, b in zip(times, times[1:], strict=False))  # noqa: E731
    assert gap(sorted(sent["MISO"])) >= 40 * 60_000 > gap(sorted(sent["PJM"]))


@pytest.mark.parametrize("bad", [{"hours": 0}, {"isos": ("SPP",)}, {"late_rate": 0.9},
                                 {"silent_iso": "PJM", "isos": ("CAISO",)},
                                 {"start": "2026-03-02T00:01:00Z"}])
def test_bad_settings_are_refused_by_name(bad):
    with pytest.raises(ValueError):
        IsoSimulation(**bad)
