"""Session windows on Flink SQL (issue 15 item 1): the SESSION window TVF, differential
against the local runner, and the refusal of the configurations whose late split SQL cannot
reproduce (``runners/flink/sql_session.py``).

The shared Flink cases hold one session case, ``w02_session_late_bridge``, with allowed
lateness (refused: revisions). Its input with zero lateness is run here on both runners:

- behind a record-level late step (the translated configuration): the sessions and both
  late outputs equal the local runner's and the values worked out by hand below;
- without the late step the window is refused, naming ``steps[1].kind``: a record more than
  the gap behind the watermark may still extend an open session (``TOUCH`` below shows one
  on the local runner), which no record-level filter can tell.

One driver (one JVM) runs every Flink job of the module.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_flink_sql_cases import case_doc, late_view, read_jsonl

from surestream.model.loader import build_spec
from surestream.runners.flink.runner import flink_job
from surestream.runners.flink.sql_refusals import FlinkUnsupported
from surestream.runners.flink.sql_session import SESSION_LATE_REASON
from surestream.runners.flink.submit import run_jobs
from surestream.runners.flink.translate import translate
from surestream.runners.local.runner import LocalRunner

W02 = "w02_session_late_bridge"
LATE_STEP = {"type": "late_data_side_output", "name": "late_split", "output_tag": "late"}
#: gap 3 s, D = 1 s: a4 (2000) is 5999 ms behind the watermark (7999) -- its own window
#: [2000, 5000) is due -- but it touches the open session [5000, 12000) and extends it
TOUCH = [{"k": "A", "ts": 5000, "v": 1.0, "id": "a1"}, {"k": "A", "ts": 7000, "v": 2.0, "id": "a2"},
         {"k": "A", "ts": 9000, "v": 3.0, "id": "a3"}, {"k": "A", "ts": 2000, "v": 4.0, "id": "a4"},
         {"k": "A", "ts": 20000, "v": 5.0, "id": "a5"}]

#: D = 10 s keeps both sessions open: b5 (2500) bridges [1000, 4500) and [5000, 9000) --
#: float sums merged (0.1 + 0.3) + (0.2 + 0.4), then + 0.7, on both runners
BRIDGE = [{"k": "A", "ts": ts, "v": v, "id": f"b{i}"} for i, (ts, v) in enumerate(
    [(1000, 0.1), (5000, 0.2), (1500, 0.3), (6000, 0.4), (2500, 0.7), (40000, 1.0)], start=1)]


def session_doc(*, late_step: bool, keys: list[str] | None = None,
                source: Path | None = None) -> dict:
    doc = case_doc(W02, lateness=0, steps=[LATE_STEP] if late_step else [])
    if keys is not None:
        doc["steps"][-1]["key_fields"] = keys
    if source is not None:
        doc["source"]["path"] = str(source)
    return doc


def sessions(rows: list[dict]) -> list[tuple]:
    return sorted((r.get("k"), r["window_start"], r["window_end"], r["revision"], r["count"],
                   r["sum"], r["supersedes"]) for r in rows)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Every Flink job of the module in one driver, and the same specs on the local runner:
    name -> (flink out folder, local out folder)."""
    root = tmp_path_factory.mktemp("sessions")
    bridge = root / "bridge.jsonl"
    bridge.write_text("".join(json.dumps(r) + "\n" for r in BRIDGE))
    bridge_doc = session_doc(late_step=True, source=bridge)
    bridge_doc["steps"][0]["max_out_of_orderness_ms"] = 10_000
    bridge_doc["steps"][-1]["aggregations"] = {"count": "count()", "sum": "sum(v)",
                                               "avg": "avg(v)"}
    docs = {"keyed": session_doc(late_step=True),
            "global": session_doc(late_step=True, keys=[]), "bridge": bridge_doc}
    jobs, out = [], {}
    for name, doc in docs.items():
        flink_base, local_base = root / name / "flink", root / name / "local"
        flink_base.mkdir(parents=True)
        local_base.mkdir(parents=True)
        doc = {**doc, "pipeline": f"session_{name}"}
        jobs.append(flink_job(build_spec(doc, base_dir=flink_base)))
        LocalRunner(build_spec(doc, base_dir=local_base)).run()
        out[name] = (flink_base / "out", local_base / "out")
    run_jobs(jobs, root / "flink-jobs")
    return out


