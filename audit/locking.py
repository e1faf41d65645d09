"""Exclusive locks on output directories, and staging directories a later run can recognise.

What it does: :class:`DirectoryLock` holds an exclusive ``fcntl.flock`` on a lock file
next to the directory it protects (``PARENT/.NAME.lock``), for as long as a run writes
that directory. The lock file holds who took it (PID, host, time), so a second run
fails at once with :class:`~audit.errors.LockedError` ("``DIR`` is locked by PID P on
HOST since T", exit 2) instead of waiting or interleaving its writes. The lock file
is removed by its holder before release; a run that is killed leaves the file, but
the kernel releases its lock, so the next run takes it over. A forked child (the
replay's workers, :mod:`audit.replay.parallel`) closes its copies of the held locks'
descriptors at once: it never holds or releases a lock, and it cannot keep one held
after its parent is gone. Because the lock names
the *path*, it works before the directory exists (``log seal``) as well as after.

:func:`make_staging` creates a temporary directory next to a target, with a marker
file naming the target and the process; :func:`sweep_staging`, called while holding
the target's lock, removes the staging directories of earlier runs on the same
target that were killed (no live run can own one: it would hold the lock).
Directories without our marker are never touched.

What it does not do: it does not wait for a lock, does not lock across machines
unless the file system implements ``flock`` across them (local file systems do; NFS
and SMB vary), and does not decide what a directory holds: log seal and append
(:mod:`audit.logs`) and report publishing use it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import stat
import tempfile
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import orjson

from audit.errors import InputError, LockedError
from audit.reading import read_bytes

__all__ = [
    "STAGING_MARKER",
    "DirectoryLock",
    "LockHolder",
    "lock_path",
    "make_staging",
    "sweep_staging",
    "unmark_staging",
]

STAGING_MARKER = ".residency-audit-staging"
"""Name of the marker file inside a staging directory (JSON: format, target, pid, host, started)."""
STAGING_FORMAT = "residency-audit/staging/v1"
_ATTEMPTS = 20
_HELD: weakref.WeakSet[DirectoryLock] = weakref.WeakSet()
"""Locks this process holds, so a forked child can let go of its copies."""


def _forget_inherited_locks() -> None:
    """In a forked child: close the copies of the parent's lock descriptors (the parent's lock stays held)."""
    for lock in list(_HELD):
        fd, lock._fd = lock._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_inherited_locks)


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _normal(target: Path) -> Path:
    """The absolute path the lock is about (symlinks of the existing part resolved)."""
    return Path(target).resolve()


def lock_path(target: Path) -> Path:
    """The lock file of ``target``: ``PARENT/.NAME.lock``, next to it (never inside)."""
    target = _normal(target)
    return target.parent / f".{target.name}.lock"


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock, as its lock file says (unauthenticated: for the message only)."""

    pid: int | None
    host: str | None
    since: str | None

    def describe(self) -> str:
        if self.pid is None:
            return "by another process"
        return f"by PID {self.pid} on {self.host or 'an unknown host'} since {self.since or 'an unknown time'}"


def _holder_bytes() -> bytes:
    return orjson.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": _now()}) + b"\n"


def _read_holder(fd: int) -> LockHolder:
    try:
        data = os.pread(fd, 4096, 0)
        doc = orjson.loads(data)
    except (OSError, orjson.JSONDecodeError):
        return LockHolder(None, None, None)
    if not isinstance(doc, dict) or not isinstance(doc.get("pid"), int):
        return LockHolder(None, None, None)
    host, since = doc.get("host"), doc.get("since")
    return LockHolder(doc["pid"], host if isinstance(host, str) else None, since if isinstance(since, str) else None)


