"""Shared fixtures: where ../shared is, and small trades files made by its generator.

The suite leaves nothing in the working tree: tests write under pytest's ``tmp_path``,
pipelines with memory outputs checkpoint into temporary folders (``surestream.testing``,
``Pipeline``), and the caches of plugins that would write into the current folder --
hypothesis' example database, pytest-benchmark's storage -- go to a temporary folder
removed at exit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from surestream.io.scratch import scratch_dir

REPO = Path(__file__).resolve().parents[1]
PLUGIN_CACHES = Path(scratch_dir("surestream-tests-"))

set_hypothesis_home_dir(PLUGIN_CACHES / "hypothesis")

# The suite starts a few thousand Python children (`surestream run` under `verify`, the
# documented commands, ...). Where PYTHONDONTWRITEBYTECODE is set (this machine sets it),
# each child compiled surestream's modules from source again: ~0.2 s of CPU apiece. The
# children keep their bytecode under the session's temporary folder instead (never in the
# working tree), so each module is compiled once per worker.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
os.environ["PYTHONPYCACHEPREFIX"] = str(PLUGIN_CACHES / "pycache")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """pytest-benchmark, where installed, keeps its storage out of the working tree too."""
    if getattr(config.option, "benchmark_storage", None) == "file://./.benchmarks":
        config.option.benchmark_storage = f"file://{PLUGIN_CACHES / 'benchmarks'}"


#: test files that take minutes, handed out to the workers first (figures: ``pytest
#: --durations``; the longest first)
RUN_FIRST = ("tests/test_crash_suite_trading.py", "tests/test_crash_suite.py",
             "tests/test_docs_commands.py", "tests/test_docs_commands_trading.py",
             "tests/flink/test_flink_differential.py", "tests/flink/test_flink_run_cli.py",
             "tests/flink/test_flink_sql_cases.py", "tests/test_verify.py",
             "tests/flink/test_flink_crash.py", "tests/kafka/test_kafka_verify_journal.py",
             "tests/flink/test_flink_dedup.py", "tests/flink/test_flink_udf.py",
             "tests/flink/test_flink_sql_expressions.py", "tests/test_recovery.py",
             "tests/flink/test_flink_cluster_standalone.py", "tests/semantics/test_dedup.py",
             "tests/kafka/test_kafka_source_crash.py", "tests/flink/test_flink_sql_sessions.py",
             "tests/energy/test_iso_crash.py", "tests/tables/test_postgres_crash.py",
             "tests/flink/test_flink_kafka.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The ``RUN_FIRST`` files first, in that order (``pytest -n 6 --dist loadfile
    --no-loadscope-reorder`` hands the files out in collection order): a long file that
    starts last ends last, and the suite's wall time is that of its busiest worker."""

    def rank(item: pytest.Item) -> int:
        file = item.nodeid.split("::")[0]
        return RUN_FIRST.index(file) if file in RUN_FIRST else len(RUN_FIRST)

    items.sort(key=rank)


def shared_dir() -> Path:
    """The steering repo's shared/ folder, beside this repository's root."""
    for candidate in (REPO.parent / "shared", REPO / "shared"):
        if (candidate / "SEMANTICS.md").exists():
            return candidate
    pytest.fail("../shared (SEMANTICS.md, flink-cases, bench) not found beside the repo")


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_dir()


@pytest.fixture(scope="session")
def trades_small(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> dict:
    """20,000 trades from the reference generator (seeded) and its ground-truth manifest."""
    out = tmp_path_factory.mktemp("bench-data")
    subprocess.run([sys.executable, str(shared / "bench" / "gen_trades.py"), "--n", "20000",
                    "--seed", "7", "--out", str(out), "--parts", "0"],
                   check=True, capture_output=True)
    manifest = json.loads((out / "trades-20000.manifest.json").read_text())
    manifest["path"] = str(out / "trades-20000.jsonl")
    return manifest


# -- Kafka: a real Kafka-protocol broker, started here ---------------------------------------
@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory):
    """The bootstrap address of a Kafka-protocol broker for the whole session: the cluster
    ``SURESTREAM_TEST_KAFKA`` names, else an embedded tansu broker on 127.0.0.1 (started
    here, stopped at the end). Tests use topics of their own (``kafka_topic``)."""
    import os

    from surestream.connectors.kafka.broker import TEST_CLUSTER_ENV, EmbeddedBroker

    given = os.environ.get(TEST_CLUSTER_ENV)
    if given:
        yield given
        return
    log = tmp_path_factory.mktemp("kafka") / "broker.log"
    with EmbeddedBroker(log=log) as broker:
        yield broker.bootstrap


@pytest.fixture
def kafka_topic(request: pytest.FixtureRequest):
    """A function making topic names unique to this test: ``kafka_topic("trades")``."""
    import re
    import uuid

    stem = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:60]

    def name(base: str = "t") -> str:
        return f"{base}.{stem}.{uuid.uuid4().hex[:8]}"

    return name


# -- ClickHouse: a real server, started here --------------------------------------------------
@pytest.fixture(scope="session")
def clickhouse_server():
    """A ClickHouse server for the whole session (``clickhouse-server`` from
    scripts/test-deps.sh) on 127.0.0.1, free ports, its own config and data in a temp
    folder; stopped at the end. Tests use tables of their own names."""
    from surestream.connectors.tables.clickhouse_server import EmbeddedClickHouse

    with EmbeddedClickHouse() as server:
        yield server
