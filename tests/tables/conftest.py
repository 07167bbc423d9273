"""Fixtures of the table-sink tests: the real servers they run against."""

from postgres_server import postgres_dsn, postgres_server  # noqa: F401
