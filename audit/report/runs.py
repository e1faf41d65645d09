"""Items sorted by a key in bounded memory: sorted runs spilled to unnamed scratch files, then merged.

What it does: :class:`SortedRuns` takes items in any order and keeps at most
``run_size`` of them in memory; each full batch is sorted (stably) and spilled to
an unnamed temporary file (gone when closed, or if the process dies). :meth:`SortedRuns.merged`
streams every item back in key order, items of equal keys in the order they were
added, as often as asked. Past :data:`MERGE_WIDTH` runs the earliest are merged into
one as they come, so open files stay bounded however many items there are.

What it does not do: choose the key or the bytes: the caller's ``key``, ``encode``
(one line without ``\\n``) and ``decode``. A write that fails (a full disk) is an
:class:`~audit.errors.InputError` naming the scratch directory.
"""

from __future__ import annotations

import heapq
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Generic, TypeVar

from audit.errors import InputError

T = TypeVar("T")

MERGE_WIDTH = 64
"""Runs merged at once; one more spill first merges the earliest this many into one run."""


class SortedRuns(Generic[T]):
    """Collect items with bounded memory; :meth:`merged` yields them all sorted by ``key`` (stable).

    Use as a context manager: the scratch runs are closed (and so gone) on exit.
    """

    def __init__(
        self,
        key: Callable[[T], Any],
        encode: Callable[[T], bytes],
        decode: Callable[[bytes], T],
        *,
        run_size: int,
        scratch: Path | None = None,
    ) -> None:
        if run_size < 1:
            raise ValueError("run_size must be at least 1")
        self._key, self._encode, self._decode = key, encode, decode
        self._run_size = run_size
        self._scratch = scratch
        self._buffer: list[T] = []
        self._runs: list[IO[bytes]] = []
        self.count = 0
        """Items added."""
        self.spilled = 0
        """Runs written to scratch files (merged ones included)."""

    def __enter__(self) -> SortedRuns[T]:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Forget every item (the scratch files go)."""
        for run in self._runs:
            run.close()
        self._runs.clear()
        self._buffer = []

    @property
    def in_memory(self) -> int:
        """Items held in memory now (at most ``run_size``)."""
        return len(self._buffer)

    def add(self, item: T) -> None:
        """Take one item (any order)."""
        self._buffer.append(item)
        self.count += 1
        if len(self._buffer) >= self._run_size:
            self._spill()

    def extend(self, items: Iterable[T]) -> None:
        """Take each of ``items``."""
        for item in items:
            self.add(item)

    def merged(self) -> Iterator[T]:
        """Every item so far, in key order (equal keys in the order added). One merge at a time."""
        self._buffer.sort(key=self._key)  # stable: keeps the order added among equal keys
        return self._merge(self._runs, self._buffer)

    def _spill(self) -> None:
        self._buffer.sort(key=self._key)
        self._runs.append(self._write_run(self._buffer))
        self._buffer = []
        if len(self._runs) > MERGE_WIDTH:  # the earliest runs first, so the order added is kept
            first = self._runs[:MERGE_WIDTH]
            merged = self._write_run(self._merge(first, []))
            for run in first:
                run.close()
            self._runs[:MERGE_WIDTH] = [merged]

    def _write_run(self, items: Iterable[T]) -> IO[bytes]:
        encode = self._encode
        with self._writing():
            run = tempfile.TemporaryFile(dir=self._scratch)  # noqa: SIM115 - closed by close()
            try:
                run.writelines(encode(item) + b"\n" for item in items)
                run.flush()
            except BaseException:
                run.close()
                raise
        self.spilled += 1
        return run

    def _merge(self, runs: list[IO[bytes]], tail: list[T]) -> Iterator[T]:
        return heapq.merge(*map(self._read, runs), tail, key=self._key)

    def _read(self, run: IO[bytes]) -> Iterator[T]:
        run.seek(0)
        decode = self._decode
        for line in run:
            yield decode(line[:-1])

    @contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            where = self._scratch or Path(tempfile.gettempdir())
            raise InputError(f"cannot write a scratch run: {exc.strerror or exc}", path=where) from None
