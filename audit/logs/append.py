"""Extend an existing sealed log with new segments, so that a crash can be resumed and a rerun is harmless.

What it does: :func:`prepare_append` takes the log's lock (:mod:`audit.locking`:
a concurrent seal or append of the same log fails with
:class:`~audit.errors.LockedError`, it never interleaves), verifies the existing
log against the keyring, rebuilds its running Merkle tree and brings its
event-id index (:mod:`audit.logs.index`) up to date. :func:`append` validates
every new record (a first pass: nothing is written if one is bad, or if a record
id repeats within the input or is already in the log), then writes

1. the journal ``append-journal.json`` in the log directory (created exclusively),
   naming the input by its SHA-256, its record count, the size the log had and
   the segment size;
2. per new segment, its ``.jsonl`` and ``.leaves`` files, then its checkpoint,
   each through a ``.partial`` temporary file, fsync and rename. The checkpoint
   is the commit point: a segment without one is not part of the log;
3. and removes the journal. The lock is released when :func:`append` returns or
   fails (or with :meth:`AppendPlan.release`).

A crash leaves the journal behind; ``log verify`` then reports
``append-interrupted`` with what was done. Running the same append again (same
input bytes) removes what no checkpoint covers — only the files that journal's
append would have written, and only while holding the lock, so they cannot be a
live run's — skips the records already checkpointed and carries on with the same
segmentation: nothing is lost and nothing is written twice. Running it again after
it *succeeded* adds nothing: an input whose records are exactly the log's last
records (same leaf hashes, in order) was already appended. New checkpoints chain
to the log's last one and extend its tree, so the old checkpoint is a prefix of
the new (consistency proofs hold).

What it does not do: it does not parse or validate records (the caller supplies
canonical bytes, through a factory called once per pass); it never rewrites an
existing segment (every append starts a new segment, even if the last one is
short); it does not protect against writers that ignore the lock and journal.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from audit.errors import InputError, IntegrityError
from audit.fsio import fsync_dir
from audit.locking import DirectoryLock
from audit.logs.checkpoint import (
    CHECKPOINTS_DIR,
    JOURNAL_FILE,
    JOURNAL_FORMAT,
    MAX_SEGMENTS,
    PARTIAL_FILE_RE,
    PARTIAL_SUFFIX,
    SEGMENT_FILE_RE,
    SEGMENTS_DIR,
    AppendJournal,
    SegmentInfo,
    checkpoint_name,
    leaves_name,
    segment_name,
)
from audit.logs.index import IdIndex, IndexSync, rebuild_index, record_id
from audit.logs.merkle import TreeBuilder, leaf_hash, leaf_hashes
from audit.logs.verify import LogVerifier, describe_problems, read_journal
from audit.logs.writer import signed_checkpoint
from audit.reading import read_bytes
from audit.signing.keys import Keyring, SigningKey, purpose_for_record_type, require_signing_key_valid

RecordSource = Callable[[], Iterable[bytes]]
"""Returns a fresh iterator over the records to append (called twice: validate, then write)."""

_BATCH = 10000


@dataclass
class AppendPlan:
    """A verified, locked log ready to be extended, and the interrupted append to resume, if any."""

    logdir: Path
    origin: str
    record_type: str
    tree_size: int
    next_index: int
    previous: str
    """SHA-256 hex of the last checkpoint file (the next checkpoint's ``previous``)."""
    builder: TreeBuilder
    source_name: str
    source_sha256: str
    journal: AppendJournal | None
    segments: list[SegmentInfo] = field(default_factory=list)
    """What the verified checkpoints say about each segment, in order."""
    index: IdIndex | None = None
    lock: DirectoryLock | None = None

    @property
    def skip(self) -> int:
        """Input records already checkpointed by the interrupted append being resumed."""
        return self.tree_size - self.journal.start_tree_size if self.journal is not None else 0

    def release(self) -> None:
        """Close the index (dropping uncommitted rows) and release the log's lock; idempotent."""
        index, self.index = self.index, None
        if index is not None:
            index.rollback()
            index.close()
        lock, self.lock = self.lock, None
        if lock is not None:
            lock.release()


@dataclass(frozen=True)
class AppendResult:
    """Outcome of :func:`append`."""

    tree_size: int
    root: str
    segments_added: int
    records_added: int
    resumed: bool
    skipped: int
    """Records of the input that an interrupted run had already checkpointed."""
    unchanged: bool = False
    """The input was already appended (it is the log's tail): nothing was added."""


def journal_bytes(journal: AppendJournal) -> bytes:
    """The bytes of ``append-journal.json`` (plain JSON: the journal is not signed)."""
    return orjson.dumps(journal.model_dump(mode="json")) + b"\n"


def _verify(verifier: LogVerifier, index: IdIndex) -> tuple[TreeBuilder, list[SegmentInfo], IndexSync]:
    """Run the verification; build the tree, note each segment, and sync the index on the way."""
    sync = IndexSync(index)
    builder = TreeBuilder()
    segments: list[SegmentInfo] = []
    for segment in verifier.segments():
        builder.extend(leaf_hashes(segment.records))
        sync.feed(segment)
        segments.append(segment.body.segment)
    return builder, segments, sync


def _check_journal(logdir: Path, journal: AppendJournal | None, source_sha256: str, tree_size: int) -> None:
    if journal is None:
        return
    if journal.source_sha256 != source_sha256:
        raise InputError(
            f"an interrupted append of {journal.source_name} (sha256 {journal.source_sha256}) is pending: "
            f"run that append again to finish it first",
            path=logdir,
        )
    if not 0 <= tree_size - journal.start_tree_size <= journal.records:
        raise IntegrityError(
            f"{JOURNAL_FILE} (start size {journal.start_tree_size}, {journal.records} "
            f"records) does not match the log size {tree_size}",
            path=logdir,
        )


def prepare_append(
    logdir: Path, keyring: Keyring, *, source_name: str, source_sha256: str, keep_index: bool = False
) -> AppendPlan:
    """Lock and verify ``logdir`` and plan an append of the input identified by ``source_sha256``.

    The plan holds the log's lock until :func:`append` returns (or :meth:`AppendPlan.release`).
    Raises :class:`~audit.errors.LockedError` if another run holds it,
    :class:`IntegrityError` if the log does not verify (the traces of an
    interrupted append are the only problem allowed), :class:`InputError` if it
    has no verified checkpoint, or if an interrupted append of *another* input is
    pending (finish that one first). With ``keep_index`` the event-id index is kept
    in the log directory (``event-ids.sqlite``), else a temporary one is used.
    """
    logdir = Path(logdir)
    verifier = LogVerifier(logdir, keyring)
    lock = DirectoryLock(logdir).acquire()
    index: IdIndex | None = None
    try:
        journal = read_journal(logdir)
        index = IdIndex.kept(logdir) if keep_index else IdIndex()
        builder, segments, sync = _verify(verifier, index)
        report = verifier.report()
        problems = [p for p in report.problems if not (journal is not None and p.code == "append-interrupted")]
        if problems:
            raise IntegrityError(
                f"refusing to append: the log does not verify ({describe_problems(problems)})", path=logdir
            )
        if (
            report.root is None
            or report.origin is None
            or report.record_type is None
            or report.last_checkpoint_sha256 is None
        ):
            raise InputError("no verified checkpoint: not a sealed log (use `log seal` to create one)", path=logdir)
        _check_journal(logdir, journal, source_sha256, report.tree_size)
        if not sync.matches:
            rebuild_index(index, logdir, keyring, tree_size=report.tree_size, root=report.root)
        index.commit(report.tree_size, report.root)
    except BaseException:
        if index is not None:
            index.rollback()
            index.close()
        lock.release()
        raise
    return AppendPlan(
        logdir=logdir,
        origin=report.origin,
        record_type=report.record_type,
        tree_size=report.tree_size,
        next_index=len(segments),
        previous=report.last_checkpoint_sha256,
        builder=builder,
        source_name=source_name,
        source_sha256=source_sha256,
        journal=journal,
        segments=segments,
        index=index,
        lock=lock,
    )


def _write_file(path: Path, data: bytes) -> None:
    """Write ``path`` through its ``.partial`` temporary name; never replaces an existing file."""
    tmp = path.parent / f".{path.name}{PARTIAL_SUFFIX}"
    try:
        tmp.unlink(missing_ok=True)  # a leftover (or a planted symlink) is never written through
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(tmp, flags, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path, follow_symlinks=False)
    except FileExistsError:
        raise IntegrityError("refusing to overwrite an existing file", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", path=path) from None
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def _journal_indexes(journal: AppendJournal) -> range:
    """The segment indexes the journal's append writes."""
    count = -(-journal.records // journal.segment_size)
    return range(journal.start_index, journal.start_index + count)


def _remove_uncommitted(plan: AppendPlan, journal: AppendJournal) -> None:
    """Delete what the interrupted append of ``journal`` wrote that no checkpoint covers.

    Only files that append would have written are removed (its segments at or past
    the first index without a checkpoint, and its ``.partial`` temporaries); any
    other such file is an IntegrityError naming it, and nothing is removed. The
    caller holds the lock, so the run that wrote them is dead.
    """
    named = _journal_indexes(journal)
    stale: list[Path] = []
    for directory in (plan.logdir / SEGMENTS_DIR, plan.logdir / CHECKPOINTS_DIR):
        for entry in sorted(directory.iterdir()):
            partial = PARTIAL_FILE_RE.match(entry.name)
            match = partial or (SEGMENT_FILE_RE.match(entry.name) if directory.name == SEGMENTS_DIR else None)
            if match is None or (partial is None and int(match.group(1)) < plan.next_index):
                continue
            if int(match.group(1)) not in named:
                raise IntegrityError(
                    f"{directory.name}/{entry.name} is not a file of the interrupted append (its journal names "
                    f"segments {named.start}..{named.stop - 1}): refusing to remove it; move it away by hand",
                    path=plan.logdir,
                )
            stale.append(entry)
    for entry in stale:
        try:
            entry.unlink()
        except OSError as exc:
            raise InputError(f"cannot remove: {exc.strerror or exc}", path=entry) from None
    fsync_dir(plan.logdir / SEGMENTS_DIR)
    fsync_dir(plan.logdir / CHECKPOINTS_DIR)


def _check_record(number: int, record: bytes) -> None:
    if not record:
        raise InputError(f"record {number} is empty")
    if b"\n" in record:
        raise InputError(f"record {number} contains a newline")


@dataclass(frozen=True)
class _Input:
    """What the validation pass learnt about the input: record count and the digest of its leaf hashes."""

    count: int
    leaves_sha256: str


def _scan_input(records: RecordSource, index: IdIndex) -> _Input:
    """Validate every record and stage its id in ``index``."""
    digest = hashlib.sha256()
    index.clear_input()
    batch: list[tuple[int, str]] = []
    count = 0
    for count, record in enumerate(records(), start=1):
        _check_record(count, record)
        digest.update(leaf_hash(record))
        found = record_id(record)
        if found is not None:
            batch.append((count, found))
            if len(batch) == _BATCH:
                index.add_input(batch)
                batch = []
    index.add_input(batch)
    return _Input(count, digest.hexdigest())


def _is_tail(plan: AppendPlan, given: _Input) -> bool:
    """Whether the log's last ``given.count`` leaves are the input's (so it was appended already)."""
    start = plan.tree_size - given.count
    if start < 0:
        return False
    digest = hashlib.sha256()
    for info in plan.segments:
        if info.first + info.count <= start:
            continue
        raw = read_bytes(plan.logdir / (info.name.removesuffix(".jsonl") + ".leaves"), follow_symlinks=False)
        if hashlib.sha256(raw).hexdigest() != info.leaves_sha256:
            return False  # changed since it was verified: not proof of anything
        digest.update(raw[32 * max(start - info.first, 0) :])
    return digest.hexdigest() == given.leaves_sha256


def _check_ids(plan: AppendPlan, index: IdIndex) -> None:
    """InputError naming the first input record whose id repeats in the input or is already in the log."""
    repeated = index.input_duplicate()
    if repeated is not None:
        record, first, number = repeated
        raise InputError(f"duplicate id {record!r} (first at line {first})", path=plan.source_name, line=number)
    start = plan.journal.start_tree_size if plan.journal is not None else plan.tree_size
    clash = index.input_clash(resumed=plan.skip, start=start)
    if clash is not None:
        record, number, where = clash
        raise InputError(
            f"id {record!r} is already in the log at {where.describe()}", path=plan.source_name, line=number
        )


def _segment(plan: AppendPlan, index: int, records: list[bytes], key: SigningKey, time: datetime) -> None:
    """Write one new segment and then, as its commit point, its checkpoint; index its ids."""
    if index >= MAX_SEGMENTS:
        raise InputError(f"too many segments (more than {MAX_SEGMENTS})", path=plan.logdir)
    jsonl = b"".join(record + b"\n" for record in records)
    hashes = leaf_hashes(records)
    sidecar = b"".join(hashes)
    first = plan.builder.size
    _write_file(plan.logdir / segment_name(index), jsonl)
    _write_file(plan.logdir / leaves_name(index), sidecar)
    data = signed_checkpoint(
        index=index,
        first=first,
        hashes=hashes,
        jsonl_sha256=hashlib.sha256(jsonl).hexdigest(),
        leaves_sha256=hashlib.sha256(sidecar).hexdigest(),
        total=plan.builder,
        previous=plan.previous,
        key=key,
        origin=plan.origin,
        record_type=plan.record_type,
        time=time,
    )
    _write_file(plan.logdir / checkpoint_name(index), data)
    plan.previous = hashlib.sha256(data).hexdigest()
    plan.tree_size = plan.builder.size
    if plan.index is not None:
        ids = ((first + line - 1, record_id(record), index, line) for line, record in enumerate(records, start=1))
        plan.index.add((leaf, found, segment, line) for leaf, found, segment, line in ids if found is not None)


def _append_time(time: datetime | None) -> datetime:
    if time is None:
        return datetime.now(UTC).replace(microsecond=0)
    if time.tzinfo is None or time.utcoffset() is None:
        raise InputError("append time must be timezone-aware")
    return time.astimezone(UTC)


def append(
    plan: AppendPlan,
    records: RecordSource,
    *,
    key: SigningKey,
    keyring: Keyring,
    segment_size: int = 10000,
    time: datetime | None = None,
) -> AppendResult:
    """Append the records from ``records()`` to ``plan.logdir`` (see the module docstring).

    ``time`` (timezone-aware; default now, whole seconds) goes into the new
    checkpoints; ``key`` must be valid in ``keyring`` at that time
    (:class:`~audit.errors.KeyMaterialError` otherwise, before anything is
    written). When resuming, the interrupted run's segment size is used. An input
    that is already the log's tail adds nothing (``unchanged``). A record id that
    repeats in the input or is already in the log is an InputError naming the
    input line (and where the id is), before anything is written. The plan's lock
    is released when this returns or raises.
    """
    try:
        return _append(plan, records, key=key, keyring=keyring, segment_size=segment_size, time=_append_time(time))
    finally:
        plan.release()


def _append(
    plan: AppendPlan, records: RecordSource, *, key: SigningKey, keyring: Keyring, segment_size: int, time: datetime
) -> AppendResult:
    if plan.lock is None or plan.index is None:
        raise RuntimeError("this append plan was released; call prepare_append again")
    require_signing_key_valid(keyring, key, time, purpose_for_record_type(plan.record_type))
    journal = plan.journal
    size = journal.segment_size if journal is not None else segment_size
    if size < 1:
        raise InputError(f"segment_size must be at least 1, got {size}")
    plan.index.begin()
    given = _scan_input(records, plan.index)
    if journal is None:
        if given.count == 0:
            raise InputError("no records to append", path=plan.logdir)
        if _is_tail(plan, given):
            return AppendResult(
                tree_size=plan.tree_size,
                root=plan.builder.root().hex(),
                segments_added=0,
                records_added=0,
                resumed=False,
                skipped=0,
                unchanged=True,
            )
    elif given.count != journal.records:
        raise InputError(
            f"the input holds {given.count} records, the interrupted append had {journal.records}", path=plan.logdir
        )
    _check_ids(plan, plan.index)
    if journal is None:
        journal = AppendJournal(
            format=JOURNAL_FORMAT,
            source_name=plan.source_name,
            source_sha256=plan.source_sha256,
            records=given.count,
            start_tree_size=plan.tree_size,
            start_index=plan.next_index,
            segment_size=size,
            started=time,
        )
        _write_file(plan.logdir / JOURNAL_FILE, journal_bytes(journal))
    skipped = plan.skip
    _remove_uncommitted(plan, journal)
    index = _write_segments(plan, records, skipped, size, key, time)
    plan.index.commit(plan.builder.size, plan.builder.root().hex())
    try:
        (plan.logdir / JOURNAL_FILE).unlink()
    except OSError as exc:
        raise InputError(f"cannot remove: {exc.strerror or exc}", path=plan.logdir / JOURNAL_FILE) from None
    fsync_dir(plan.logdir)
    return AppendResult(
        tree_size=plan.builder.size,
        root=plan.builder.root().hex(),
        segments_added=index - plan.next_index,
        records_added=given.count - skipped,
        resumed=plan.journal is not None,
        skipped=skipped,
    )


def _write_segments(
    plan: AppendPlan, records: RecordSource, skipped: int, size: int, key: SigningKey, time: datetime
) -> int:
    """Write the input past its first ``skipped`` records in segments of ``size``; return the next index."""
    index, pending = plan.next_index, []
    for number, record in enumerate(records()):
        if number < skipped:
            continue
        pending.append(record)
        if len(pending) == size:
            _segment(plan, index, pending, key, time)
            index, pending = index + 1, []
    if pending:
        _segment(plan, index, pending, key, time)
        index += 1
    return index
