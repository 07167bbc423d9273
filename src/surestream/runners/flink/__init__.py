"""The Flink runner (issue 15): the same spec on Apache Flink (PyFlink 2.3.0).

Modules, one concern each: ``distribution`` (where the Flink install is), ``environment``
(a TableEnvironment: local mini-cluster or a remote cluster), ``cluster`` (a standalone
cluster from the bundled distribution), ``rest`` (the REST client: jobs, stop with a
savepoint, cancel), ``jars`` (the Kafka connector jars). PyFlink is imported lazily, only
inside the functions that need it.
"""
