"""Extend an existing sealed log with new segments, so that a crash can be resumed.

What it does: :func:`prepare_append` verifies the existing log against the
keyring and rebuilds its running Merkle tree; :func:`append` validates every new
record (a first pass: nothing is written if one is bad), then writes

1. the journal ``append-journal.json`` in the log directory (created exclusively,
   so a second append cannot start while one is pending), naming the input by its
   SHA-256, its record count, the size the log had and the segment size;
2. per new segment, its ``.jsonl`` and ``.leaves`` files, then its checkpoint,
   each through a ``.partial`` temporary file, fsync and rename. The checkpoint
   is the commit point: a segment without one is not part of the log;
3. and removes the journal.

A crash leaves the journal behind; ``log verify`` then reports
``append-interrupted`` with what was done. Running the same append again (same
input bytes) removes what no checkpoint covers, skips the records already
checkpointed and carries on with the same segmentation: nothing is lost and
nothing is written twice. New checkpoints chain to the log's last one and extend
its tree, so the old checkpoint is a prefix of the new (consistency proofs hold).

What it does not do: it does not parse or validate records (the caller supplies
canonical bytes, through a factory called once per pass); it never rewrites an
existing segment (every append starts a new segment, even if the last one is
short); it does not protect against writers that ignore the journal.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from audit.errors import InputError, IntegrityError
from audit.fsio import fsync_dir
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
    checkpoint_name,
    leaves_name,
    segment_name,
)
from audit.logs.merkle import TreeBuilder, leaf_hashes
from audit.logs.verify import LogVerifier, describe_problems, read_journal
from audit.logs.writer import signed_checkpoint
from audit.signing.keys import Keyring, SigningKey, purpose_for_record_type, require_signing_key_valid

RecordSource = Callable[[], Iterable[bytes]]
"""Returns a fresh iterator over the records to append (called twice: validate, then write)."""


@dataclass
class AppendPlan:
    """A verified log ready to be extended, and the interrupted append to resume, if any."""

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

    @property
    def skip(self) -> int:
        """Input records already checkpointed by the interrupted append being resumed."""
        return self.tree_size - self.journal.start_tree_size if self.journal is not None else 0


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


def journal_bytes(journal: AppendJournal) -> bytes:
    """The bytes of ``append-journal.json`` (plain JSON: the journal is not signed)."""
    return orjson.dumps(journal.model_dump(mode="json")) + b"\n"


def prepare_append(logdir: Path, keyring: Keyring, *, source_name: str, source_sha256: str) -> AppendPlan:
    """Verify ``logdir`` and plan an append of the input identified by ``source_sha256``.

    Raises :class:`IntegrityError` if the log does not verify (the traces of an
    interrupted append are the only problem allowed), :class:`InputError` if it
    has no verified checkpoint, or if an interrupted append of *another* input is
    pending (finish that one first).
    """
    logdir = Path(logdir)
    journal = read_journal(logdir) if logdir.is_dir() else None
    verifier = LogVerifier(logdir, keyring)
    builder = TreeBuilder()
    next_index = 0
    for segment in verifier.segments():
        builder.extend(leaf_hashes(segment.records))
        next_index = segment.index + 1
    report = verifier.report()
    problems = [p for p in report.problems if not (journal is not None and p.code == "append-interrupted")]
    if problems:
        raise IntegrityError(
            f"refusing to append: the log does not verify ({describe_problems(problems)})", path=logdir)
    if report.origin is None or report.record_type is None or report.last_checkpoint_sha256 is None:
        raise InputError("no verified checkpoint: not a sealed log (use `log seal` to create one)", path=logdir)
    if journal is not None:
        if journal.source_sha256 != source_sha256:
            raise InputError(
                f"an interrupted append of {journal.source_name} (sha256 {journal.source_sha256}) is pending: "
                f"run that append again to finish it first", path=logdir)
        if not 0 <= report.tree_size - journal.start_tree_size <= journal.records:
            raise IntegrityError(f"{JOURNAL_FILE} (start size {journal.start_tree_size}, {journal.records} "
                                 f"records) does not match the log size {report.tree_size}", path=logdir)
    return AppendPlan(
        logdir=logdir, origin=report.origin, record_type=report.record_type, tree_size=report.tree_size,
        next_index=next_index, previous=report.last_checkpoint_sha256, builder=builder,
        source_name=source_name, source_sha256=source_sha256, journal=journal,
    )


def _write_file(path: Path, data: bytes) -> None:
    """Write ``path`` through its ``.partial`` temporary name; never replaces an existing file."""
    tmp = path.parent / f".{path.name}{PARTIAL_SUFFIX}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
    except FileExistsError:
        raise IntegrityError("refusing to overwrite an existing file", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", path=path) from None
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def _remove_uncommitted(logdir: Path, next_index: int) -> None:
    """Delete what an interrupted append wrote that no checkpoint covers."""
    for directory in (logdir / SEGMENTS_DIR, logdir / CHECKPOINTS_DIR):
        for entry in directory.iterdir():
            match = SEGMENT_FILE_RE.match(entry.name)
            stale = PARTIAL_FILE_RE.match(entry.name) is not None or (
                directory.name == SEGMENTS_DIR and match is not None and int(match.group(1)) >= next_index)
            if stale:
                entry.unlink()
        fsync_dir(directory)


def _check_record(number: int, record: bytes) -> None:
    if not record:
        raise InputError(f"record {number} is empty")
    if b"\n" in record:
        raise InputError(f"record {number} contains a newline")


def _segment(plan: AppendPlan, index: int, records: list[bytes], key: SigningKey, time: datetime) -> None:
    """Write one new segment and then, as its commit point, its checkpoint."""
    if index >= MAX_SEGMENTS:
        raise InputError(f"too many segments (more than {MAX_SEGMENTS})", path=plan.logdir)
    jsonl = b"".join(record + b"\n" for record in records)
    hashes = leaf_hashes(records)
    sidecar = b"".join(hashes)
    _write_file(plan.logdir / segment_name(index), jsonl)
    _write_file(plan.logdir / leaves_name(index), sidecar)
    data = signed_checkpoint(
        index=index, first=plan.builder.size, hashes=hashes, jsonl_sha256=hashlib.sha256(jsonl).hexdigest(),
        leaves_sha256=hashlib.sha256(sidecar).hexdigest(), total=plan.builder, previous=plan.previous, key=key,
        origin=plan.origin, record_type=plan.record_type, time=time,
    )
    _write_file(plan.logdir / checkpoint_name(index), data)
    plan.previous = hashlib.sha256(data).hexdigest()
    plan.tree_size = plan.builder.size


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
    written). When resuming, the interrupted run's segment size is used.
    """
    if time is None:
        time = datetime.now(UTC).replace(microsecond=0)
    elif time.tzinfo is None or time.utcoffset() is None:
        raise InputError("append time must be timezone-aware")
    time = time.astimezone(UTC)
    require_signing_key_valid(keyring, key, time, purpose_for_record_type(plan.record_type))
    journal = plan.journal
    size = journal.segment_size if journal is not None else segment_size
    if size < 1:
        raise InputError(f"segment_size must be at least 1, got {size}")
    count = 0
    for count, record in enumerate(records(), start=1):
        _check_record(count, record)
    if journal is None:
        if count == 0:
            raise InputError("no records to append", path=plan.logdir)
        journal = AppendJournal(
            format=JOURNAL_FORMAT, source_name=plan.source_name, source_sha256=plan.source_sha256,
            records=count, start_tree_size=plan.tree_size, start_index=plan.next_index, segment_size=size,
            started=time,
        )
        _write_file(plan.logdir / JOURNAL_FILE, journal_bytes(journal))
    elif count != journal.records:
        raise InputError(f"the input holds {count} records, the interrupted append had {journal.records}",
                         path=plan.logdir)
    skipped = plan.skip
    _remove_uncommitted(plan.logdir, plan.next_index)
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
    (plan.logdir / JOURNAL_FILE).unlink()
    fsync_dir(plan.logdir)
    return AppendResult(
        tree_size=plan.builder.size, root=plan.builder.root().hex(), segments_added=index - plan.next_index,
        records_added=count - skipped, resumed=plan.journal is not None, skipped=skipped,
    )
