"""The embedded broker starts on 127.0.0.1, keeps records while running, and stops."""

from __future__ import annotations

import socket

from confluent_kafka import Consumer, Producer, TopicPartition

from surestream.connectors.kafka.broker import EmbeddedBroker


def test_embedded_broker_serves_a_round_trip_and_frees_its_port() -> None:
    with EmbeddedBroker() as broker:
        assert broker.host == "127.0.0.1"
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        for i in range(5):
            producer.produce("round-trip", key=b"k", value=b"%d" % i, partition=0)
        assert producer.flush(10) == 0
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "rt",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition("round-trip", 0, 0)])
        values = []
        while len(values) < 5:
            values += [m.value() for m in consumer.consume(5, 5.0) if not m.error()]
        consumer.close()
        assert values == [b"0", b"1", b"2", b"3", b"4"]
        port = broker.port
    with socket.socket() as s:  # stopped: nothing listens there any more
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_surestream_broker_runs_until_stopped_and_specs_find_it(tmp_path, monkeypatch) -> None:
    """`surestream broker` notes its address while it runs: a spec with no `bootstrap`
    resolves to it; after SIGTERM it has stopped, and with its note gone a spec with no
    `bootstrap` is refused naming the field."""
    import os
    import signal
    import subprocess
    import sys

    import pytest

    from surestream.connectors.kafka.broker import BrokerError, free_port, resolve_bootstrap

    monkeypatch.setenv("SURESTREAM_HOME", str(tmp_path))
    monkeypatch.delenv("SURESTREAM_BOOTSTRAP", raising=False)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "surestream", "broker", "--port", str(port)],
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert f"127.0.0.1:{port}" in proc.stdout.readline()
        assert resolve_bootstrap(None) == f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "broker stopped" in out
    assert not (tmp_path / "broker.json").exists()
    with pytest.raises(BrokerError, match="source.bootstrap"):
        resolve_bootstrap(None, "source.bootstrap")