class DirectoryLock:
    """An exclusive lock on ``target`` (a directory that may not exist yet); use as a context manager.

    :meth:`acquire` raises :class:`LockedError` if another open lock holds it (another
    process, or another :class:`DirectoryLock` in this one), :class:`InputError` if the
    lock file cannot be created. Not re-entrant.
    """

    def __init__(self, target: Path) -> None:
        self.target = Path(target)
        self.path = lock_path(self.target)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise InputError(f"cannot create lock file: {exc.strerror or exc}", path=self.path) from None

    def acquire(self) -> DirectoryLock:
        """Take the lock, or raise :class:`LockedError` naming its holder."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this object")
        for _ in range(_ATTEMPTS):
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise LockedError(
                    f"{self.target} is locked {holder.describe()}",
                    hint="wait for that run to finish (the lock of a run that was killed is already free)",
                ) from None
            except OSError as exc:
                os.close(fd)
                raise InputError(f"cannot lock: {exc.strerror or exc}", path=self.path) from None
            # The holder removes the file before releasing: if ours was removed (or replaced)
            # between open and flock, the lock we hold is on a dead inode; start again.
            try:
                current = os.stat(self.path, follow_symlinks=False)
            except FileNotFoundError:
                os.close(fd)
                continue
            mine = os.fstat(fd)
            if (current.st_dev, current.st_ino) != (mine.st_dev, mine.st_ino):
                os.close(fd)
                continue
            if not stat.S_ISREG(mine.st_mode) or mine.st_nlink != 1 or mine.st_uid != os.geteuid():
                os.close(fd)  # a hard link to someone's file, or another user's: never truncate it
                raise LockedError(f"{self.target}: lock file {self.path} is not ours (a link or another user's)")
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, _holder_bytes(), 0)
            except OSError as exc:
                os.close(fd)
                raise InputError(f"cannot write lock file: {exc.strerror or exc}", path=self.path) from None
            self._fd = fd
            _HELD.add(self)
            return self
        raise LockedError(f"{self.target} is locked (its lock file keeps changing)")

    def release(self) -> None:
        """Remove the lock file and release the lock (no-op if not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        _HELD.discard(self)
        try:
            with contextlib.suppress(FileNotFoundError):
                current, mine = os.stat(self.path, follow_symlinks=False), os.fstat(fd)
                if (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
                    os.unlink(self.path)  # while still holding it (see acquire), and only our own file
        finally:
            os.close(fd)

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def make_staging(target: Path, suffix: str) -> Path:
    """Create ``PARENT/.NAME.<random><suffix>`` (mode 0755) with our marker; InputError naming ``target``."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent))
    except OSError as exc:
        raise InputError(f"cannot create output: {exc.strerror or exc}", path=target) from None
    marker = {
        "format": STAGING_FORMAT,
        "target": target.name,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": _now(),
    }
    try:
        os.chmod(staging, 0o755)  # noqa: S103 - what is staged (a sealed log) is public data
        (staging / STAGING_MARKER).write_bytes(orjson.dumps(marker) + b"\n")
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise InputError(f"cannot write: {exc.strerror or exc}", path=staging / STAGING_MARKER) from None
    return staging


def unmark_staging(staging: Path) -> None:
    """Remove the marker before the staging directory is renamed into place."""
    try:
        (Path(staging) / STAGING_MARKER).unlink()
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", path=Path(staging) / STAGING_MARKER) from None


def _ours(entry: Path, name: str) -> bool:
    marker = entry / STAGING_MARKER
    try:
        if entry.is_symlink() or not entry.is_dir() or marker.is_symlink():
            return False
        doc = orjson.loads(read_bytes(marker, follow_symlinks=False, max_bytes=_MAX_MARKER))  # never a FIFO
    except (OSError, InputError, orjson.JSONDecodeError):
        return False
    if not (isinstance(doc, dict) and doc.get("format") == STAGING_FORMAT and doc.get("target") == name):
        return False
    # Only this host's runs, and only dead ones: flock may not reach across machines (NFS, SMB).
    return doc.get("host") == socket.gethostname() and not _alive(doc.get("pid"))


_MAX_MARKER = 4096


def _alive(pid: object) -> bool:
    """Whether process ``pid`` of this host still runs (an unknown pid counts as alive: keep the directory)."""
    if not isinstance(pid, int) or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def sweep_staging(lock: DirectoryLock, suffix: str) -> list[Path]:
    """Remove the staging directories (``suffix``) of killed runs on ``lock.target``; return them.

    Only directories named ``.NAME.*<suffix>`` whose marker names this target are
    removed, and only while ``lock`` is held (a run that is alive holds the lock).
    """
    if not lock.held:
        raise RuntimeError("sweep_staging needs the target's lock")
    target = Path(lock.target)
    removed: list[Path] = []
    try:
        entries = sorted(target.parent.glob(f".{target.name}.*{suffix}"))
    except OSError:
        return removed
    for entry in entries:
        if _ours(entry, target.name):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed
