"""Findings of a replay, streamed to disk as ``findings.jsonl``.

What it does: :class:`FindingsSpool` takes findings in any order, keeps at most
``run_size`` of them in memory, spills sorted runs to a scratch directory, and
merges the runs into ``findings.jsonl`` - one canonical JSON finding per line,
ordered by time, event ids and rule - hashing the bytes as it writes them. Runs that
already follow one another in key order (a log in time order) are copied one after
another instead of merged. A
write that fails (a full disk) is an :class:`~audit.errors.InputError` naming the file. So a
replay with millions of findings needs memory for one run, not for all of them.
:func:`iter_findings` reads the file back line by line.

What it does not do: sign or verify. The file's digest is a subject of the signed
report statement; callers check that digest before they read the file
(:func:`audit.report.verify.verify_report`, :func:`audit.residency.report.add_residency_to_report`).
"""

from __future__ import annotations

import hashlib
import heapq
import os
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice, pairwise
from operator import itemgetter
from pathlib import Path
from types import TracebackType

import orjson

from audit.canonical import canonical_bytes
from audit.errors import InputError, InternalError
from audit.fsio import EarlyWriteback
from audit.models import Finding
from audit.records import iter_jsonl

RUN_SIZE = 5_000
"""Findings held in memory before a sorted run is spilled to disk."""
MERGE_WIDTH = 128
"""Runs merged at once; more are first merged into longer runs (open files stay bounded)."""
_WRITE_BATCH = 256
"""Lines joined before they are written: of each run, and of ``findings.jsonl`` (hashed as written)."""

_SortKey = tuple[str, tuple[str, ...], str]
EncodedFinding = tuple[_SortKey, bytes]
"""A finding as the spool keeps it: sort key and canonical line (cheap to pickle between processes)."""


def _sort_key(finding: Finding) -> _SortKey:
    # Finding.time is UTC, so its fixed-width ISO form (4-digit year, microseconds) sorts as the instant does.
    return finding.time.isoformat(timespec="microseconds"), finding.event_ids, finding.rule_id


def encode_finding(finding: Finding) -> EncodedFinding:
    """What :meth:`FindingsSpool.add` stores for ``finding``; workers encode their own findings."""
    # A new, exactly sized object: orjson's own output over-allocates (4 KiB).
    return _sort_key(finding), canonical_bytes(finding) + b"\n"


@dataclass(frozen=True)
class WrittenFindings:
    """What :meth:`FindingsSpool.writing` produced."""

    path: Path
    count: int
    sha256: str


