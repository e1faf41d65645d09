"""Seal canonical records into a segmented, Merkle-hashed, signed log directory.

What it does: streams records (canonical JSON bytes, one per line) into segment
files of at most ``segment_size`` records, writes each segment's leaf-hash
sidecar, and after each segment a DSSE-signed checkpoint chained to the previous
one (layout and bytes: ``docs/log-format.md``). :func:`seal` signs each checkpoint as
its segment closes; :func:`open_seal` without an origin writes the segments as the
records come and signs every checkpoint at :meth:`LogSealer.finish`, when the caller
knows the origin (an import's names its report, complete only after the last record):
the same bytes either way. Everything is written into a
temporary directory next to ``out`` and renamed to ``out`` only when complete;
on any failure the temporary directory is removed and ``out`` is untouched. The
run holds ``out``'s lock (:mod:`audit.locking`) throughout, removes what killed
seals of ``out`` left, refuses duplicate record ids (through an event-id index,
:mod:`audit.logs.index`) and names the file when a write fails (disk full).

Given a keyring, it refuses to seal with a key the keyring would not trust at
the sealing time (absent, revoked, or outside its validity window), before
anything is written.

What it does not do: it does not validate or canonicalise records (the caller
does; this module only rejects empty records and records containing a newline),
it does not append to an existing log (see :mod:`audit.logs.append`), and it
never holds more than the leaf hashes of the current segment (32 bytes per
record), about a MiB of its lines not yet written, and a few hashes per segment
whose checkpoint waits, in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import BinaryIO

from audit.errors import InputError
from audit.fsio import fsync_dir
from audit.locking import DirectoryLock, make_staging, sweep_staging, unmark_staging
from audit.logs.checkpoint import (
    CHECKPOINT_PAYLOAD_TYPE,
    CHECKPOINTS_DIR,
    LOG_FORMAT,
    MAX_SEGMENTS,
    SEGMENTS_DIR,
    CheckpointBody,
    SegmentInfo,
    checkpoint_name,
    checkpoint_payload,
    leaves_name,
    segment_name,
)
from audit.logs.index import INDEX_FILE, IdIndex, record_id
from audit.logs.merkle import EMPTY_ROOT, TreeBuilder, leaf_hashes, tree_levels
from audit.signing.dsse import envelope_bytes, sign_envelope
from audit.signing.keys import Keyring, SigningKey, purpose_for_record_type, require_signing_key_valid

STAGING_SUFFIX = ".sealing"
"""Seal writes into ``PARENT/.NAME.<random>.sealing`` (with the :data:`~audit.locking.STAGING_MARKER`)."""


@dataclass(frozen=True)
class SealResult:
    """Outcome of :func:`seal`: total leaves, final root (hex), segment count, log dir."""

    tree_size: int
    root: str
    segments: int
    out: Path


_FLUSH_BYTES = 1 << 20
"""A segment's lines are written in batches of about this many bytes (not one write per record)."""


