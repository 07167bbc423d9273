"""The Flink job configuration and the connector jars, without starting a JVM."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from surestream.runners.flink.distribution import flink_home
from surestream.runners.flink.environment import flink_configuration, parse_address
from surestream.runners.flink.jars import kafka_connector_jars, pipeline_jars_value


def test_local_configuration_binds_loopback_and_checkpoints_exactly_once(tmp_path: Path):
    conf = flink_configuration(checkpoint_dir=tmp_path / "ck", checkpoint_interval_ms=250)
    assert conf["pipeline.auto-watermark-interval"] == "0 ms"
    assert conf["execution.checkpointing.interval"] == "250 ms"
    assert conf["execution.checkpointing.mode"] == "EXACTLY_ONCE"
    assert conf["execution.checkpointing.dir"] == (tmp_path / "ck/flink/checkpoints").as_uri()
    assert conf["execution.checkpointing.savepoint-dir"] == \
        (tmp_path / "ck/flink/savepoints").as_uri()
    for key in ("jobmanager.bind-host", "taskmanager.bind-host", "rest.bind-address",
                "rest.address", "taskmanager.host", "jobmanager.rpc.address"):
        assert conf[key] == "127.0.0.1", key
    assert "execution.target" not in conf  # local mini-cluster
    assert "execution.savepoint.path" not in conf


def test_remote_configuration_targets_the_address_and_restarts_from_a_savepoint(tmp_path):
    conf = flink_configuration(checkpoint_dir=tmp_path, flink_address="10.0.0.5:8082",
                               savepoint_path="file:/sp/savepoint-1")
    assert (conf["execution.target"], conf["rest.address"], conf["rest.port"]) == \
        ("remote", "10.0.0.5", "8082")
    assert conf["execution.savepoint.path"] == "file:/sp/savepoint-1"


@pytest.mark.parametrize("address", ["8081", "host:", ":8081", "host:port"])
def test_a_malformed_flink_address_is_refused_with_the_expected_form(address):
    with pytest.raises(ValueError, match="expected host:port"):
        parse_address(address)


def _manifest_version(jar: Path) -> str:
    with zipfile.ZipFile(jar) as archive:
        manifest = archive.read("META-INF/MANIFEST.MF").decode()
    return next(line.split(":", 1)[1].strip() for line in manifest.splitlines()
                if line.startswith("Implementation-Version"))


def test_kafka_connector_jars_are_found_outside_flinks_lib_with_their_versions():
    jars = kafka_connector_jars()
    assert [jar.name for jar in jars] == ["flink-connector-kafka.jar", "kafka-clients.jar"]
    assert _manifest_version(jars[0]) == "4.0.1-2.0"
    with zipfile.ZipFile(jars[1]) as archive:
        assert "version=3.9.1" in archive.read("kafka/kafka-version.properties").decode()
    # Flink's own lib/ must hold no jar of the connector package (its Flink 2.0 core jars
    # would sit beside flink-dist 2.3.0 on every classpath)
    lib = {path.name for path in (flink_home() / "lib").iterdir()}
    assert not lib & {"flink-connector-kafka.jar", "kafka-clients.jar", "flink-core.jar"}
    value = pipeline_jars_value(jars)
    assert value.split(";") == [jar.resolve().as_uri() for jar in jars]


def test_missing_connector_jars_name_the_folder_and_the_install_step(tmp_path, monkeypatch):
    monkeypatch.setenv("SURESTREAM_FLINK_JARS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="scripts/flink-deps.sh") as info:
        kafka_connector_jars()
    assert str(tmp_path) in str(info.value)


def test_a_failing_job_ends_instead_of_restarting_forever(tmp_path):
    """Flink's default with checkpointing restarts a failed job without end: the local
    command would hang. In-process: no restart (the error ends the command); on a cluster:
    three restarts from the last checkpoint, then the job fails."""
    local = flink_configuration(checkpoint_dir=tmp_path)
    assert local["restart-strategy.type"] == "none"
    remote = flink_configuration(checkpoint_dir=tmp_path, flink_address="127.0.0.1:8081")
    assert (remote["restart-strategy.type"],
            remote["restart-strategy.fixed-delay.attempts"]) == ("fixed-delay", "3")
