"""The PostgreSQL fixtures of the table-sink and payments tests, over the project's server starter
(``surestream.connectors.tables.postgres_server.EmbeddedPostgres``).

``postgres_server`` (session): the running server; ``postgres_dsn`` (per test): a DSN of
a database of its own, dropped after the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from surestream.connectors.tables.postgres_server import (
    EmbeddedPostgres,
    PostgresNotAvailableError,
)

#: the tests' name for the server (``postgres_server.dsn(...)``, ``create_database()``)
PostgresServer = EmbeddedPostgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres()
    try:
        server.start()
    except PostgresNotAvailableError as e:
        server.stop()
        pytest.fail(str(e))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_dsn(postgres_server: EmbeddedPostgres) -> Iterator[str]:
    name = postgres_server.create_database()
    yield postgres_server.dsn(name)
    postgres_server.drop_database(name)