class _OpenSegment:
    """Files, running digests, leaf hashes and record ids of the segment being written.

    Lines and leaf hashes are buffered and written in batches of about
    :data:`_FLUSH_BYTES`: the files hold the same bytes as with one write per record.
    """

    def __init__(self, root: Path, index: int, first: int) -> None:
        self.index = index
        self.first = first
        self.count = 0
        self.hashes: list[bytes] = []
        """Leaf hashes of the records flushed so far (all of them once closed)."""
        self.ids: list[tuple[int, str]] = []
        """``(line, id)`` of the records that carry an id."""
        self.jsonl_sha = hashlib.sha256()
        self.leaves_sha = hashlib.sha256()
        self.jsonl_path = root / segment_name(index)
        self.leaves_path = root / leaves_name(index)
        self.lines: list[bytes] = []
        """Records not yet written."""
        self.pending = 0
        """Their bytes: :meth:`flush` when about :data:`_FLUSH_BYTES`."""
        with _writing(self.jsonl_path):
            self.jsonl: BinaryIO = self.jsonl_path.open("xb")
        with _writing(self.leaves_path):
            self.leaves: BinaryIO = self.leaves_path.open("xb")

    def flush(self) -> None:
        """Hash and write the buffered lines, and write their leaf hashes."""
        lines = self.lines
        if not lines:
            return
        hashes = leaf_hashes(lines)
        self.hashes += hashes
        data = b"\n".join(lines) + b"\n"
        with _writing(self.jsonl_path):
            self.jsonl.write(data)
        self.jsonl_sha.update(data)
        leaves = b"".join(hashes)
        with _writing(self.leaves_path):
            self.leaves.write(leaves)
        self.leaves_sha.update(leaves)
        self.lines = []
        self.pending = 0

    def close(self) -> None:
        if not self.jsonl.closed:
            self.flush()
        for fh, path in ((self.jsonl, self.jsonl_path), (self.leaves, self.leaves_path)):
            if not fh.closed:
                with _writing(path):
                    fh.flush()
                    os.fsync(fh.fileno())
                    fh.close()

    def abort(self) -> None:
        for fh in (self.jsonl, self.leaves):
            with contextlib.suppress(OSError):
                fh.close()


def _check_out(out: Path) -> None:
    if out.is_symlink():
        raise InputError("output exists (a symlink)", path=out)
    if out.exists():
        if not out.is_dir():
            raise InputError("output exists and is not a directory", path=out)
        if any(out.iterdir()):
            raise InputError("output directory exists and is not empty", path=out)


def _seal_time(time: datetime | None) -> datetime:
    """The checkpoint time in UTC: ``time``, or now truncated to whole seconds; InputError if naive."""
    if time is None:
        time = datetime.now(UTC).replace(microsecond=0)
    elif time.tzinfo is None or time.utcoffset() is None:
        raise InputError("seal time must be timezone-aware")
    return time.astimezone(UTC)


