"""One owner per folder: an exclusive lock the kernel holds for a process.

A checkpoint folder is one pipeline's timeline; two processes writing it -- two ``run``s of
one spec, or a paused run and its replacement -- interleave checkpoint ids and commits and
lose or duplicate records while both exit 0. So a run takes ``FolderLock.acquire(folder)``
before it reads anything there and holds it to its end:

- the lock is ``flock(LOCK_EX)`` on ``<folder>/.lock``; the kernel releases it when the
  process ends in any way (exit, crash, SIGKILL), so a dead run never blocks the next one,
  while a paused one (SIGSTOP) still holds it -- as it must, since it can resume;
- the holder writes its pid (and what it is) into the file, so a refused process can name
  it: ``checkpoint folder X is in use by surestream run (pid 1234)``;
- ``verify()`` is called before every commit: a lock is only worth something while the file
  it is on is the one at ``<folder>/.lock``. If the folder was deleted and made again (by a
  person, or by another run that then took a lock of its own), the path names another file
  (or none), and the run must stop before it commits into the other run's outputs.

The lock file is never deleted: removing it would let a second process lock a new file at
the same path while the first still holds the old one.
"""

from __future__ import annotations

import errno
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from surestream.io.durable import makedirs_durable

LOCK_FILE = ".lock"


class FolderLockError(Exception):
    """The folder is not (or no longer) this process's alone."""


class FolderInUseError(FolderLockError):
    """Another live process holds the folder's lock."""


class FolderLockLostError(FolderLockError):
    """The lock file this process holds is no longer the one at the folder's path."""


def _holder_of(path: Path) -> tuple[str, str]:
    """(pid, what) as the holder wrote them into the lock file; '?' where unknown."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    pid = lines[0].strip() if lines and lines[0].strip().isdigit() else "?"
    what = lines[1].strip() if len(lines) > 1 and lines[1].strip() else "another process"
    return pid, what


@dataclass(frozen=True)
class LockHolder:
    """Who holds a folder's lock, or held it last (``lock_holder``)."""

    pid: int | None  # as the holder wrote it (None: unreadable)
    what: str  # what the holder is ("surestream run")
    locked: bool | None  # the lock is held now (None: this system cannot tell)
    alive: bool  # a process with that pid exists
    paused: bool  # that process is stopped (SIGSTOP, Ctrl-Z): it still holds the lock


def lock_holder(folder: Path) -> LockHolder | None:
    """Who holds ``folder``'s lock now, or held it last, without taking it (taking it, even
    for an instant, could refuse a run starting at that moment): the pid and what it is, as
    the holder wrote them; whether the lock is held now (Linux lists every ``flock`` lock by
    inode in ``/proc/locks``); whether that process is alive, and paused. None when the
    folder has no lock file."""
    path = Path(folder) / LOCK_FILE
    try:
        st = os.stat(path)
    except OSError:
        return None
    pid_text, what = _holder_of(path)
    pid = int(pid_text) if pid_text.isdigit() else None
    state = process_state(pid) if pid is not None else None
    return LockHolder(pid, what, _flock_held(st), state is not None and state != "Z",
                      state in ("T", "t"))


def _flock_held(st: os.stat_result) -> bool | None:
    """Whether some process holds a ``flock`` on the file ``st`` describes (None: no
    ``/proc/locks`` to read). Its lines: ``1: FLOCK ADVISORY WRITE <pid> <maj>:<min>:<inode>
    0 EOF``. The inode decides: an overlay file system (a container's) reports the device
    of the layer below there, not the one ``stat`` gives."""
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    inode = str(st.st_ino)
    for line in text.splitlines():
        fields = line.split()
        if "FLOCK" not in fields[1:3]:
            continue
        where = next((f for f in fields if f.count(":") == 2), "")
        if where.rpartition(":")[2] == inode:
            return True
    return False


def process_state(pid: int) -> str | None:
    """The state letter of process ``pid`` (R, S, T stopped, Z zombie, ...); "?" where it
    exists but its state cannot be read; None where there is no such process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # someone else's process: it exists
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


class FolderLock:
    """An exclusive lock on ``folder``, held from ``acquire`` to ``release`` (or the end
    of the process). Use it as a context manager, or release it yourself."""

    def __init__(self, folder: Path, fd: int, identity: tuple[int, int], holder: str,
                 what: str) -> None:
        self.folder = folder
        self.path = folder / LOCK_FILE
        self.holder = holder
        self.what = what
        self.pid = os.getpid()
        self._fd: int | None = fd
        self._identity = identity  # (st_dev, st_ino) of the file we locked

    @classmethod
    def acquire(cls, folder: Path, *, holder: str = "surestream run",
                what: str = "checkpoint folder") -> FolderLock:
        """Lock ``folder`` (created, durably, if missing) or raise ``FolderInUseError``
        naming the holder's pid. ``holder`` says what takes it ("surestream run"); ``what``
        names the folder in messages."""
        folder = Path(folder)
        makedirs_durable(folder)
        path = folder / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            pid, by = _holder_of(path)
            raise FolderInUseError(
                f"{what} {folder} is in use by {by} (pid {pid}); wait for it to end or "
                "stop it") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n{holder}\n".encode(), 0)
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        return cls(folder, fd, (st.st_dev, st.st_ino), holder, what)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def verify(self) -> None:
        """Raise ``FolderLockLostError`` unless the file at ``<folder>/.lock`` is still the
        one this process locked, with its pid in it: call it before every commit."""
        if self._fd is None:
            raise FolderLockLostError(f"{self.what} {self.folder}: its lock was released")
        problem = None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            problem = "its lock file is gone: the folder was deleted or moved"
        else:
            if (st.st_dev, st.st_ino) != self._identity:
                pid, by = _holder_of(self.path)
                problem = ("the folder was deleted or replaced, and its lock file now "
                           f"belongs to {by} (pid {pid})")
            elif os.getpid() != self.pid or _holder_of(self.path)[0] != str(self.pid):
                problem = "its lock file was overwritten by another process"
        if problem is not None:
            raise FolderLockLostError(
                f"{self.what} {self.folder} is no longer this run's (pid {self.pid}): "
                f"{problem}. Stopping before anything more is committed; make sure one run "
                "at a time uses the folder, then run again")

    def release(self) -> None:
        """Give the lock up (closing the file releases it); a second call does nothing."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
