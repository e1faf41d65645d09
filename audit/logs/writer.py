"""Seal canonical records into a segmented, Merkle-hashed, signed log directory.

What it does: streams records (canonical JSON bytes, one per line) into segment
files of at most ``segment_size`` records, writes each segment's leaf-hash
sidecar, and after each segment a DSSE-signed checkpoint chained to the previous
one (layout and bytes: ``docs/log-format.md``). Everything is written into a
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
record) in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
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
from audit.logs.merkle import EMPTY_ROOT, TreeBuilder, leaf_hash, tree_levels
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


class _OpenSegment:
    """Files, running digests, leaf hashes and record ids of the segment being written."""

    def __init__(self, root: Path, index: int, first: int) -> None:
        self.index = index
        self.first = first
        self.hashes: list[bytes] = []
        self.ids: list[tuple[int, str]] = []
        """``(line, id)`` of the records that carry an id."""
        self.jsonl_sha = hashlib.sha256()
        self.leaves_sha = hashlib.sha256()
        self.jsonl_path = root / segment_name(index)
        self.leaves_path = root / leaves_name(index)
        with _writing(self.jsonl_path):
            self.jsonl: BinaryIO = self.jsonl_path.open("xb")
        with _writing(self.leaves_path):
            self.leaves: BinaryIO = self.leaves_path.open("xb")

    @property
    def count(self) -> int:
        return len(self.hashes)

    def add(self, record: bytes) -> None:
        line = record + b"\n"
        leaf = leaf_hash(record)
        with _writing(self.jsonl_path):
            self.jsonl.write(line)
        with _writing(self.leaves_path):
            self.leaves.write(leaf)
        self.jsonl_sha.update(line)
        self.leaves_sha.update(leaf)
        self.hashes.append(leaf)
        found = record_id(record)
        if found is not None:
            self.ids.append((len(self.hashes), found))

    def close(self) -> None:
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


@dataclass
class _Sealing:
    """What one seal writes into its staging directory, and how."""

    root: Path
    key: SigningKey
    origin: str
    record_type: str
    segment_size: int
    time: datetime
    index: IdIndex

    def write(self, records: Iterable[bytes]) -> TreeBuilder:
        """Write every segment and checkpoint of ``records``; return the whole tree."""
        total = TreeBuilder()
        previous: str | None = None
        segments = 0
        segment: _OpenSegment | None = None
        try:
            for number, record in enumerate(records, start=1):
                _check_record(number, record)
                if segment is None:
                    if segments >= MAX_SEGMENTS:
                        raise InputError(f"too many segments (more than {MAX_SEGMENTS})")
                    segment = _OpenSegment(self.root, segments, total.size)
                segment.add(record)
                if segment.count == self.segment_size:
                    previous = self._finish(segment, total, previous)
                    segments += 1
                    segment = None
            if segment is not None:
                previous = self._finish(segment, total, previous)
        finally:
            if segment is not None:
                segment.abort()
        return total

    def write_empty(self, total: TreeBuilder) -> None:
        """The one empty segment and checkpoint (tree size 0) of a log sealed from no records."""
        self._finish(_OpenSegment(self.root, 0, 0), total, None)

    def _finish(self, segment: _OpenSegment, total: TreeBuilder, previous: str | None) -> str:
        self.index.add((segment.first + line - 1, found, segment.index, line) for line, found in segment.ids)
        return _finish(self.root, segment, total, previous, self.key, self.origin, self.record_type, self.time)


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
    out = Path(out)
    if segment_size < 1:
        raise InputError(f"segment_size must be at least 1, got {segment_size}")
    time = _seal_time(time)
    if keyring is not None:
        require_signing_key_valid(keyring, key, time, purpose_for_record_type(record_type))
    _check_out(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output: {exc.strerror}", path=out) from None
    with DirectoryLock(out) as lock:
        sweep_staging(lock, STAGING_SUFFIX)
        _check_out(out)
        return _seal_locked(
            records,
            out=out,
            key=key,
            origin=origin,
            record_type=record_type,
            segment_size=segment_size,
            time=time,
            source=source,
            keep_index=keep_index,
            allow_empty=allow_empty,
        )


def _seal_locked(
    records: Iterable[bytes],
    *,
    out: Path,
    key: SigningKey,
    origin: str,
    record_type: str,
    segment_size: int,
    time: datetime,
    source: str | Path | None,
    keep_index: bool,
    allow_empty: bool,
) -> SealResult:
    tmp = make_staging(out, STAGING_SUFFIX)
    index: IdIndex | None = None
    try:
        with _writing(tmp):
            (tmp / SEGMENTS_DIR).mkdir()
            (tmp / CHECKPOINTS_DIR).mkdir()
        index = IdIndex(tmp / INDEX_FILE if keep_index else None)
        index.begin()
        sealing = _Sealing(tmp, key, origin, record_type, segment_size, time, index)
        total = sealing.write(records)
        if total.size == 0 and not allow_empty:
            raise InputError("no records to seal", path=out)
        if total.size == 0:  # an empty log: one empty segment whose checkpoint signs tree size 0
            sealing.write_empty(total)
        duplicate = _duplicate_error(index, source)
        if duplicate is not None:
            raise duplicate
        root = total.root().hex()
        index.commit(total.size, root)
        index.close()
        fsync_dir(tmp / SEGMENTS_DIR)
        fsync_dir(tmp / CHECKPOINTS_DIR)
        unmark_staging(tmp)
        try:
            os.replace(tmp, out)
        except OSError as exc:
            raise InputError(f"cannot create output: {exc.strerror}", path=out) from None
        fsync_dir(out.parent)
        segments = (total.size + segment_size - 1) // segment_size or 1  # an empty log has one empty segment
        return SealResult(tree_size=total.size, root=root, segments=segments, out=out)
    except BaseException:
        if index is not None:
            index.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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
    body = CheckpointBody(
        format=LOG_FORMAT,
        origin=origin,
        record_type=record_type,
        index=index,
        segment=SegmentInfo(
            name=segment_name(index),
            sha256=jsonl_sha256,
            leaves_sha256=leaves_sha256,
            first=first,
            count=len(hashes),
            root=(levels[-1][0] if levels is not None else EMPTY_ROOT).hex(),
        ),
        tree_size=total.size,
        root=total.root().hex(),
        previous=previous,
        time=time,
        key_id=key.key_id,
    )
    return envelope_bytes(sign_envelope(checkpoint_payload(body), CHECKPOINT_PAYLOAD_TYPE, key))


def _finish(
    root: Path,
    segment: _OpenSegment,
    total: TreeBuilder,
    previous: str | None,
    key: SigningKey,
    origin: str,
    record_type: str,
    time: datetime,
) -> str:
    """Close ``segment``, write its signed checkpoint; return the checkpoint file's SHA-256 hex."""
    segment.close()
    data = signed_checkpoint(
        index=segment.index,
        first=segment.first,
        hashes=segment.hashes,
        jsonl_sha256=segment.jsonl_sha.hexdigest(),
        leaves_sha256=segment.leaves_sha.hexdigest(),
        total=total,
        previous=previous,
        key=key,
        origin=origin,
        record_type=record_type,
        time=time,
    )
    path = root / checkpoint_name(segment.index)
    with _writing(path), path.open("xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return hashlib.sha256(data).hexdigest()
