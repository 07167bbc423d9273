"""The Flink REST API client: jobs, their state, stop with a savepoint, cancel.

Savepoints go through REST, not PyFlink: ``JobClient.stop_with_savepoint`` /
``trigger_savepoint`` in PyFlink 2.3.0 are broken (measured on this project), and REST works
the same for the local mini-cluster's endpoint and a remote cluster.
Stdlib only (urllib): the client runs in any interpreter, with or without pyflink.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

TERMINAL_STATES = frozenset({"FINISHED", "CANCELED", "FAILED"})


class FlinkRestError(RuntimeError):
    """A REST call failed; the message names the call and Flink's answer."""


class FlinkRestClient:
    """``FlinkRestClient("http://127.0.0.1:8081")`` or ``FlinkRestClient.for_address("h:p")``."""

    def __init__(self, base_url: str, timeout_s: float = 30.0) -> None:
        # 30 s per call: a busy JobManager (a loaded machine, a large job graph) can take
        # seconds to answer, and a timed-out stop or state query must not be mistaken for
        # a failure
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    @classmethod
    def for_address(cls, address: str, timeout_s: float = 30.0) -> FlinkRestClient:
        """From ``host:port`` (the ``--flink-address`` form) or a full http URL."""
        return cls(address if "://" in address else f"http://{address}", timeout_s)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                text = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:2000]
            raise FlinkRestError(f"{method} {self.base_url}{path} -> HTTP {exc.code}: "
                                 f"{detail}") from exc
        except OSError as exc:
            raise FlinkRestError(f"{method} {self.base_url}{path} failed: {exc}; is the Flink "
                                 "cluster running at that address?") from exc
        return json.loads(text) if text else None

    def overview(self) -> dict[str, Any]:
        return self._call("GET", "/overview")

    def jobs(self) -> list[dict[str, Any]]:
        """Every job the cluster knows: ``[{"jid", "name", "state", ...}]``."""
        return self._call("GET", "/jobs/overview")["jobs"]

    def job_state(self, job_id: str) -> str:
        """CREATED / RUNNING / FINISHED / CANCELED / FAILED / ..."""
        return self._call("GET", f"/jobs/{job_id}")["state"]

    def checkpoint_counts(self, job_id: str) -> dict[str, int]:
        """``{"completed", "failed", "in_progress", ...}`` of a job's checkpoints."""
        return self._call("GET", f"/jobs/{job_id}/checkpoints")["counts"]

    def latest_checkpoint_path(self, job_id: str) -> str | None:
        """Where the job's newest completed checkpoint is (``file:/.../chk-N``), if any."""
        latest = self._call("GET", f"/jobs/{job_id}/checkpoints").get("latest") or {}
        return (latest.get("completed") or {}).get("external_path")

    def wait_for_state(self, job_id: str, states: set[str] | frozenset[str],
                       timeout_s: float = 120.0, poll_s: float = 0.2) -> str:
        deadline = time.monotonic() + timeout_s
        state = "?"
        while time.monotonic() < deadline:
            state = self.job_state(job_id)
            if state in states:
                return state
            if state in TERMINAL_STATES:
                raise FlinkRestError(f"job {job_id} ended {state}, expected one of "
                                     f"{sorted(states)}")
            time.sleep(poll_s)
        raise TimeoutError(f"job {job_id} still {state} after {timeout_s} s")

    def stop_with_savepoint(self, job_id: str, target_directory: str | None, *,
                            drain: bool = False,
                            timeout_s: float = 120.0, poll_s: float = 0.2) -> str:
        """Stop a job with a savepoint and return the savepoint's location.

        ``drain=False``: sources stop without emitting MAX_WATERMARK, so no window or timer
        fires for data that never came; the job resumes from the savepoint as if never
        stopped. ``target_directory`` None: the job's own savepoint folder
        (``execution.checkpointing.savepoint-dir``, which ours set).
        """
        body: dict[str, Any] = {"drain": drain}
        if target_directory is not None:
            body["targetDirectory"] = target_directory
        trigger = self._call("POST", f"/jobs/{job_id}/stop", body)
        trigger_id = trigger["request-id"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = self._call("GET", f"/jobs/{job_id}/savepoints/{trigger_id}")
            if result["status"]["id"] == "COMPLETED":
                operation = result.get("operation") or {}
                if "failure-cause" in operation:
                    cause = operation["failure-cause"]
                    raise FlinkRestError(f"stop-with-savepoint of job {job_id} failed: "
                                         f"{cause.get('stack-trace', cause)}"[:4000])
                self._wait_until_stopped(job_id, deadline, poll_s)
                return operation["location"]
            time.sleep(poll_s)
        raise TimeoutError(f"savepoint of job {job_id} not complete after {timeout_s} s")

    def _wait_until_stopped(self, job_id: str, deadline: float, poll_s: float) -> None:
        """The savepoint completes a moment before the job reaches FINISHED: a stop returns
        once the job has ended (or its mini-cluster, and so the endpoint, is gone)."""
        while time.monotonic() < deadline:
            try:
                if self.job_state(job_id) in TERMINAL_STATES:
                    return
            except FlinkRestError:
                return  # a mini-cluster shuts down with its last job
            time.sleep(poll_s)
        raise TimeoutError(f"job {job_id} took its savepoint but did not stop")

    def cancel(self, job_id: str) -> None:
        """Cancel a job without a savepoint (PATCH /jobs/:id?mode=cancel)."""
        self._call("PATCH", f"/jobs/{job_id}?mode=cancel")
