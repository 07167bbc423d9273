"""The hardening plan's migration "enable exactly-once sinks" on existing checkpoints: a
job writing a Kafka topic at least once (``exactly_once: false``) is stopped, the output
gets ``exactly_once: true``, and the job resumes from its at-least-once checkpoint. The
topic then holds every record exactly once -- what the at-least-once epochs flushed before
the stop is recognised as landed, not produced again -- and a crash after the switch
loses and doubles nothing either."""

from __future__ import annotations

import pytest
import yaml
from confluent_kafka.admin import AdminClient, NewTopic
from template_example import lmp_feed, write_feed

from surestream.connectors.kafka.reader import committed_messages, read_all
from surestream.model.loader import load_spec
from surestream.runners.local.runner import LocalRunner


class Crash(Exception):
    """Stands for the process dying mid-run."""


def spec_doc(bootstrap: str, topic: str, exactly_once: bool) -> dict:
    return {
        "pipeline": "eos-switch",
        "source": {"type": "file", "path": "lmp.jsonl", "format": "jsonl"},
        "steps": [{"type": "watermark", "name": "event_time",
                   "timestamp_column": "interval_start", "max_out_of_orderness_ms": 600000},
                  {"type": "late_data_side_output", "name": "quarantine_late",
                   "output_tag": "late"}],
        "outputs": {"main": {"type": "kafka", "bootstrap": bootstrap, "topic": topic,
                             "exactly_once": exactly_once},
                    "late": {"type": "file", "path": "out/late.jsonl"}},
        "checkpoint": {"dir": "out/checkpoints", "interval_records": 20},
        "runtime": {"batch_size": 10},
    }


def write_spec(folder, doc):
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_spec(path)


def run(spec, stop_after: int | None = None, crash_after: int | None = None):
    seen = []

    def progress(_):
        seen.append(1)
        if len(seen) == stop_after:
            runner.request_stop()
        if len(seen) == crash_after:
            raise Crash

    runner = LocalRunner(spec, progress=progress)
    try:
        return runner.run()
    finally:
        for sink in runner.sinks.values():  # a dead process's producer is gone too
            sink.close()


def test_switching_a_topic_to_exactly_once_on_at_least_once_checkpoints(
        tmp_path, kafka_bootstrap, kafka_topic):
    records, truth = lmp_feed()
    write_feed(tmp_path / "lmp.jsonl", records)
    topic = kafka_topic("curated")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for f in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        f.result(30)

    first = run(write_spec(tmp_path, spec_doc(kafka_bootstrap, topic, False)), stop_after=5)
    assert first.interrupted and first.written["main"] > 0
    assert load_spec(tmp_path / "spec.yaml").outputs["main"].delivery == "at_least_once"

    switched = write_spec(tmp_path, spec_doc(kafka_bootstrap, topic, True))
    assert switched.outputs["main"].delivery == "exactly_once"
    with pytest.raises(Crash):  # a crash after the switch, then the resume that finishes
        run(switched, crash_after=4)
    last = run(switched)
    assert not last.interrupted

    got = [m.record() for m in committed_messages(read_all(kafka_bootstrap, topic))]
    sent = [r for r in records if r["node"] != "LATE"]
    assert len(got) == len(sent)  # nothing lost, nothing doubled
    assert sorted(r["message_id"] for r in got) == sorted(r["message_id"] for r in sent)
    assert len(got) == truth["curated"] + truth["duplicates"]  # (no dedup step here)
