"""The Flink runner (issue 15): the same spec on Apache Flink (PyFlink 2.3.0).

Modules, one concern each: ``translate`` (the spec as Flink SQL, with ``sql_*`` helpers and
``sql_refusals``), ``job`` (a translation as a JSON job description), ``driver`` (runs a job
description under the Flink environment's interpreter), ``distribution`` (where the Flink
install is), ``environment`` (a TableEnvironment: local mini-cluster or a remote cluster),
``cluster`` (a standalone cluster from the bundled distribution), ``rest`` (the REST client:
jobs, stop with a savepoint, cancel), ``jars`` (the Kafka connector jars). PyFlink is
imported only by the modules the driver runs (never in surestream's own process: apache-flink
2.3.0 cannot share its pip environment, docs/flink.md).
"""
