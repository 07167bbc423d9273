"""A PyFlink TableEnvironment: a local mini-cluster, or a remote cluster by address.

``flink_configuration(...)`` is the pure part (the key/value pairs; tested without a JVM);
``create_table_environment(...)`` imports pyflink lazily and builds the environment.

Choices, each for correctness or for a safe machine:
- every listener on 127.0.0.1 (JobManager/TaskManager bind hosts, REST bind address);
- ``pipeline.auto-watermark-interval: 0 ms``: the watermark is emitted after every record,
  the convention the local runner has (Flink SQL window TVFs then match the Flink
  DataStream results exactly; measured on 7 zero-lateness cases);
- checkpointing on at the spec's ``checkpoint.interval_ms`` in EXACTLY_ONCE mode, its
  checkpoints under ``<spec checkpoint dir>/flink/checkpoints`` and savepoints under
  ``.../flink/savepoints``; a checkpoint is kept when the job is cancelled, so a user can
  restart from it as from a savepoint;
- PyFlink starts its Python-worker pool server (for Python UDFs in the mini-cluster) on every
  interface (``[::]:0``, hard-coded in 2.3.0); ``bind_loopback_worker_pool`` makes it
  bind 127.0.0.1;
- ``flink_address`` ``host:port`` submits to a running cluster (``execution.target:
  remote``); ``savepoint_path`` restarts from a savepoint (``execution.savepoint.path``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from surestream.runners.flink.distribution import LOOPBACK

DEFAULT_CHECKPOINT_INTERVAL_MS = 10_000


def flink_folders(checkpoint_dir: str | Path) -> dict[str, Path]:
    """Where Flink's checkpoints and savepoints of a pipeline go (under its checkpoint dir)."""
    base = Path(checkpoint_dir).resolve() / "flink"
    return {"checkpoints": base / "checkpoints", "savepoints": base / "savepoints"}


def parse_address(address: str) -> tuple[str, int]:
    """``host:port`` -> (host, port); the message says what form is expected."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--flink-address {address!r}: expected host:port of the cluster's "
                         "REST endpoint, e.g. 127.0.0.1:8081")
    return host, int(port)


def flink_configuration(*, checkpoint_dir: str | Path,
                        checkpoint_interval_ms: int | None = None,
                        parallelism: int = 1,
                        flink_address: str | None = None,
                        savepoint_path: str | None = None,
                        jars: list[Path] | None = None,
                        extra: dict[str, str] | None = None) -> dict[str, str]:
    """The configuration of a surestream job on Flink, as Flink's string key/values."""
    folders = flink_folders(checkpoint_dir)
    conf: dict[str, str] = {
        "pipeline.auto-watermark-interval": "0 ms",
        "execution.checkpointing.interval":
            f"{checkpoint_interval_ms or DEFAULT_CHECKPOINT_INTERVAL_MS} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.dir": folders["checkpoints"].as_uri(),
        "execution.checkpointing.savepoint-dir": folders["savepoints"].as_uri(),
        "execution.checkpointing.externalized-checkpoint-retention":
            "RETAIN_ON_CANCELLATION",
        "state.backend.type": "hashmap",
        "parallelism.default": str(parallelism),
        # the local mini-cluster's listeners (ignored by a remote cluster, which has its own)
        "jobmanager.bind-host": LOOPBACK,
        "jobmanager.rpc.address": LOOPBACK,
        "taskmanager.bind-host": LOOPBACK,
        "taskmanager.host": LOOPBACK,
        "rest.bind-address": LOOPBACK,
        "rest.address": LOOPBACK,
    }
    if flink_address is not None:
        host, port = parse_address(flink_address)
        # a cluster job outlives its submitter: a few restarts from the last checkpoint ride
        # out a lost TaskManager, and a failure that repeats still ends the job (Flink's
        # default with checkpointing restarts forever)
        conf.update({"execution.target": "remote", "rest.address": host,
                     "rest.port": str(port), "restart-strategy.type": "fixed-delay",
                     "restart-strategy.fixed-delay.attempts": "3",
                     "restart-strategy.fixed-delay.delay": "10 s"})
    else:
        conf["rest.port"] = "0"  # the mini-cluster's REST endpoint on a free port
        # in-process: a failure ends the command with Flink's error (no endless restarts);
        # run again with --from-savepoint / the retained checkpoint to go on
        conf["restart-strategy.type"] = "none"
    if savepoint_path is not None:
        conf["execution.savepoint.path"] = savepoint_path
    if jars:
        from surestream.runners.flink.jars import pipeline_jars_value
        conf["pipeline.jars"] = pipeline_jars_value(jars)
    conf.update(extra or {})
    return conf


def bind_loopback_worker_pool() -> None:
    """Make PyFlink's Python-worker pool server listen on 127.0.0.1 only.

    ``BeamFnLoopbackWorkerPoolServicer.start`` (PyFlink 2.3.0) binds ``[::]:0``, every
    interface, and the TableEnvironment calls it for a mini-cluster. Its ``__init__`` resets
    the address on every construction, so starting it early does not help: the method itself
    is replaced, once per process, by the same code binding loopback.
    """
    import atexit
    import functools

    import grpc
    from apache_beam.portability.api import beam_fn_api_pb2_grpc
    from apache_beam.utils import thread_pool_executor
    from pyflink.fn_execution.beam import beam_worker_pool_service as pool

    servicer_class = pool.BeamFnLoopbackWorkerPoolServicer
    if getattr(servicer_class.start, "surestream_loopback", False):
        return

    def start_on_loopback(self) -> str:
        if not self._worker_address:
            server = grpc.server(thread_pool_executor.shared_unbounded_instance())
            port = server.add_insecure_port(f"{LOOPBACK}:0")
            beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(self, server)
            server.start()
            self._worker_address = f"{LOOPBACK}:{port}"
            atexit.register(functools.partial(server.stop, 1))
        return self._worker_address

    start_on_loopback.surestream_loopback = True  # type: ignore[attr-defined]
    servicer_class.start = start_on_loopback


def create_table_environment(**options: Any):
    """A streaming ``pyflink.table.TableEnvironment`` with ``flink_configuration(**options)``.

    Needs pyflink (scripts/flink-deps.sh); imported here only.
    """
    return create_table_environment_from(flink_configuration(**options))


def create_table_environment_from(conf: dict[str, str]):
    """A streaming TableEnvironment with exactly these Flink key/values (a ``FlinkJob``'s)."""
    if conf.get("execution.target") != "remote":
        bind_loopback_worker_pool()
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    config = Configuration()
    for key, value in conf.items():
        config.set_string(key, value)
    settings = (EnvironmentSettings.new_instance().in_streaming_mode()
                .with_configuration(config).build())
    return TableEnvironment.create(settings)


def create_stream_environment(**options: Any):
    """A ``pyflink.datastream.StreamExecutionEnvironment`` with the same configuration.

    For the steps the DataStream API runs (issue 15 item 1's Java-side operators).
    """
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment

    if options.get("flink_address") is None:
        bind_loopback_worker_pool()
    config = Configuration()
    for key, value in flink_configuration(**options).items():
        config.set_string(key, value)
    return StreamExecutionEnvironment.get_execution_environment(config)