def test_keyed_sessions_behind_the_late_step_equal_local(runs: dict) -> None:
    flink_out, local_out = runs["keyed"]
    got = sessions(read_jsonl(flink_out / "main.jsonl"))
    # worked out by hand (SEMANTICS §2, §3, §5): the watermark is max ts - 1001; e4 (4000
    # at W 9999), e6, e9, e11, e12, e13 and e14 are at or behind it and leave at the late
    # step; the others form these sessions (gap 3 s)
    assert got == [("A", 1000, 4000, 0, 1, 1.0, []), ("A", 7000, 10000, 0, 1, 2.0, []),
                   ("A", 10500, 14000, 0, 2, 8.0, []), ("A", 17000, 20000, 0, 1, 7.0, []),
                   ("A", 30000, 36000, 0, 2, 25.0, []), ("B", 16000, 19000, 0, 1, 8.0, [])]
    assert got == sessions(read_jsonl(local_out / "main.jsonl"))
    flink_late = read_jsonl(flink_out / "late.jsonl")
    assert sorted(r["id"] for r in flink_late) == sorted(
        ["e4", "e6", "e9", "e11", "e12", "e13", "e14"])
    assert late_view(flink_late) == late_view(read_jsonl(local_out / "late.jsonl"))
    # behind the late step no record is late for a session, on either runner
    assert read_jsonl(flink_out / "late_window.jsonl") == []
    assert read_jsonl(local_out / "late_window.jsonl") == []
    assert read_jsonl(flink_out / "errors.jsonl") == []


def test_sessions_without_keys_equal_local(runs: dict) -> None:
    """No key_fields: one session stream over every record (SESSION without PARTITION BY);
    B's 16000 now joins A's 17000 in one session."""
    flink_out, local_out = runs["global"]
    got = sessions(read_jsonl(flink_out / "main.jsonl"))
    assert (None, 16000, 20000, 0, 2, 15.0, []) in got
    assert got == sessions(read_jsonl(local_out / "main.jsonl"))
    assert late_view(read_jsonl(flink_out / "late.jsonl")) == \
        late_view(read_jsonl(local_out / "late.jsonl"))


def test_session_without_a_late_step_is_refused(tmp_path: Path) -> None:
    """The w02 input with zero lateness and no late step: refused, with the reason."""
    with pytest.raises(FlinkUnsupported) as refused:
        translate(build_spec(session_doc(late_step=False), base_dir=tmp_path))
    assert refused.value.path == "steps[1].kind"
    assert refused.value.reason == SESSION_LATE_REASON
    assert "late_data_side_output" in refused.value.reason


def test_why_a_record_filter_cannot_split_session_lateness(tmp_path: Path) -> None:
    """The reason of the refusal, on the local runner: a4's own window [2000, 5000) is due
    (2000 + 3000 - 1 <= W = 7999), yet it is not late -- it extends the open session
    [5000, 12000) to [2000, 12000). A filter on the record alone would call it late."""
    data = tmp_path / "touch.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in TOUCH))
    spec = build_spec(session_doc(late_step=False, source=data), base_dir=tmp_path)
    LocalRunner(spec).run()
    out = tmp_path / "out"
    assert sessions(read_jsonl(out / "main.jsonl")) == [
        ("A", 2000, 12000, 0, 4, 10.0, []), ("A", 20000, 23000, 0, 1, 5.0, [])]
    assert read_jsonl(out / "late_window.jsonl") == []


def test_session_with_allowed_lateness_is_refused(tmp_path: Path) -> None:
    doc = session_doc(late_step=True)
    doc["steps"][-1]["allowed_lateness_ms"] = 10_000
    with pytest.raises(FlinkUnsupported) as refused:
        translate(build_spec(doc, base_dir=tmp_path))
    assert refused.value.path == "steps[2].allowed_lateness_ms"


def test_session_sql_is_the_session_tvf(tmp_path: Path) -> None:
    sql = translate(build_spec(session_doc(late_step=True), base_dir=tmp_path)).script()
    assert "SESSION(TABLE `s1_late_split` PARTITION BY `k`, DESCRIPTOR(rt), " \
           "INTERVAL '0 00:00:03.000' DAY TO SECOND(3))" in sql


def test_a_record_bridging_two_sessions_merges_float_sums_alike(runs: dict) -> None:
    flink_out, local_out = runs["bridge"]
    got = sorted((r["window_start"], r["window_end"], r["count"], r["sum"], r["avg"])
                 for r in read_jsonl(flink_out / "main.jsonl"))
    bridged = (0.1 + 0.3) + (0.2 + 0.4) + 0.7
    assert got == [(1000, 9000, 5, bridged, bridged / 5), (40000, 43000, 1, 1.0, 1.0)]
    assert got == sorted((r["window_start"], r["window_end"], r["count"], r["sum"], r["avg"])
                         for r in read_jsonl(local_out / "main.jsonl"))
