"""A standalone Flink cluster (one JobManager, one TaskManager) from the bundled distribution.

For tests, and for users who want a cluster to submit to with ``--flink-address``. The
cluster gets its own conf folder (a copy of the distribution's, with every listener bound to
127.0.0.1 and free ports), its own log and tmp folders, and runs both processes in the
foreground as children of ours (``*.sh start-foreground``), so stopping it ends exactly the
processes it started, never another Flink on the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from surestream.runners.flink.distribution import LOOPBACK, flink_home


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS's choice)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _flatten(prefix: str, node: Any, out: dict[str, Any]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), value, out)
    else:
        out[prefix] = node


def loopback_cluster_config(*, rest_port: int, rpc_port: int, slots: int,
                            workdir: Path) -> dict[str, Any]:
    """The conf keys that bind every listener of a standalone cluster to 127.0.0.1."""
    return {
        "jobmanager.bind-host": LOOPBACK,
        "jobmanager.rpc.address": LOOPBACK,
        "jobmanager.rpc.port": rpc_port,
        "rest.address": LOOPBACK,
        "rest.bind-address": LOOPBACK,
        "rest.port": rest_port,
        "taskmanager.bind-host": LOOPBACK,
        "taskmanager.host": LOOPBACK,
        "taskmanager.numberOfTaskSlots": slots,
        "blob.server.port": free_port(),
        "taskmanager.rpc.port": free_port(),
        "taskmanager.data.port": free_port(),
        "metrics.internal.query-service.port": "0",
        "jobmanager.memory.process.size": "768m",
        "taskmanager.memory.process.size": "1024m",
        "io.tmp.dirs": str(workdir / "tmp"),
        "web.tmpdir": str(workdir / "web-tmp"),
        "blob.storage.directory": str(workdir / "blobs"),
    }


@dataclass
class StandaloneCluster:
    """One JobManager and one TaskManager on 127.0.0.1; a context manager.

    ``workdir`` holds conf/, log/ and tmp/; ``rest_url`` is the REST endpoint and
    ``address`` the ``host:port`` for ``--flink-address``.
    """

    workdir: Path
    slots: int = 2
    start_timeout_s: float = 120.0
    rest_port: int = field(default_factory=free_port)
    rpc_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.rest_port}"

    @property
    def rest_url(self) -> str:
        return f"http://{LOOPBACK}:{self.rest_port}"

    def write_conf(self) -> Path:
        """conf/ = the distribution's conf with the loopback keys over its config.yaml."""
        home = flink_home()
        conf = self.workdir / "conf"
        shutil.copytree(home / "conf", conf, dirs_exist_ok=True)
        base: dict[str, Any] = {}
        _flatten("", yaml.safe_load((home / "conf" / "config.yaml").read_text()) or {}, base)
        base.update(loopback_cluster_config(rest_port=self.rest_port, rpc_port=self.rpc_port,
                                            slots=self.slots, workdir=self.workdir))
        (conf / "config.yaml").write_text(yaml.safe_dump(base, sort_keys=True))
        (conf / "masters").write_text(f"{LOOPBACK}:{self.rest_port}\n")
        (conf / "workers").write_text(f"{LOOPBACK}\n")
        for sub in ("log", "tmp", "web-tmp", "blobs"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        return conf

    def start(self) -> StandaloneCluster:
        """Start both processes and wait until the REST API reports a registered TaskManager."""
        home = flink_home()
        conf = self.write_conf()
        env = dict(os.environ, FLINK_CONF_DIR=str(conf), FLINK_LOG_DIR=str(self.workdir / "log"),
                   FLINK_HOME=str(home))
        for role in ("jobmanager", "taskmanager"):
            out = (self.workdir / "log" / f"{role}.out").open("wb")
            self.processes[role] = subprocess.Popen(
                ["bash", str(home / "bin" / f"{role}.sh"), "start-foreground"], env=env,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def overview(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.rest_url}/overview", timeout=5) as response:
            return json.loads(response.read())

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            for role, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"Flink {role} exited with {proc.returncode} while starting; see "
                        f"{self.workdir / 'log'}")
            try:
                if self.overview().get("slots-available", 0) >= self.slots:
                    return
            except OSError as exc:
                last_error = exc
            time.sleep(0.25)
        raise TimeoutError(f"Flink cluster at {self.rest_url} not ready after "
                           f"{self.start_timeout_s} s ({last_error}); see {self.workdir / 'log'}")

    def java_pids(self) -> list[int]:
        """The JVMs of this cluster (children of the scripts we started)."""
        pids = []
        for proc in self.processes.values():
            pids.append(proc.pid)
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            if children.exists():
                pids.extend(int(p) for p in children.read_text().split())
        return pids

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM each process group we started (JVM included), SIGKILL after timeout_s."""
        for proc in self.processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for proc in self.processes.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.processes.clear()

    def __enter__(self) -> StandaloneCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket process ``pid`` listens on (Linux /proc)."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if state != "0A" or inode not in inodes:  # 0A = LISTEN
                continue
            host_hex, port_hex = local.split(":")
            found.add((_decode_address(host_hex, width), int(port_hex, 16)))
    return found


def _decode_address(host_hex: str, width: int) -> str:
    raw = bytes.fromhex(host_hex)
    if width == 8:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)