def _check_record(number: int, record: bytes) -> None:
    """InputError unless record ``number`` (1-based) is non-empty and has no newline."""
    if not record:
        raise InputError(f"record {number} is empty")
    if b"\n" in record:
        raise InputError(f"record {number} contains a newline")


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turn an OSError while writing ``path`` (disk full, quota, I/O) into InputError naming it."""
    try:
        yield
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", path=path) from None


def _duplicate_error(index: IdIndex, source: str | Path | None) -> InputError | None:
    """InputError naming the first record whose id an earlier record of the input has, if any."""
    found = index.first_duplicate()
    if found is None:
        return None
    record, first, again = found
    if source is None:
        return InputError(f"record {again.leaf + 1}: duplicate id {record!r} (first: record {first.leaf + 1})")
    return InputError(f"duplicate id {record!r} (first at line {first.leaf + 1})", path=source, line=again.leaf + 1)


@dataclass(frozen=True)
class _ClosedSegment:
    """A written segment and what its checkpoint says: the segment, and the tree with it included."""

    index: int
    info: SegmentInfo
    tree_size: int
    tree_root: str


class LogSealer:
    """A seal in progress (see :func:`open_seal`): records are written as they come.

    Each segment is written, with its leaf hashes, as soon as it is full. Its checkpoint
    is signed then if the origin and time were given to :func:`open_seal` (as
    :func:`seal` does), else by :meth:`finish`, in order: the origin of an import names
    the digest of its report, known only once every record was read. Either way the
    log holds the same bytes.
    """

    def __init__(
        self,
        root: Path,
        out: Path,
        *,
        key: SigningKey,
        record_type: str,
        segment_size: int,
        index: IdIndex,
        source: str | Path | None,
        signing: tuple[str, datetime] | None,
    ) -> None:
        self._root = root
        self._out = out
        self._key = key
        self._record_type = record_type
        self._segment_size = segment_size
        self._index = index
        self._source = source
        self._signing = signing
        self._total = TreeBuilder()
        self._count = 0
        self._segments = 0
        self._segment: _OpenSegment | None = None
        self._waiting: list[_ClosedSegment] = []
        """Closed segments whose checkpoints are signed by :meth:`finish`."""
        self._previous: str | None = None
        self.sealed = False

    def add(self, record: bytes) -> None:
        """Add one record (canonical JSON bytes without a newline); its id is read from it."""
        self.add_identified(record, record_id(record))

    def add_identified(self, record: bytes, found: str | None) -> None:
        """Add one record whose id (:func:`~audit.logs.index.record_id` of its bytes) the caller knows."""
        self._count += 1
        if not record or b"\n" in record:
            _check_record(self._count, record)
        segment = self._segment
        if segment is None:
            if self._segments >= MAX_SEGMENTS:
                raise InputError(f"too many segments (more than {MAX_SEGMENTS})")
            segment = self._segment = _OpenSegment(self._root, self._segments, self._total.size)
        segment.lines.append(record)
        segment.count += 1
        if found is not None:
            segment.ids.append((segment.count, found))
        segment.pending += len(record)
        if segment.pending >= _FLUSH_BYTES:
            segment.flush()
        if segment.count == self._segment_size:
            self._close()

    def add_all(self, records: Sequence[bytes], ids: Sequence[str]) -> None:
        """:meth:`add_identified` of each record and its id, in order: the same files, a segment's share at a time."""
        done = 0
        while done < len(records):
            segment = self._segment
            if segment is None:
                if self._segments >= MAX_SEGMENTS:
                    raise InputError(f"too many segments (more than {MAX_SEGMENTS})")
                segment = self._segment = _OpenSegment(self._root, self._segments, self._total.size)
            take = min(len(records) - done, self._segment_size - segment.count)
            chunk = records[done : done + take]
            if not all(chunk) or any(map(bytes.__contains__, chunk, repeat(b"\n"))):
                for record, found in zip(chunk, ids[done : done + take], strict=True):
                    self.add_identified(record, found)  # raises at the first bad record, as one by one
                done += take
                continue
            segment.ids += zip(range(segment.count + 1, segment.count + take + 1), ids[done : done + take], strict=True)
            segment.lines += chunk
            segment.count += take
            segment.pending += sum(map(len, chunk))
            self._count += take
            done += take
            if segment.pending >= _FLUSH_BYTES:
                segment.flush()
            if segment.count == self._segment_size:
                self._close()

    def _close(self) -> None:
        segment = self._segment
        assert segment is not None
        if len(segment.ids) == segment.count:  # every record has an id: lines 1, 2, ...
            self._index.add_lines(segment.first, segment.index, [found for _, found in segment.ids])
        else:
            self._index.add((segment.first + line - 1, found, segment.index, line) for line, found in segment.ids)
        segment.close()
        self._segment = None
        self._segments += 1
        levels = tree_levels(segment.hashes) if segment.hashes else None
        if levels is not None:
            self._total.extend_levels(levels)
        info = SegmentInfo(
            name=segment_name(segment.index),
            sha256=segment.jsonl_sha.hexdigest(),
            leaves_sha256=segment.leaves_sha.hexdigest(),
            first=segment.first,
            count=segment.count,
            root=(levels[-1][0] if levels is not None else EMPTY_ROOT).hex(),
        )
        closed = _ClosedSegment(segment.index, info, self._total.size, self._total.root().hex())
        if self._signing is not None:
            self._sign(closed, *self._signing)
        else:
            self._waiting.append(closed)

    def _sign(self, closed: _ClosedSegment, origin: str, time: datetime) -> None:
        data = _checkpoint_bytes(
            closed.index,
            closed.info,
            closed.tree_size,
            closed.tree_root,
            self._previous,
            self._key,
            origin,
            self._record_type,
            time,
        )
        path = self._root / checkpoint_name(closed.index)
        with _writing(path), path.open("xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        self._previous = hashlib.sha256(data).hexdigest()

    def finish(self, origin: str, time: datetime | None = None, *, allow_empty: bool = False) -> SealResult:
        """Close the last segment, sign what waits, check ids, and rename the staging directory to ``out``.

        ``time`` as for :func:`seal`; ignored (with ``origin``) when :func:`open_seal` was given them.
        """
        signing = self._signing or (origin, _seal_time(time))
        if self._segment is not None:
            self._close()
        if self._total.size == 0 and not allow_empty:
            raise InputError("no records to seal", path=self._out)
        if self._total.size == 0:  # an empty log: one empty segment whose checkpoint signs tree size 0
            self._segment = _OpenSegment(self._root, 0, 0)
            self._close()
        for closed in self._waiting:  # in order, after the last segment closed
            self._sign(closed, *signing)
        self._waiting = []
        duplicate = _duplicate_error(self._index, self._source)
        if duplicate is not None:
            raise duplicate
        root = self._total.root().hex()
        self._index.commit(self._total.size, root)
        self._index.close()
        fsync_dir(self._root / SEGMENTS_DIR)
        fsync_dir(self._root / CHECKPOINTS_DIR)
        unmark_staging(self._root)
        try:
            os.replace(self._root, self._out)
        except OSError as exc:
            raise InputError(f"cannot create output: {exc.strerror}", path=self._out) from None
        self.sealed = True
        fsync_dir(self._out.parent)
        return SealResult(tree_size=self._total.size, root=root, segments=self._segments, out=self._out)

    def abort(self) -> None:
        """Close the open segment's files (the staging directory is removed by :func:`open_seal`)."""
        if self._segment is not None:
            self._segment.abort()


@contextlib.contextmanager
def open_seal(
    out: Path,
    *,
    key: SigningKey,
    record_type: str,
    segment_size: int = 10000,
    source: str | Path | None = None,
    keep_index: bool = False,
    signing: tuple[str, datetime] | None = None,
) -> Iterator[LogSealer]:
    """A :class:`LogSealer` writing a new log directory ``out``; :meth:`LogSealer.finish` completes it.

    Holds ``out``'s lock throughout, after removing the staging directories of killed
    seals of ``out``. ``signing`` (origin, timezone-aware time) signs each checkpoint
    as its segment closes; without it they are signed by :meth:`~LogSealer.finish`. If
    the body raises or returns before ``finish`` succeeded, nothing is left at ``out``
    (nor the staging directory). Errors as for :func:`seal`.
    """
    out = Path(out)
    if segment_size < 1:
        raise InputError(f"segment_size must be at least 1, got {segment_size}")
    _check_out(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output: {exc.strerror}", path=out) from None
    with DirectoryLock(out) as lock:
        sweep_staging(lock, STAGING_SUFFIX)
        _check_out(out)
        tmp = make_staging(out, STAGING_SUFFIX)
        index: IdIndex | None = None
        sealer: LogSealer | None = None
        try:
            with _writing(tmp):
                (tmp / SEGMENTS_DIR).mkdir()
                (tmp / CHECKPOINTS_DIR).mkdir()
            index = IdIndex(tmp / INDEX_FILE if keep_index else None)
            index.load_new()
            index.begin()
            sealer = LogSealer(
                tmp,
                out,
                key=key,
                record_type=record_type,
                segment_size=segment_size,
                index=index,
                source=source,
                signing=signing,
            )
            yield sealer
        finally:
            if sealer is None or not sealer.sealed:
                if sealer is not None:
                    sealer.abort()
                if index is not None:
                    index.close()
                shutil.rmtree(tmp, ignore_errors=True)


def seal(
    records: Iterable[bytes],
    *,
    out: Path,
    key: SigningKey,
    origin: str,
    record_type: str,
    segment_size: int = 10000,
    time: datetime | None = None,
    keyring: Keyring | None = None,
    source: str | Path | None = None,
    keep_index: bool = False,
    allow_empty: bool = False,
) -> SealResult:
    """Seal ``records`` into a new log directory ``out`` and sign its checkpoints.

    Each record must be canonical JSON bytes without a newline (validated and
    canonicalised by the caller). ``time`` (timezone-aware) goes into every
    checkpoint; ``None`` means now in UTC, truncated to whole seconds. With a fixed
    ``time`` the output is byte-for-byte deterministic (Ed25519 is deterministic).
    With ``keyring``, a key it would not trust at ``time`` is refused
    (:class:`~audit.errors.KeyMaterialError`) before anything is written.

    The run holds ``out``'s lock (:class:`~audit.locking.DirectoryLock`: a second
    seal or append of the same path fails with :class:`~audit.errors.LockedError`)
    and first removes the staging directories of killed seals of ``out``. Record ids
    (``event_id`` / ``approval_id``) must be unique: a duplicate is an InputError
    naming ``source`` (the input file, whose line ``n`` is record ``n``) and both
    lines. With ``keep_index`` the event-id index (:mod:`audit.logs.index`) is left
    in ``out`` for later appends and proofs.

    Raises :class:`InputError` if ``out`` exists and is not an empty directory,
    ``segment_size < 1``, there are no records, a record is empty or contains a
    newline, an id repeats, writing fails (naming the file: disk full), or the log
    would need more than 10^8 segments. Exceptions from the ``records`` iterator
    propagate unchanged. On any failure nothing is left at ``out`` (nor the
    temporary directory).
    """
    if segment_size < 1:
        raise InputError(f"segment_size must be at least 1, got {segment_size}")
    time = _seal_time(time)
    if keyring is not None:
        require_signing_key_valid(keyring, key, time, purpose_for_record_type(record_type))
    with open_seal(
        out,
        key=key,
        record_type=record_type,
        segment_size=segment_size,
        source=source,
        keep_index=keep_index,
        signing=(origin, time),
    ) as sealer:
        for record in records:
            sealer.add(record)
        return sealer.finish(origin, time, allow_empty=allow_empty)


def signed_checkpoint(
    *,
    index: int,
    first: int,
    hashes: list[bytes],
    jsonl_sha256: str,
    leaves_sha256: str,
    total: TreeBuilder,
    previous: str | None,
    key: SigningKey,
    origin: str,
    record_type: str,
    time: datetime,
) -> bytes:
    """Extend ``total`` with a finished segment's leaf ``hashes`` and return its checkpoint file bytes."""
    levels = tree_levels(hashes) if hashes else None
    if levels is not None:
        total.extend_levels(levels)
    info = SegmentInfo(
        name=segment_name(index),
        sha256=jsonl_sha256,
        leaves_sha256=leaves_sha256,
        first=first,
        count=len(hashes),
        root=(levels[-1][0] if levels is not None else EMPTY_ROOT).hex(),
    )
    return _checkpoint_bytes(index, info, total.size, total.root().hex(), previous, key, origin, record_type, time)


def _checkpoint_bytes(
    index: int,
    segment: SegmentInfo,
    tree_size: int,
    root: str,
    previous: str | None,
    key: SigningKey,
    origin: str,
    record_type: str,
    time: datetime,
) -> bytes:
    """The checkpoint file of ``segment`` (DSSE envelope of the signed body), the tree then of ``tree_size`` leaves."""
    body = CheckpointBody(
        format=LOG_FORMAT,
        origin=origin,
        record_type=record_type,
        index=index,
        segment=segment,
        tree_size=tree_size,
        root=root,
        previous=previous,
        time=time,
        key_id=key.key_id,
    )
    return envelope_bytes(sign_envelope(checkpoint_payload(body), CHECKPOINT_PAYLOAD_TYPE, key))
