"""Table sinks: one module per system (iceberg, delta, clickhouse, postgres), each
following the one sink protocol (``connectors/sink_protocol.py``: write / pre_commit /
commit / recover), with its guarantee and recovery described in docs/sinks.md."""
