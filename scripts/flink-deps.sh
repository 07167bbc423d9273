#!/usr/bin/env bash
# Flink for the Flink runner and its tests (idempotent: a machine that has it all is checked
# in about a second, and nothing is downloaded).
#
#   Java 17           the JVM Flink runs on (Debian openjdk-17-jre-headless, via test-deps.sh)
#   apache-flink      2.3.0, in a virtual environment of its own: it cannot share one pip
#                     environment with surestream's dependencies (apache-flink pins
#                     apache-beam <= 2.61, which pins pyarrow < 17 and numpy < 2.2, while
#                     surestream and pyiceberg need pyarrow >= 17/18: pip reports
#                     ResolutionImpossible)
#   connector jars    shigawire-apache-flink-libraries 2.0.0.post1 (flink-connector-kafka
#                     4.0.1-2.0, kafka-clients 3.9.1), with `pip --target` into a folder of
#                     its own: its wheel unpacks into pyflink/lib/ together with Flink 2.0.0
#                     core jars, which must not sit beside Flink 2.3.0's (docs/flink.md)
#   Java operators    surestream's Java process table functions (keyed deduplication),
#                     compiled with javac (Debian openjdk-17-jdk-headless) against
#                     pyflink/lib into ~/.cache/surestream/flink-operators/ (a jar named by
#                     the sources' hash: rebuilt only when they change; operator_jar.py)
#
# Where: SURESTREAM_FLINK_VENV (default ~/.cache/surestream/flink-venv) and
# SURESTREAM_FLINK_JARS (default ~/.cache/surestream/flink-connectors); the runner finds them
# there (src/surestream/runners/flink/distribution.py, jars.py).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${SURESTREAM_FLINK_VENV:-$HOME/.cache/surestream/flink-venv}"
JARS="${SURESTREAM_FLINK_JARS:-$HOME/.cache/surestream/flink-connectors}"

command -v java >/dev/null || scripts/test-deps.sh openjdk-17-jre-headless
command -v javac >/dev/null || scripts/test-deps.sh openjdk-17-jdk-headless

if ! "$VENV/bin/python" -c "import pyflink" 2>/dev/null; then
    echo "flink-deps: installing apache-flink 2.3.0 into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q apache-flink==2.3.0
fi

if [ ! -f "$JARS/pyflink/lib/flink-connector-kafka.jar" ]; then
    echo "flink-deps: installing the Kafka connector jars into $JARS" >&2
    python3 -m pip install -q --no-deps --target "$JARS" \
        shigawire-apache-flink-libraries==2.0.0.post1
fi

FLINK_LIB="$("$VENV/bin/python" -c 'import os, pyflink; print(os.path.join(os.path.dirname(pyflink.__file__), "lib"))')"
python3 src/surestream/runners/flink/operator_jar.py --flink-lib "$FLINK_LIB" >/dev/null
