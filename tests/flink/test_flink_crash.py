"""``surestream run SPEC --runner flink`` killed with SIGKILL at seeded random moments, then
continued with ``--resume`` (issue 15 item 3: what a user whose machine dies meets).

Real ``python -m surestream`` processes, real mini-cluster JVMs, no mocks. Each crash is a
SIGKILL of the command once a seeded number of the job's checkpoints (0-3) completed, plus a
seeded fraction of a checkpoint interval; after it:

- nothing of that run survives: the driver and its JVM it had started are gone (no orphan
  mini-cluster writing into the outputs, holding ports);
- the checkpoint folder's lock is free (the kernel dropped it; the file names a dead pid);
- a plain ``run`` over committed outputs is refused, naming the newest complete retained
  checkpoint (the newest ``chk-N/_metadata``: found here by the test itself);
- ``run --resume`` continues from exactly that checkpoint (none yet: from the beginning).

In the end the output holds every record that passes the ``where`` exactly once: none lost,
none twice (committed part files only; the in-progress '.part' files are hidden), after two
crashes: the second one of the resumed job (found here: Flink's ``raw`` format resumed such
a job at a wrong read position and wrote records twice; the file source now reads through
our own format, ``sql_source.JSON_FORMAT``).
``SURESTREAM_CRASH_SEED`` picks other moments.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_flink_run_cli import (
    big_doc,
    cli,
    dropped,
    env,
    read_jsonl,
    write_spec,
)

from surestream.io.lock import lock_holder
from surestream.runners.flink.distribution import flink_python

ROWS = 800_000
KILLS = 2
SEED = int(os.environ.get("SURESTREAM_CRASH_SEED", "15"))
FLINK_JOB = re.compile(r"Flink job ([0-9a-f]{32})")


@pytest.fixture(scope="module")
def flink() -> None:
    flink_python()  # Flink must be installed (scripts/flink-deps.sh): FlinkNotInstalled


def descendants(pid: int) -> set[int]:
    """Every live process under ``pid`` (the driver, its JVM), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def running(pid: int) -> bool:
    """The process exists and is not a zombie (a dead one not reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def completed_checkpoints(ck: Path, job: str) -> list[Path]:
    return list((ck / "flink" / "checkpoints" / job).glob("chk-*/_metadata"))


def newest_checkpoint(ck: Path) -> Path | None:
    """The newest complete retained checkpoint of any job of the spec: its _metadata is
    written last."""
    done = list((ck / "flink" / "checkpoints").glob("*/chk-*/_metadata"))
    return max(done, key=lambda m: m.stat().st_mtime_ns).parent if done else None


class Run:
    """``surestream run SPEC --runner flink [args]`` in the background, its stderr read as
    it comes (the job id)."""

    def __init__(self, spec: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "surestream", "run", str(spec), "--runner", "flink", *args],
            cwd=spec.parent, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        self.stderr: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def text(self) -> str:
        return "".join(self.stderr)

    def job_id(self, deadline: float) -> str:
        while not (found := FLINK_JOB.search(self.text())):
            assert self.process.poll() is None, self.text()[-3000:]
            assert time.monotonic() < deadline, "the job was never submitted"
            time.sleep(0.05)
        return found.group(1)

    def finish(self) -> int:
        code = self.process.wait(timeout=600)
        self.reader.join(10)
        return code


def crash(run: Run, ck: Path, rng: random.Random, *, checkpoints: int) -> None:
    """SIGKILL the command once ``checkpoints`` checkpoints of its job completed (and a
    random part of an interval), then check nothing of it is left running."""
    deadline = time.monotonic() + 300
    job = run.job_id(deadline)
    seen: set[str] = set()  # chk-N names: one is retained at a time, each replaces the last
    while len(seen) < checkpoints:
        seen.update(m.parent.name for m in completed_checkpoints(ck, job))
        assert run.process.poll() is None, f"seed {SEED}: ended before the crash: " \
            f"{run.text()[-3000:]}"
        assert time.monotonic() < deadline, "no checkpoint completed"
        time.sleep(0.02)
    time.sleep(rng.uniform(0, 0.2))
    family = descendants(run.process.pid)
    assert "java" in {command(p) for p in family}, "no mini-cluster JVM under the command"
    assert run.process.poll() is None, f"seed {SEED}: the job ended before the crash"
    run.process.send_signal(signal.SIGKILL)
    assert run.finish() == -signal.SIGKILL
    wait = time.monotonic() + 10
    while [p for p in family if running(p)] and time.monotonic() < wait:
        time.sleep(0.05)
    assert not [p for p in family if running(p)], \
        f"seed {SEED}: the run's driver/JVM outlived the killed command"


def test_sigkill_at_random_moments_then_resume_keeps_every_record_once(flink,
                                                                       tmp_path: Path):
    """Two crashes: the second kills the resumed job once it took checkpoints of its own,
    so the last resume starts from a state taken by a job itself restored (where Flink's
    ``raw`` format lost its read position and records came twice: sql_source.JSON_FORMAT).
    """
    rng = random.Random(SEED)
    doc = big_doc(tmp_path / "big.jsonl", ROWS)
    doc["checkpoint"]["interval_ms"] = 200
    spec = write_spec(tmp_path / "p", doc)
    ck, out = tmp_path / "p" / "ck", tmp_path / "p" / "out" / "main.jsonl"
    expected = [i for i in range(ROWS) if not dropped(i)]

    run = Run(spec)
    for kill in range(KILLS):
        # after checkpoints of this job's own: the second job is itself restored, and so
        # is the state the last resume starts from (a crash before any checkpoint: the
        # test of the leftover in-progress files below)
        checkpoints = rng.randint(1, 3)
        crash(run, ck, rng, checkpoints=checkpoints)
        holder = lock_holder(ck)
        assert holder is not None and holder.pid == run.process.pid
        assert holder.locked is False and not holder.alive  # freed by the kernel
        latest = newest_checkpoint(ck)
        committed = read_jsonl(out)
        assert len(committed) < len(expected)
        assert len({r["id"] for r in committed}) == len(committed)  # none twice, even now
        if committed:  # a plain run would write them twice: refused, naming the checkpoint
            assert latest is not None
            plain = cli("run", str(spec), "--runner", "flink", cwd=spec.parent)
            assert plain.returncode == 2, plain.stderr[-3000:]
            assert "--resume" in plain.stderr
            assert f"--from-savepoint {latest}" in plain.stderr
        print(f"seed {SEED}: kill {kill + 1} after {checkpoints} checkpoints, "
              f"{len(committed)} records committed, resuming from {latest}")
        run = Run(spec, "--resume")
        job = run.job_id(time.monotonic() + 300)
        if latest is None:
            assert "starting from the beginning" in run.text()
        else:
            assert f"the latest complete checkpoint is {latest}\n" in run.text()
        assert job not in str(latest)

    assert run.finish() == 0, f"seed {SEED}: {run.text()[-3000:]}"
    assert "finished on Flink" in run.text()
    ids = sorted(r["id"] for r in read_jsonl(out))
    assert ids == expected, f"seed {SEED}: {len(ids)} ids, {len(set(ids))} distinct"

    # finished: nothing to continue (its checkpoints are gone, an older one would repeat
    # records), a plain run still refused
    again = cli("run", str(spec), "--runner", "flink", "--resume", cwd=spec.parent)
    assert again.returncode == 0 and "the earlier run finished" in again.stderr
    plain = cli("run", str(spec), "--runner", "flink", cwd=spec.parent)
    assert plain.returncode == 2 and "finished" in plain.stderr
    assert sorted(r["id"] for r in read_jsonl(out)) == expected


# -- the rules after a crash, on folders laid out as a killed run leaves them (no JVM) -------

def fake_checkpoint(ck: Path, job: str, n: int, *, complete: bool = True) -> Path:
    folder = ck / "flink" / "checkpoints" / job / f"chk-{n}"
    folder.mkdir(parents=True)
    if complete:
        (folder / "_metadata").write_bytes(b"\0")
    return folder


def crashed_layout(tmp_path: Path, *, committed: bool) -> tuple[Path, Path]:
    """A spec whose earlier run was killed: an interrupted ``chk-9`` (no ``_metadata``) newer
    than the complete ``chk-8``, and an in-progress part file (+ a committed one)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    spec = write_spec(tmp_path / "p", big_doc(tmp_path / "in.jsonl", 10))
    ck, out = tmp_path / "p" / "ck", tmp_path / "p" / "out" / "main.jsonl"
    older = fake_checkpoint(ck, "a" * 32, 3)
    os.utime(older / "_metadata", ns=(1, 1))
    complete = fake_checkpoint(ck, "b" * 32, 8)
    fake_checkpoint(ck, "b" * 32, 9, complete=False)
    out.mkdir(parents=True)
    (out / ".part-b-0-4.inprogress.c").write_text('{"id":1,"ts":1}\n')
    if committed:
        (out / "part-b-0-3").write_text('{"id":0,"ts":0}\n')
    return spec, complete


