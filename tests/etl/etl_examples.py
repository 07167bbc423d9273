"""Helpers of the ETL import tests: the shipped examples copied to a folder of the test's
own, a configuration edited the way a user points it at their cluster, and the
``surestream`` command run as a user runs it (``import`` and ``validate`` in this process,
through the same ``main``, which keeps the tests quick; ``run`` in a process of its own)."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

EXAMPLES = Path(str(resources.files("surestream.examples") / "etl"))
NAMES = ("user-analytics", "sliding-sales-dashboard", "low-latency-fraud",
         "streaming-example")


def at(hhmm: str, day: str = "2026-01-01") -> int:
    """Epoch milliseconds of ``day`` at ``hh:mm[:ss]`` UTC."""
    fmt = "%Y-%m-%dT%H:%M:%S" if hhmm.count(":") == 2 else "%Y-%m-%dT%H:%M"
    return int(dt.datetime.strptime(f"{day}T{hhmm}", fmt).replace(
        tzinfo=dt.UTC).timestamp() * 1000)


def copy_examples(folder: Path) -> Path:
    """The examples and their data in ``folder`` (outputs land beside them)."""
    target = folder / "etl"
    shutil.copytree(EXAMPLES, target)
    return target


def load(folder: Path, name: str) -> dict[str, Any]:
    return json.loads((folder / f"{name}.json").read_text())


def streaming(doc: dict[str, Any]) -> dict[str, Any]:
    value = doc["streamingConfigJson"]
    return json.loads(value) if isinstance(value, str) else value


def save(folder: Path, name: str, doc: dict[str, Any]) -> Path:
    path = folder / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def surestream(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surestream", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def cli(*args: str, cwd: Path) -> Result:
    """``surestream ARGS`` in this process, from ``cwd``: exit code and printed text."""
    from surestream.cli.main import main

    out, err, before = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(cwd)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:  # argparse's usage errors
                code = int(e.code or 0)
    finally:
        os.chdir(before)
    return Result(code, out.getvalue(), err.getvalue())


def import_config(folder: Path, name: str, *extra: str) -> Path:
    """``surestream import etl-config NAME.json --out NAME.yaml``; asserts exit 0."""
    r = cli("import", "etl-config", f"{name}.json", "--out", f"{name}.yaml", *extra,
            cwd=folder)
    assert r.returncode == 0, r.stderr
    return folder / f"{name}.yaml"


def jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def create_topic(bootstrap: str, topic: str) -> str:
    """A topic of one partition: the examples' lateness depends on the records' order."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(15)
    return topic


def produce_file(bootstrap: str, topic: str, path: Path) -> None:
    """The file's lines as records of ``topic``, in order, each acknowledged."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all"})
    failures: list[Any] = []
    for line in path.read_text().splitlines():
        if line.strip():
            producer.produce(topic, line.encode(),
                             on_delivery=lambda err, _msg: err and failures.append(err))
    assert producer.flush(30) == 0 and not failures, failures


def topic_values(bootstrap: str, topic: str, expected: int) -> list[dict[str, Any]]:
    """The JSON values of every committed record of ``topic`` once ``expected`` have
    arrived, and a moment more to catch any extra."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "etl-import-readback",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 10,
                         "isolation.level": "read_committed"})
    try:
        partitions = consumer.list_topics(topic, 10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        messages: list[Any] = []
        for _ in range(150):
            messages += [m for m in consumer.consume(1000, 0.2) if not m.error()]
            if len(messages) >= expected:
                break
        messages += [m for m in consumer.consume(1000, 0.5) if not m.error()]
        return [json.loads(m.value()) for m in messages]
    finally:
        consumer.close()
