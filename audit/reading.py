"""Bounded reading of files nobody here wrote: regular files only, sizes and depth capped.

Everything the tool reads (access logs, approvals, vendor exports, policy packs,
keyrings, checkpoints) may come from the party being audited or from an attacker.
Every read goes through this module, which:

- opens without following a final symlink unless the caller allows it, and without
  blocking (``O_NONBLOCK``), then checks with ``fstat`` that the open file is a
  regular file, so a FIFO, socket or device is refused instead of hanging;
- refuses files larger than a cap before reading them, and lines longer than a cap
  while streaming them, and decompressed gzip data beyond a cap while inflating;
- checks the nesting depth of parsed JSON values without recursion.

Every violation is an :class:`~audit.errors.InputError` naming the file (and line);
nothing here raises MemoryError or RecursionError or blocks on a special file. It
does not parse formats (see :mod:`audit.records`) and does not write (see
:mod:`audit.fsio`).
"""

from __future__ import annotations

import errno
import fcntl
import gzip
import io
import os
import stat
import zlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from audit.errors import InputError

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_ERRORS",
    "MAX_ERRORS",
    "Limits",
    "check_depth",
    "iter_lines",
    "open_maybe_gzip",
    "open_regular",
    "read_bytes",
    "read_text",
]

MiB = 1024 * 1024
GiB = 1024 * MiB


DEFAULT_MAX_ERRORS = 20
MAX_ERRORS: ContextVar[int] = ContextVar("max_errors", default=DEFAULT_MAX_ERRORS)
"""How many problems of one invalid record an error lists (the CLI's ``--max-errors``;
:func:`audit.records.describe_validation_error`). Here, not in :mod:`audit.records`, so the
CLI can set it without importing pydantic."""


@dataclass(frozen=True)
class Limits:
    """Caps on what one input may cost; the defaults fit real vendor exports with room to spare."""

    max_file_bytes: int = 64 * GiB
    """A file larger than this is refused before it is read (streamed readers)."""
    max_whole_file_bytes: int = 256 * MiB
    """A file read into memory at once (policy files, keyrings, checkpoints, segments) is at most this."""
    max_line_bytes: int = 16 * MiB
    """One JSON Lines record (one line) is at most this."""
    max_decompressed_bytes: int = 64 * GiB
    """A gzip member inflates to at most this."""
    max_depth: int = 64
    """JSON values nest at most this deep."""


DEFAULT_LIMITS = Limits()


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(
    path: str | Path, *, follow_symlinks: bool = True, limits: Limits = DEFAULT_LIMITS, max_bytes: int | None = None
) -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file no larger than the cap.

    The check is made on the open file (``fstat``), so the file cannot be swapped
    for a FIFO between a check and the open; the open itself does not block.
    With ``follow_symlinks=False`` a symlink as the last component is refused.
    """
    p = Path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(p, flags)
    except FileNotFoundError:
        raise InputError("no such file", path=p) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise InputError("is a symlink; refusing to follow it", path=p) from None
        if exc.errno == errno.EISDIR:
            raise InputError("is a directory, not a file", path=p) from None
        raise InputError(f"cannot open: {exc.strerror or exc}", path=p) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"is {_kind(info.st_mode)}, not a regular file", path=p)
        cap = limits.max_file_bytes if max_bytes is None else max_bytes
        if info.st_size > cap:
            raise InputError(f"is {info.st_size} bytes, more than the limit of {cap}", path=p)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(
    path: str | Path, *, follow_symlinks: bool = True, limits: Limits = DEFAULT_LIMITS, max_bytes: int | None = None
) -> bytes:
    """The whole content of a regular file of at most ``max_bytes`` (default: the whole-file cap)."""
    cap = limits.max_whole_file_bytes if max_bytes is None else max_bytes
    with open_regular(path, follow_symlinks=follow_symlinks, limits=limits, max_bytes=cap) as fh:
        try:
            data = fh.read(cap + 1)
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None
    if len(data) > cap:  # grew after fstat
        raise InputError(f"is more than the limit of {cap} bytes", path=path)
    return data


def read_text(
    path: str | Path, *, follow_symlinks: bool = True, limits: Limits = DEFAULT_LIMITS, max_bytes: int | None = None
) -> str:
    """Like :func:`read_bytes`, decoded as UTF-8 (an undecodable file is an input error)."""
    data = read_bytes(path, follow_symlinks=follow_symlinks, limits=limits, max_bytes=max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"not UTF-8 text (byte {exc.start})", path=path, line=line) from None


class _CappedGzip(io.RawIOBase):
    """A gzip stream that stops with an InputError once it has inflated more than ``cap`` bytes."""

    def __init__(self, raw: BinaryIO, path: Path, cap: int) -> None:
        self._gz = gzip.GzipFile(fileobj=raw, mode="rb")
        self._raw = raw
        self._path = path
        self._cap = cap
        self._total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            n = self._gz.readinto(view)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"corrupt gzip data: {exc}", path=self._path) from None
        self._total += n
        if self._total > self._cap:
            raise InputError(f"inflates to more than the limit of {self._cap} bytes", path=self._path)
        return n

    def close(self) -> None:
        try:
            self._gz.close()
        finally:
            self._raw.close()
            super().close()


def open_maybe_gzip(path: str | Path, *, limits: Limits = DEFAULT_LIMITS) -> BinaryIO:
    """A regular file, transparently inflated if it starts with the gzip magic, with both caps."""
    p = Path(path)
    fh = open_regular(p, limits=limits)
    try:
        magic = fh.read(2)
        fh.seek(0)
    except OSError as exc:
        fh.close()
        raise InputError(f"cannot read: {exc.strerror or exc}", path=p) from None
    if magic != b"\x1f\x8b":
        return fh
    return io.BufferedReader(_CappedGzip(fh, p, limits.max_decompressed_bytes), buffer_size=MiB)


def iter_lines(fh: BinaryIO, *, path: str | Path, limits: Limits = DEFAULT_LIMITS) -> Iterator[tuple[int, bytes]]:
    """``(1-based line number, line with its newline)`` of a binary stream, each at most the line cap."""
    cap = limits.max_line_bytes
    number = 0
    while True:
        try:
            line = fh.readline(cap + 1)
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}", path=path, line=number + 1) from None
        if not line:
            return
        number += 1
        if len(line) > cap:
            raise InputError(f"line is longer than the limit of {cap} bytes", path=path, line=number)
        yield number, line


def check_depth(value: Any, *, path: str | Path, line: int | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise an InputError if a parsed JSON value nests deeper than the cap (no recursion)."""
    cap = limits.max_depth
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > cap:
            raise InputError(f"value nests deeper than the limit of {cap}", path=path, line=line)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