class FindingsSpool:
    """Collect findings with bounded memory; :meth:`write` merges them into one sorted file.

    Use as a context manager: the scratch runs are removed on exit, whatever happens.
    """

    def __init__(self, scratch: Path, run_size: int = RUN_SIZE) -> None:
        self._scratch = scratch
        self._run_size = run_size
        self._buffer: list[tuple[_SortKey, bytes]] = []
        self._runs: list[Path] = []
        self._bounds: list[tuple[_SortKey, _SortKey]] = []
        """The first and last key of each run, in run order."""
        self._next_run = 0
        self.count = 0
        self.written: WrittenFindings | None = None
        """The file's path, count and digest, once :meth:`writing` has finished it."""
        self._settled: bool | None = None
        """None until :meth:`settle`; then whether the runs follow one another (copied, not merged)."""

    def __enter__(self) -> FindingsSpool:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for run in self._runs:
            run.unlink(missing_ok=True)
        self._runs.clear()
        self._bounds.clear()
        self._buffer.clear()

    def add(self, finding: Finding) -> None:
        """Take one finding (any order)."""
        self.add_encoded(encode_finding(finding))

    def add_encoded(self, item: EncodedFinding) -> None:
        """Take one finding already passed through :func:`encode_finding` (any order)."""
        assert self._settled is None, "findings are added before they are read"
        self._buffer.append(item)
        self.count += 1
        if len(self._buffer) >= self._run_size:
            self._spill()

    def _spill(self) -> None:
        self._buffer.sort(key=itemgetter(0))  # stable: equal keys keep arrival order
        self._runs.append(self._write_run(iter(self._buffer)))
        self._bounds.append((self._buffer[0][0], self._buffer[-1][0]))
        self._buffer.clear()

    def _write_run(self, items: Iterator[tuple[_SortKey, bytes]]) -> Path:
        run = self._scratch / f".findings-run-{self._next_run:06d}"
        self._next_run += 1
        dumps = orjson.dumps
        with _writing(run), run.open("xb") as fh:
            while batch := list(islice(items, _WRITE_BATCH)):  # canonical JSON has no raw tab
                fh.write(b"".join([dumps(key) + b"\t" + line for key, line in batch]))
        return run

    def _merge(self, runs: list[Path], tail: Iterator[tuple[_SortKey, bytes]]) -> Iterator[tuple[_SortKey, bytes]]:
        """Items of ``runs`` then ``tail`` (in arrival order), merged stably by key."""
        handles = [run.open("rb") for run in runs]
        try:
            streams = [*(map(_read_run_line, fh) for fh in handles), tail]
            yield from heapq.merge(*streams, key=itemgetter(0))
        finally:
            for fh in handles:
                fh.close()

    def _in_order(self) -> bool:
        """Whether each run (then the sorted buffer) starts at or after where the one before ends.

        Then the stable merge is the runs one after another: every key of a run is at most
        its last, which is at most the next run's first, and equal keys are taken in run
        order. A log in time order gives such runs.
        """
        bounds = self._bounds + ([(self._buffer[0][0], self._buffer[-1][0])] if self._buffer else [])
        return all(before[1] <= after[0] for before, after in pairwise(bounds))

    def _concatenated(self) -> Iterator[bytes]:
        """The runs' lines one run at a time, then the buffer's (when :meth:`_in_order`)."""
        for run in self._runs:
            with run.open("rb") as fh:
                for raw in fh:
                    yield raw.partition(b"\t")[2]  # a key is orjson's dump: no raw tab
        for _, line in self._buffer:
            yield line

    def settle(self) -> None:
        """Sort the buffer and, unless the runs follow one another, merge them down to :data:`MERGE_WIDTH`.

        Afterwards :meth:`lines` writes nothing, so two processes may read the findings
        in order at once (one writing ``findings.jsonl``, one the exports). Idempotent;
        no finding may be added after it.
        """
        if self._settled is not None:
            return
        self._buffer.sort(key=itemgetter(0))
        settled = self._in_order()
        with _writing(self._scratch):
            while not settled and len(self._runs) > MERGE_WIDTH:  # the earliest first: arrival order is kept
                first = self._runs[:MERGE_WIDTH]
                merged = self._write_run(self._merge(first, iter(())))
                for run in first:
                    run.unlink()
                self._runs[:MERGE_WIDTH] = [merged]
        self._settled = settled

    def lines(self, transform: Callable[[bytes], bytes] | None = None) -> Iterator[bytes]:
        """Every finding's line in key order (after :meth:`settle`), each through ``transform`` if given."""
        self.settle()
        merged = (
            self._concatenated() if self._settled else (line for _, line in self._merge(self._runs, iter(self._buffer)))
        )
        return merged if transform is None else map(transform, merged)

    def writing(self, path: Path, transform: Callable[[bytes], bytes] | None = None) -> Generator[bytes, None, None]:
        """Write every finding, sorted, to ``path`` (a new file), fsynced, handing on each line once
        the batch holding it is written and hashed.

        A pass over the findings takes them from here instead of reading the file back:
        it sees the very bytes hashed into the digest. ``transform`` (waivers marking a
        finding) rewrites each line before it is written. :attr:`written` is set once
        the last line has been handed on and the file is fsynced.
        """
        digest = hashlib.sha256()
        count = 0
        with _writing(path), path.open("xb") as fh:
            merged = self.lines(transform)
            writeback = EarlyWriteback(fh.fileno())
            while lines := list(islice(merged, _WRITE_BATCH)):  # one hash update and write per batch
                chunk = b"".join(lines)
                digest.update(chunk)
                fh.write(chunk)
                writeback.wrote(len(chunk))
                count += len(lines)
                yield from lines
            fh.flush()
            os.fsync(fh.fileno())
        if count != self.count:  # a merge that lost or doubled a finding must never be signed
            raise InternalError(f"wrote {count} findings of the {self.count} taken", path=path)
        self.written = WrittenFindings(path, count, digest.hexdigest())


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turn an :class:`OSError` while writing ``path`` (a full disk, say) into an input error naming it."""
    try:
        yield
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", path=path) from None


def _read_run_line(raw: bytes) -> tuple[_SortKey, bytes]:
    key, _, line = raw.partition(b"\t")
    when, ids, rule = orjson.loads(key)
    return (when, tuple(ids), rule), line


def iter_findings(path: Path) -> Iterator[Finding]:
    """Findings of a ``findings.jsonl`` file, one line at a time (InputError on a bad line)."""
    for _, finding in iter_jsonl(path, Finding):
        yield finding
