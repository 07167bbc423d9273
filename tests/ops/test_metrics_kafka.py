"""``surestream run --metrics-port 0`` on a live Kafka source: the endpoint is scraped while
the run goes on (a live run never ends by itself), until the metrics show every record
produced read and committed; then the values are checked against what was produced and
against the output read back, and the run is stopped (SIGTERM: exit 0)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from metrics_scrape import lines_in, matching, scrape, value

import surestream
from surestream.cli.run_ops import read_endpoints

N, EVERY_DUP = 120, 10  # trades, and a duplicate after every 10th
DELAY_MS = 1_000


def produce_trades(bootstrap: str, topic: str) -> tuple[int, int]:
    """(records produced, duplicates among them), one partition, event time 1 s apart."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        f.result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    sent = dups = 0
    for i in range(N):
        trade = json.dumps({"id": i, "ts": 1_000 * i, "qty": 1}).encode()
        for _ in range(2 if i % EVERY_DUP == EVERY_DUP - 1 else 1):
            producer.produce(topic, value=trade, partition=0)
            sent += 1
        dups += i % EVERY_DUP == EVERY_DUP - 1
    assert producer.flush(30) == 0
    return sent, dups


def test_live_kafka_run_is_scraped_while_it_runs(kafka_bootstrap, kafka_topic, tmp_path):
    topic = kafka_topic("metrics")
    sent, dups = produce_trades(kafka_bootstrap, topic)
    spec = {
        "pipeline": "live-metrics",
        "source": {"type": "kafka", "bootstrap": kafka_bootstrap, "topics": [topic],
                   "group_id": "metrics-test", "options": {"fetch.wait.max.ms": 10},
                   "schema": {"id": "int", "ts": "int", "qty": "int"}},
        "steps": [
            {"type": "watermark", "name": "event_time", "timestamp_column": "ts",
             "max_out_of_orderness_ms": DELAY_MS},
            {"type": "keyed_dedup", "name": "dedup_id", "key_fields": ["id"],
             "time_window_ms": 600_000, "state_ttl_ms": 3_600_000}],
        "outputs": {"main": {"type": "file", "path": str(tmp_path / "out" / "trades.jsonl")}},
        "checkpoint": {"dir": str(tmp_path / "cp"), "interval_ms": 200},
        "runtime": {"batch_size": 32, "max_batch_delay_ms": 20},
    }
    spec_file = tmp_path / "live.yaml"
    spec_file.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": str(Path(surestream.__file__).parents[1])}
    with open(tmp_path / "stderr.txt", "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "surestream", "run", str(spec_file),
                                 "--metrics-port", "0"], env=env, stdout=subprocess.DEVNULL,
                                stderr=stderr)
        try:
            m = scrape_until_committed(tmp_path / "cp", sent, proc)
            assert proc.poll() is None  # scraped from the running process
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    assert proc.returncode == 0, (tmp_path / "stderr.txt").read_text()
    assert value(m, "surestream_up", pipeline="live-metrics") == 1
    assert value(m, "surestream_run_info", state="running") == 1
    assert value(m, "surestream_records_in_total") == sent
    assert value(m, "surestream_duplicates_dropped_total", operator="dedup_id") == dups
    assert value(m, "flink_dedup_duplicates_dropped", operator="dedup_id") == dups
    kept = lines_in(tmp_path / "out" / "trades.jsonl")  # read back after the stop
    assert kept == N
    assert value(m, "surestream_output_committed_records_total", output="main",
                 type="file") == kept
    assert value(m, "surestream_state_keys", operator="dedup_id") == N
    # the watermark: the newest event time, less the out-of-orderness, less 1
    assert value(m, "surestream_watermark_ms", operator="event_time") == \
        1_000 * (N - 1) - DELAY_MS - 1
    assert value(m, "flink_watermark_lag_ms", operator="event_time") == DELAY_MS + 1
    assert value(m, "surestream_seconds_since_last_checkpoint") < 60
    # the Kafka reader's probe, where the reader has one (``telemetry()``): read to the end
    consumed = matching(m, "surestream_kafka_consumed_records_total", topic=topic)
    if consumed:
        assert [s[2] for s in consumed] == [sent]
        assert value(m, "surestream_source_lag_records", topic=topic, partition="0") == 0


def scrape_until_committed(folder: Path, sent: int, proc: subprocess.Popen,
                           timeout_s: float = 60.0) -> list:
    """Scrape the run's endpoint (named in its checkpoint folder) until every record has
    been read and the output holds all it was given (a checkpoint committed them)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended"
        url = (read_endpoints(folder) or {}).get("metrics")
        if url:
            try:
                m = scrape(url)
            except urllib.error.URLError:
                m = []
            read = matching(m, "surestream_records_in_total")
            written = matching(m, "surestream_output_records_total", output="main")
            committed = matching(m, "surestream_output_committed_records_total", output="main")
            if read and read[0][2] == sent and written and committed and \
                    committed[0][2] == written[0][2] and \
                    matching(m, "surestream_state_keys", operator="dedup_id"):
                return m
        time.sleep(0.1)
    raise AssertionError("the metrics never showed every record read and committed")
