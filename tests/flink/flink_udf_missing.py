"""A user module needing a package the Flink environment lacks (duckdb is surestream's
dependency, not apache-flink's): the Flink job must fail naming this module and the venv."""

import duckdb  # noqa: F401


def passthrough(record: dict) -> dict:
    return record
