"""SEMANTICS §3: the late-data step and its strategies, through the real runner."""

import logging

import pytest

from surestream.model.steps import LateDataStep, WatermarkStep
from surestream.testing import run_steps

RECORDS = [{"id": "a", "ts": 10_000}, {"id": "b", "ts": 7_000}, {"id": "c", "ts": 7_999},
           {"id": "d", "ts": 8_000}, {"id": "e", "ts": 20_000}, {"id": "f", "ts": 17_998}]


def steps(strategy="quarantine"):
    return [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=2000),
            LateDataStep(name="q", output_tag="late", strategy=strategy)]


@pytest.mark.parametrize("batch_size", [1, 2, 100])
def test_record_at_or_behind_the_watermark_is_late_with_metadata(batch_size):
    out = run_steps(RECORDS, steps(), batch_size=batch_size, pipeline="p")
    # W after a=10000 is 7999: b (7000) and c (7999 == W) are late, d (8000) is not;
    # after e=20000, W = 17999: f (17998) is late.
    assert [r["id"] for r in out["main"]] == ["a", "d", "e"]
    late = out["late"]
    assert [r["id"] for r in late] == ["b", "c", "f"]
    assert late[0] == {"id": "b", "ts": 7000, "watermark_ms": 7999, "lateness_ms": 999,
                       "original_timestamp": 7000, "pipeline": "p", "operator": "q"}
    assert [r["lateness_ms"] for r in late] == [999, 0, 1]


class _Kept(logging.Handler):
    """Keeps the records of the logger it is attached to: unlike pytest's caplog (a root
    handler) it sees them even after a test in the same process has set up surestream's
    logging, which stops propagation to the root."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("strategy", ["log_and_drop", "drop"])
def test_dropping_strategies_count_but_emit_nothing(strategy):
    from surestream.runners.local.runner import LocalRunner
    from surestream.testing import memory_spec

    spec = memory_spec(RECORDS, steps(strategy))
    late_logger, kept = logging.getLogger("surestream.late"), _Kept()
    late_logger.addHandler(kept)
    level = late_logger.level
    late_logger.setLevel(logging.WARNING)
    try:
        result = LocalRunner(spec).run()
    finally:
        late_logger.removeHandler(kept)
        late_logger.setLevel(level)
    assert "late" not in result.collected
    assert result.counters["late"] == 3
    assert [r["id"] for r in result.rows("main")] == ["a", "d", "e"]
    logged = [r.getMessage() for r in kept.records]
    if strategy == "log_and_drop":
        # one line per dropped record, with the §3 metadata
        assert len(logged) == 3
        assert all("late record dropped by q" in m for m in logged)
        assert "'id': 'b'" in logged[0] and "'watermark_ms': 7999" in logged[0]
        assert "'lateness_ms': 999" in logged[0]
    else:
        assert logged == []  # drop: counted, and nothing else


def test_dlq_strategy_emits_like_quarantine():
    out = run_steps(RECORDS, steps("dlq"))
    assert [r["id"] for r in out["late"]] == ["b", "c", "f"]


@pytest.mark.parametrize("batch_size", [1, 2, 100])
def test_flag_strategy_keeps_every_record_and_marks_the_late_ones(batch_size):
    from surestream.runners.local.runner import LocalRunner
    from surestream.testing import memory_spec

    flag = [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=2000),
            LateDataStep(name="q", strategy="flag", flag_column="is_late")]
    result = LocalRunner(memory_spec(RECORDS, flag, batch_size=batch_size)).run()
    # the same rule as the quarantine: b, c (W 7999) and f (W 17999) are late; none leaves
    assert [(r["id"], r["is_late"]) for r in result.rows("main")] == [
        ("a", False), ("b", True), ("c", True), ("d", False), ("e", False), ("f", True)]
    assert "late" not in result.collected
    assert result.operator_counters["q"] == {"late_flagged": 3}
