"""Durable, all-or-nothing file writes: a temp file in the same directory, fsync, rename.

Every layer that publishes a file uses :func:`atomic_write`, so no command leaves a
half-written output behind. Failures become :class:`~audit.errors.InputError` naming
the path. Does not decide what may be overwritten beyond the ``exclusive`` flag.
:class:`EarlyWriteback` lets a large file streamed to disk and fsynced at the end
start reaching the disk while it is written.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from audit.errors import InputError


def fsync_dir(directory: Path) -> None:
    """Best effort: make a rename in ``directory`` durable."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` through a temp file (created with ``mode``) and a rename.

    With ``exclusive`` the final step refuses to replace an existing file (hard
    link, which fails if the name exists); otherwise ``os.replace`` is used.
    """
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create directory: {exc.strerror}", path=directory) from None
    tmp = directory / f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}", path=path) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise InputError("refusing to overwrite an existing file", path=path) from None
            except OSError:
                # File systems without hard links: check, then rename.
                if path.exists():
                    raise InputError("refusing to overwrite an existing file", path=path) from None
                os.replace(tmp, path)
        else:
            os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}", path=path) from None
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(directory)


WRITEBACK_EVERY = 16 << 20
"""Bytes written between two early write-back requests (:class:`EarlyWriteback`)."""
_FADVISE = getattr(os, "posix_fadvise", None)


class EarlyWriteback:
    """Ask the kernel to start writing a large file's pages to disk while the file is still being written.

    A report's files are fsynced before they are published. Written in one pass, a
    file of hundreds of MB is then still almost all dirty in the page cache, and the
    fsync waits for all of it while nothing else runs. Every :data:`WRITEBACK_EVERY`
    bytes, :meth:`wrote` advises ``POSIX_FADV_DONTNEED`` on the stretch written since
    the last request: Linux starts writing it out without waiting, so the final
    fsync waits for the last stretch only. (The advice drops only pages already
    clean; a stretch advised right after it is written mostly stays cached.) Advice
    only: no byte changes, errors are ignored, and it does nothing where
    ``posix_fadvise`` is missing. The fsync is still the caller's.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._written = 0
        self._advised = 0

    def wrote(self, size: int) -> None:
        """``size`` more bytes were written to the file (handed to its buffered writer)."""
        self._written += size
        pending = self._written - self._advised
        if pending >= WRITEBACK_EVERY and _FADVISE is not None:
            with contextlib.suppress(OSError):
                _FADVISE(self._fd, self._advised, pending, os.POSIX_FADV_DONTNEED)
            self._advised = self._written