def test_a_plain_run_over_committed_outputs_names_the_latest_complete_checkpoint(
        flink, tmp_path: Path):
    spec, complete = crashed_layout(tmp_path, committed=True)
    r = cli("run", str(spec), "--runner", "flink", cwd=spec.parent)
    assert r.returncode == 2
    assert f"--from-savepoint {complete}" in r.stderr and "--resume" in r.stderr
    both = cli("run", str(spec), "--runner", "flink", "--resume", "--from-savepoint",
               str(complete), cwd=spec.parent)
    assert both.returncode == 2 and "not both" in both.stderr


def test_in_progress_part_files_alone_do_not_block_a_fresh_start(flink, tmp_path: Path):
    """A crash before any part file was committed: the outputs hold nothing a user sees, so
    a plain run starts afresh (here it gets as far as the cluster address: none listens)."""
    spec, _ = crashed_layout(tmp_path, committed=False)
    r = cli("run", str(spec), "--runner", "flink", "--flink-address",
            f"127.0.0.1:{closed_port()}", cwd=spec.parent)
    assert r.returncode == 2
    assert "--flink-address" in r.stderr and "already hold" not in r.stderr


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def timeline(ck: Path, text: str) -> None:
    """The mark ``run`` writes when it starts afresh / its job finished, newer than every
    checkpoint."""
    path = ck / "flink" / "timeline"
    path.write_text(text)
    for metadata in (ck / "flink" / "checkpoints").glob("*/chk-*/_metadata"):
        os.utime(metadata, ns=(1, 1))


def test_resume_ignores_checkpoints_older_than_a_fresh_start_or_a_finished_run(
        flink, tmp_path: Path):
    spec, _ = crashed_layout(tmp_path / "fresh", committed=False)
    timeline(spec.parent / "ck", "fresh\n")  # restarted afresh, killed before a checkpoint
    r = cli("run", str(spec), "--runner", "flink", "--resume", "--flink-address",
            f"127.0.0.1:{closed_port()}", cwd=spec.parent)
    assert r.returncode == 2 and "starting from the beginning" in r.stderr
    assert "--flink-address" in r.stderr  # got as far as the (absent) cluster

    spec, _ = crashed_layout(tmp_path / "finished", committed=True)
    timeline(spec.parent / "ck", f"finished {'c' * 32}\n")
    r = cli("run", str(spec), "--runner", "flink", "--resume", cwd=spec.parent)
    assert r.returncode == 0 and f"finished (Flink job {'c' * 32})" in r.stderr
