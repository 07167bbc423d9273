"""Running a translation on a PyFlink ``TableEnvironment`` (the caller makes it: a local
mini-cluster in the tests, the cluster plumbing's environment in ``surestream run``)."""

from __future__ import annotations

from typing import Any

from surestream.runners.flink.translate import FLINK_CONFIG, FlinkTranslation


def configure(t_env: Any) -> None:
    """Set the options the translation's semantics rest on (``FLINK_CONFIG``)."""
    config = t_env.get_config()
    for key, value in FLINK_CONFIG.items():
        config.set(key, value)


def execute(t_env: Any, translation: FlinkTranslation) -> Any:
    """Create the tables and views, then submit every INSERT as one statement set (one job,
    so every output sees the same watermarks); returns the ``TableResult`` (call
    ``.wait()`` for a bounded input)."""
    configure(t_env)
    for statement in translation.ddl:
        t_env.execute_sql(statement)
    statements = t_env.create_statement_set()
    for insert in translation.inserts:
        statements.add_insert_sql(insert)
    return statements.execute()
