"""A real PostgreSQL 15 server for the table-sink tests, started on 127.0.0.1.

The tests run as root on this machine and PostgreSQL refuses to run as root, so initdb and
pg_ctl run as the ``postgres`` user (``runuser``) in a temporary folder that user owns,
listening on 127.0.0.1 on a free port with its unix socket in that folder (nothing of the
machine's own cluster is used or touched). ``max_prepared_transactions`` is set above 0 so
two-phase commit can be tested; ``fsync`` is off because the tests kill the client
process, never the server (a server crash is PostgreSQL's own promise, not ours).

``postgres_server`` (session): the running server; ``postgres_dsn`` (per test): a DSN of
a database of its own, dropped after the test.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(os.environ.get("SURESTREAM_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "postgres"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(a) for a in args]
    if os.geteuid() == 0:
        command = ["runuser", "-u", USER, "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@dataclass
class PostgresServer:
    folder: Path
    port: int

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        if not (BIN / "initdb").exists():
            pytest.fail(f"PostgreSQL 15 is not installed ({BIN}/initdb is missing): run "
                        "scripts/test-deps.sh first (the README's test command does)")
        try:
            pwd.getpwnam(USER)
        except KeyError:
            pytest.fail(f"there is no user {USER!r} to run PostgreSQL as (it refuses root): "
                        "run scripts/test-deps.sh first (the README's test command does)")
        done = _as_postgres(BIN / "initdb", "-D", self.data, "-U", USER, "--auth=trust",
                            "--no-sync", "--encoding=UTF8", "--locale=C")
        if done.returncode:
            pytest.fail(f"initdb failed: {done.stderr[-2000:]}")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                       f"unix_socket_directories = '{self.folder}'\n"
                       "max_prepared_transactions = 16\nfsync = off\n"
                       "synchronous_commit = off\nfull_page_writes = off\n"
                       "shared_buffers = 64MB\nmax_connections = 50\n")
        done = _as_postgres(BIN / "pg_ctl", "-D", self.data, "-l", self.folder / "server.log",
                            "-w", "-t", "60", "start")
        if done.returncode:
            log = (self.folder / "server.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"pg_ctl start failed: {done.stderr[-1000:]}\n{log}")

    def stop(self) -> None:
        _as_postgres(BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def create_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.dsn(), autocommit=True) as con:
            con.execute(f'create database "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as con:
            con.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    folder = Path(tempfile.mkdtemp(prefix="surestream-pg-"))
    server = PostgresServer(folder, _free_port())
    try:
        if os.geteuid() == 0:
            shutil.chown(folder, USER)
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    name = postgres_server.create_database()
    yield postgres_server.dsn(name)
    postgres_server.drop_database(name)
