"""Durable, all-or-nothing file writes: a temp file in the same directory, fsync, rename.

Every layer that publishes a file uses :func:`atomic_write`, so no command leaves a
half-written output behind. Failures become :class:`~audit.errors.InputError` naming
the path. Does not decide what may be overwritten beyond the ``exclusive`` flag.
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
