"""A real PostgreSQL 15 server of our own on 127.0.0.1, for demos and tests.

``with EmbeddedPostgres() as server: dsn = server.dsn(server.create_database())``

PostgreSQL refuses to run as root, so when we are root initdb and pg_ctl run as the
``postgres`` user (``runuser``) in a temporary folder that user owns, listening on
127.0.0.1 on a free port with its unix socket in that folder (nothing of the machine's
own cluster is used or touched). ``max_prepared_transactions`` is above 0 so two-phase
commit can be used; ``fsync`` is off: demos and tests kill the client process, never the
server (a server crash is PostgreSQL's own promise, not ours). Needs the Debian
``postgresql-15`` package (``scripts/test-deps.sh`` installs it).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

BIN = Path(os.environ.get("SURESTREAM_PG_BIN",
                          os.environ.get("SURESTREAM_TEST_PG_BIN", "/usr/lib/postgresql/15/bin")))
USER = "postgres"


class PostgresNotAvailableError(RuntimeError):
    """PostgreSQL is not installed here, or did not start (the message says why)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [str(a) for a in args]
    if os.geteuid() == 0:
        command = ["runuser", "-u", USER, "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


class EmbeddedPostgres:
    """A PostgreSQL server in a temporary folder of its own; ``stop()`` removes it."""

    def __init__(self, folder: str | Path | None = None, port: int | None = None) -> None:
        self.folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="surestream-pg-"))
        self.port = port or free_port()
        self._owned = folder is None

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> EmbeddedPostgres:
        """initdb and start; raise ``PostgresNotAvailableError`` saying what to do."""
        if not (BIN / "initdb").exists():
            raise PostgresNotAvailableError(
                f"PostgreSQL 15 is not installed ({BIN}/initdb is missing): run "
                "scripts/test-deps.sh (or apt-get install postgresql-15), or give a server "
                "of your own (a DSN)")
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(USER)
            except KeyError:
                raise PostgresNotAvailableError(
                    f"there is no user {USER!r} to run PostgreSQL as (it refuses root): run "
                    "scripts/test-deps.sh first") from None
            shutil.chown(self.folder, USER)
        done = _as_postgres(BIN / "initdb", "-D", self.data, "-U", USER, "--auth=trust",
                            "--no-sync", "--encoding=UTF8", "--locale=C")
        if done.returncode:
            raise PostgresNotAvailableError(f"initdb failed: {done.stderr[-2000:]}")
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
            raise PostgresNotAvailableError(f"pg_ctl start failed: {done.stderr[-1000:]}\n{log}")
        return self

    def stop(self) -> None:
        """Stop the server (immediately) and remove its folder if we made it."""
        if self.data.exists():
            _as_postgres(BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        if self._owned:
            shutil.rmtree(self.folder, ignore_errors=True)

    def create_database(self) -> str:
        """A new empty database of a unique name; its name."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.dsn(), autocommit=True) as con:
            con.execute(f'create database "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as con:
            con.execute(f'drop database if exists "{name}" with (force)')

    def __enter__(self) -> EmbeddedPostgres:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
