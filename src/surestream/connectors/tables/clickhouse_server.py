"""A throwaway ClickHouse server on 127.0.0.1, for tests and benchmarks of the ClickHouse
sink (like ``kafka.broker.EmbeddedBroker`` for Kafka).

It runs the installed ``clickhouse-server`` (Debian's package, ``scripts/test-deps.sh``)
with a config of its own in a temp folder: native and HTTP ports picked free, data, logs
and temp files in that folder, listening on 127.0.0.1 only, no interserver port. As root
it runs as the ``clickhouse`` user (through ``runuser``: a database server should not run
as root). ``stop()`` kills it and removes the folder (nothing in it is kept).
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SERVER = "clickhouse-server"

_CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{root}/log/server.log</log>
    <errorlog>{root}/log/error.log</errorlog><console>0</console></logger>
  <tcp_port>{tcp}</tcp_port>
  <http_port>{http}</http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{root}/data/</path>
  <tmp_path>{root}/tmp/</tmp_path>
  <user_files_path>{root}/user_files/</user_files_path>
  <format_schema_path>{root}/format_schemas/</format_schema_path>
  <users_config>{root}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mlock_executable>false</mlock_executable>
</yandex>
"""

_USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
"""


class ClickHouseNotInstalledError(RuntimeError):
    """No ``clickhouse-server`` on this machine."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedClickHouse:
    """``with EmbeddedClickHouse() as ch: ch.port`` -- a server for the block's duration."""

    def __init__(self, start_timeout_s: float = 60.0) -> None:
        self.host = "127.0.0.1"
        self.port = self.http_port = 0
        self.root: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._timeout = start_timeout_s

    def start(self) -> EmbeddedClickHouse:
        binary = shutil.which(SERVER) or (f"/usr/sbin/{SERVER}"
                                          if os.path.exists(f"/usr/sbin/{SERVER}") else None)
        if binary is None:
            raise ClickHouseNotInstalledError(
                "clickhouse-server is not installed; run scripts/test-deps.sh (apt-get "
                "install clickhouse-server)")
        self.root = Path(tempfile.mkdtemp(prefix="surestream-clickhouse-"))
        self.port, self.http_port = free_port(), free_port()
        for folder in ("log", "data", "tmp", "user_files", "format_schemas"):
            (self.root / folder).mkdir()
        (self.root / "config.xml").write_text(
            _CONFIG.format(root=self.root, tcp=self.port, http=self.http_port))
        (self.root / "users.xml").write_text(_USERS)
        command = [binary, f"--config-file={self.root / 'config.xml'}"]
        if os.geteuid() == 0:  # run as the package's user, owning the folder
            user = pwd.getpwnam("clickhouse")
            os.chmod(self.root, 0o755)
            for path in [self.root, *self.root.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid)
            command = ["runuser", "-u", "clickhouse", "--", *command]
        self._proc = subprocess.Popen(command, cwd=self.root, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        from clickhouse_driver import Client

        logger = logging.getLogger("clickhouse_driver")
        level = logger.level
        logger.setLevel(logging.CRITICAL)  # "connection refused" until it listens: expected
        try:
            self._poll(Client)
        finally:
            logger.setLevel(level)

    def _poll(self, client: type) -> None:
        deadline = time.monotonic() + self._timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"clickhouse-server exited with {self._proc.returncode}: "
                                   f"{self._log_tail()}")
            try:
                client(host=self.host, port=self.port, connect_timeout=1).execute("select 1")
                return
            except Exception:  # noqa: BLE001 -- not listening yet
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("clickhouse-server did not start within "
                                       f"{self._timeout:.0f} s: {self._log_tail()}") from None
                time.sleep(0.1)

    def _log_tail(self) -> str:
        log = self.root / "log" / "error.log" if self.root else None
        return log.read_text()[-2000:] if log and log.exists() else "(no log)"

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            # its own session (runuser and the server); killed outright: every table of a
            # throwaway server is removed with its folder below, so a clean shutdown (2-3 s
            # of flushing) buys nothing
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        self._proc = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> EmbeddedClickHouse:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
