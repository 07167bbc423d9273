"""Which trades are late when raw.trades is read as 8 partitions (the Kafka demo's truth,
apps/trading/partitioned_truth.py), checked against the engine: the router over the
trades split into 8 partition files -- read in turns of `interleave_records`, as a
bounded Kafka source reads its partitions -- flags exactly the trades the model names."""

from __future__ import annotations

from pathlib import Path

from surestream.apps.trading.demo import ROUTED_DATASETS, job_spec_file
from surestream.apps.trading.partitioned_truth import late_trade_ids, trade_record
from surestream.apps.trading.publish import place
from surestream.apps.trading.simulator import MarketSimulation
from surestream.connectors.file_sinks import read_parquet_dataset
from surestream.model.loader import build_spec, load_spec_dict
from surestream.runners.local.runner import LocalRunner


def flagged(warehouse: Path) -> list[str]:
    ids = []
    for name in ROUTED_DATASETS:
        if (warehouse / name).exists():
            df = read_parquet_dataset(warehouse / name)
            ids += df.filter(df["is_late"])["trade_id"].to_list()
    return ids


def test_late_under_8_partitions_is_what_the_router_flags(tmp_path: Path) -> None:
    truth = MarketSimulation(events=30_000, seed=5, days=2).write(tmp_path / "data")
    lines = (tmp_path / "data" / "raw.trades.jsonl").read_bytes().splitlines()
    parts: list[list[bytes]] = [[] for _ in range(8)]
    for line in lines:
        parts[place(line, 8)[1]].append(line)
    for i, part in enumerate(parts):
        (tmp_path / "data" / f"part-{i}.jsonl").write_bytes(b"\n".join(part) + b"\n")
    doc = load_spec_dict(str(job_spec_file("router")))
    doc["source"]["path"] = "data/part-*.jsonl"
    spec = build_spec(doc, tmp_path, "router.yaml")
    result = LocalRunner(spec).run()

    records = [[trade_record(x) for x in part] for part in parts]
    expected = late_trade_ids(records, spec.runtime.interleave_records, 5000)
    found = flagged(tmp_path / "warehouse")
    assert sorted(found) == sorted(expected)
    assert result.counters["late_flagged"] == len(expected)
    # the same rule over the one stream gives the simulator's truth, and the partitioned
    # late trades are among those injected late (an on-time trade is never late)
    single = late_trade_ids([[trade_record(x) for x in lines]], 1024, 5000)
    assert len(single) == truth.trades.late > 0
    assert set(expected) <= set(single)
    # every other count is the same as over the one file
    statuses = truth.trades.statuses
    assert result.written["processed.trades.new"] == statuses["NEW"]
    assert result.counters["duplicates"] == truth.trades.duplicates


def test_model_on_hand_made_partitions() -> None:
    """Two partitions, turns of 2, delay 0: W = min(max_ts) - 1; -inf until both have a
    record; a partition that has ended no longer holds W back."""
    a = [("a1", 100), ("a2", 200), ("a3", 50)]      # a3: W = min(199, 19) = 19 < 50
    b = [("b1", 10), ("b2", 20), None, ("b3", 5)]   # b3, a ended: W = 19 >= 5: late
    assert late_trade_ids([a, b], 2, 0) == ["b3"]
    assert late_trade_ids([[("x", 10), ("y", 9), ("z", 10)]], 1, 0) == ["y"]
