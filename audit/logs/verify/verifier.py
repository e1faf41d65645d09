"""The verifier: runs the scan and the three check registries over one log directory, in order.

What it does: :class:`LogVerifier` scans the directory (listing, append journal,
checkpoint digests), runs :data:`~audit.logs.verify.layout.LAYOUT_CHECKS`, then for
each checkpoint index in order runs
:data:`~audit.logs.verify.segment.SEGMENT_CHECKS` and yields the segment if it
verified, then runs :data:`~audit.logs.verify.final.FINAL_CHECKS` and builds the
:class:`VerificationReport`. :func:`verify_log` does all of it and keeps only the
report; :func:`read_journal` reads the append journal (also for
:mod:`audit.logs.append`).

Deferred content (``defer_content=True``, for parallel replay): the verifier
checks everything but the segment files themselves - checkpoints, chain, signed
leaves, segment and cumulative roots, completeness - and yields segments without
their lines. Whoever reads a segment file must read it with
:func:`read_segment_file` (regular file, capped size) and check it with
:func:`segment_lines` (digest, count, leaf hashes equal to the signed ones, and
canonical records) and report a mismatch with :meth:`LogVerifier.content_mismatch`. If anything is wrong,
:meth:`LogVerifier.report` re-verifies the whole log in full so the problems listed
are exactly those of a normal verification; it never reports a flagged log as ok.

Deferred canonical checks (``defer_canonical=True``, for a replay that decodes every
record anyway): the verifier checks everything but whether each record is its RFC 8785
form; the consumer checks that as it decodes the record, before using it, and flags a
segment holding one that is not with :meth:`LogVerifier.content_mismatch`. The report
is then settled as for deferred content.

Files: every file is read through :mod:`audit.reading` with a cap (see
:meth:`LogState.read_bytes`); ``segments/`` and ``checkpoints/`` must be real
directories, not symlinks (a symlink is an ``unexpected-file`` and is not listed).

What it does not do: it holds no check of its own (the registries do), and the
scan is its only I/O besides what the checks read through the state object.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from audit.errors import InputError, IntegrityError
from audit.logs.checkpoint import (
    CHECKPOINT_FILE_RE,
    CHECKPOINTS_DIR,
    JOURNAL_FILE,
    MAX_CHECKPOINT_BYTES,
    MAX_JOURNAL_BYTES,
    SEGMENT_FILE_RE,
    SEGMENTS_DIR,
    AppendJournal,
    CheckpointBody,
    SegmentInfo,
    checkpoint_name,
    max_segment_bytes,
    parse_checkpoint_payload,
    segment_name,
)
from audit.logs.merkle import leaf_hashes
from audit.logs.trusted import SignedCheckpoint
from audit.logs.verify.final import FINAL_CHECKS
from audit.logs.verify.layout import LAYOUT_CHECKS
from audit.logs.verify.records import non_canonical_lines
from audit.logs.verify.segment import SEGMENT_CHECKS
from audit.logs.verify.state import (
    MAX_LINE_PROBLEMS,
    FileTooLarge,
    LogState,
    Problem,
    SegmentContext,
    VerificationReport,
    VerifiedSegment,
)
from audit.reading import read_bytes
from audit.records import describe_validation_error
from audit.signing.dsse import parse_envelope
from audit.signing.keys import Keyring

# --------------------------------------------------------------------------- scan


def _claimed_body(raw: bytes) -> CheckpointBody | None:
    """The body a checkpoint file carries, without authenticating it (for hints only)."""
    try:
        envelope = parse_envelope(raw, path="", integrity=True)
        return parse_checkpoint_payload(envelope.payload_bytes())
    except (IntegrityError, ValidationError, ValueError):
        return None


def read_journal(logdir: Path) -> AppendJournal | None:
    """The append journal of ``logdir``, None if there is none; IntegrityError naming it if unreadable.

    Unreadable includes not a regular file, a symlink and more than :data:`MAX_JOURNAL_BYTES`.
    """
    path = Path(logdir) / JOURNAL_FILE
    if not os.path.lexists(path):
        return None
    try:
        raw = read_bytes(path, follow_symlinks=False, max_bytes=MAX_JOURNAL_BYTES)
        return AppendJournal.model_validate_json(raw, strict=True)
    except InputError as exc:
        raise IntegrityError(exc.reason, path=path) from None
    except ValidationError as exc:
        raise IntegrityError(describe_validation_error(exc), path=path) from None


def _read_journal(log: LogState) -> None:
    try:
        log.journal = read_journal(log.logdir)
    except IntegrityError as exc:
        log.journal_error = exc.reason


def _listable(log: LogState, directory: Path) -> bool:
    """Whether ``directory`` is a real directory to list; a symlink or non-directory is an odd entry."""
    if directory.is_symlink():
        log.other_files.append(f"{directory.name} (a symlink, not followed)")
        return False
    if directory.exists() and not directory.is_dir():
        log.other_files.append(f"{directory.name} (not a directory)")
        return False
    return directory.is_dir()


def _list_directories(log: LogState) -> None:
    """Fill the directory listing: checkpoint indexes, ``segments/`` entries, odd entries, ``end``."""
    checkpoints = log.logdir / CHECKPOINTS_DIR
    segments = log.logdir / SEGMENTS_DIR
    list_checkpoints, list_segments = _listable(log, checkpoints), _listable(log, segments)
    if list_checkpoints:
        for entry in sorted(checkpoints.iterdir()):
            match = CHECKPOINT_FILE_RE.match(entry.name)
            if match is None:
                log.other_files.append(f"{CHECKPOINTS_DIR}/{entry.name}")
            else:
                log.checkpoint_indexes.add(int(match.group(1)))
    if list_segments:
        for entry in sorted(segments.iterdir()):
            match = SEGMENT_FILE_RE.match(entry.name)
            index = int(match.group(1)) if match is not None else None
            log.segment_files[f"{SEGMENTS_DIR}/{entry.name}"] = index
    log.end = max(log.checkpoint_indexes) + 1 if log.checkpoint_indexes else 0


def _read_checkpoint_digests(log: LogState) -> None:
    """The digest of every numbered checkpoint file, and the segment digest each one claims."""
    for index in sorted(log.checkpoint_indexes):
        try:
            raw = log.read_bytes(checkpoint_name(index), MAX_CHECKPOINT_BYTES)
        except (OSError, InputError, FileTooLarge):
            continue  # reported when the segment checks read it
        log.checkpoint_digests[index] = hashlib.sha256(raw).hexdigest()
        body = _claimed_body(raw)
        if body is not None:
            log.claimed_segments.setdefault(body.segment.sha256, body.index)


def scan(log: LogState) -> None:
    """Fill the directory listing of ``log``, and read what is needed before the segments.

    That is the append journal, the digest of every numbered checkpoint file and
    the segment digest each one claims (used to recognise moved and replayed
    segments). OSError if a directory cannot be listed.
    """
    _list_directories(log)
    _read_journal(log)
    _read_checkpoint_digests(log)


# --------------------------------------------------------------------------- driver


def _sort_key(problem: Problem) -> tuple[bool, str, int]:
    return (problem.segment is None, problem.segment or "", problem.line or 0)


def _close_segment(ctx: SegmentContext) -> str | None:
    """Settle one segment after its checks; return its checkpoint file's SHA-256 hex (None if unread).

    Summarises line problems beyond :data:`MAX_LINE_PROBLEMS`, forgets the running
    tree unless the cumulative root verified, remembers the checkpoint for the
    chain, and moves the segment's problems to the log.
    """
    log = ctx.log
    if ctx.line_problems > MAX_LINE_PROBLEMS:
        ctx.problem(
            "event-modified",
            f"... and {ctx.line_problems - MAX_LINE_PROBLEMS} more changed line(s) in {ctx.name} not listed",
        )
    if not ctx.cumulative_ok:
        log.builder = None
    digest = hashlib.sha256(ctx.checkpoint_raw).hexdigest() if ctx.checkpoint_raw is not None else None
    log.previous = (ctx.index, digest) if digest is not None else None
    if log.defer_content and not ctx.problems and not ctx.cumulative_ok:
        ctx.problem("root-mismatch", f"{ctx.name} could not be verified from its signed leaves alone")
    log.problems.extend(ctx.problems)
    return digest


class LogVerifier:
    """Streaming verifier of one log directory.

    Iterate :meth:`segments` (once) to get the verified segments in index order,
    then call :meth:`report`. A missing or non-directory ``logdir`` raises
    :class:`InputError`; anything wrong inside it becomes a :class:`Problem`.
    ``record_type``, if given, is the record type every checkpoint must name.

    Pins (optional, both allowed): ``trusted_checkpoint``, an authenticated
    checkpoint of this log seen earlier (:func:`audit.logs.trusted.load_checkpoint`),
    detects tail truncation, rollback and equivocation; ``expected_size``, the
    number of records the log is known to hold at least, detects tail truncation.
    Without either the report's ``completeness`` is ``unproven``. ``now`` is the
    verifier's clock (default: the current time): a checkpoint dated more than
    :data:`~audit.logs.checkpoint.CLOCK_SKEW` after it is ``checkpoint-in-future``.
    """

    def __init__(
        self,
        logdir: Path,
        keyring: Keyring,
        *,
        record_type: str | None = None,
        trusted_checkpoint: SignedCheckpoint | None = None,
        expected_size: int | None = None,
        defer_content: bool = False,
        defer_canonical: bool = False,
        now: datetime | None = None,
    ):
        self.logdir = Path(logdir)
        if not self.logdir.exists():
            raise InputError("no such log directory", path=self.logdir)
        if not self.logdir.is_dir():
            raise InputError("not a directory", path=self.logdir)
        if expected_size is not None and expected_size < 1:
            raise InputError(f"expected size must be at least 1, got {expected_size}")
        self._log = LogState(
            logdir=self.logdir,
            keyring=keyring,
            record_type=record_type,
            trusted=trusted_checkpoint,
            expected_size=expected_size,
            defer_content=defer_content,
            defer_canonical=defer_canonical,
            now=now or datetime.now(UTC),
        )
        self._record_type = record_type  # as given: the full re-verification starts from the same
        self._mismatched: list[str] = []
        self._settled = False  # a deferred report was already replaced by the full one
        if trusted_checkpoint is not None:
            self._log.watch_sizes.add(trusted_checkpoint.tree_size)
        self._started = False
        self._report: VerificationReport | None = None
        self._verified = 0
        self._last: tuple[CheckpointBody, str] | None = None
        """Body and checkpoint file SHA-256 hex of the last verified segment."""

    def segments(self) -> Iterator[VerifiedSegment]:
        """Verify segment by segment; yield each one that fully verifies."""
        if self._started:
            raise RuntimeError("LogVerifier.segments() can be iterated only once")
        self._started = True
        return self._run()

    def _run(self) -> Iterator[VerifiedSegment]:
        self._check_layout()
        for index in range(self._log.end):
            segment = self._verify_index(index)
            if segment is not None:
                yield segment
        self._finish()

    def _check_layout(self) -> None:
        """Scan the directory and run the layout checks."""
        log = self._log
        try:
            scan(log)
        except OSError as exc:
            raise InputError(f"cannot list log directory: {exc.strerror or exc}", path=self.logdir) from None
        for layout_check in LAYOUT_CHECKS:
            layout_check(log)

    def _verify_index(self, index: int) -> VerifiedSegment | None:
        """Run the segment checks for ``index``; the segment if it fully verified, else None."""
        log = self._log
        if index not in log.checkpoint_indexes:
            log.builder = None
            return None
        ctx = SegmentContext(log=log, index=index, name=segment_name(index), checkpoint_file=checkpoint_name(index))
        for check in SEGMENT_CHECKS:
            check(ctx)
            if ctx.halted:
                break
        digest = _close_segment(ctx)
        if ctx.problems or not ctx.cumulative_ok:
            return None
        body, lines = ctx.body, ctx.lines
        assert body is not None and digest is not None and (lines is not None or log.defer_content)
        self._verified += 1
        self._last = (body, digest)
        return VerifiedSegment(index=index, name=ctx.name, first=body.segment.first, lines=lines, body=body)

    def _finish(self) -> None:
        """Run the final checks and build the report."""
        log = self._log
        for final_check in FINAL_CHECKS:
            final_check(log)
        problems = tuple(sorted(log.problems, key=_sort_key))
        body = self._last[0] if self._last is not None else None
        self._report = VerificationReport(
            ok=not problems,
            problems=problems,
            tree_size=body.tree_size if body is not None else 0,
            root=body.root if body is not None else None,
            segments=self._verified,
            origin=body.origin if body is not None else None,
            record_type=body.record_type if body is not None else None,
            last_checkpoint_sha256=self._last[1] if self._last is not None else None,
            completeness=log.completeness,
            completeness_detail=log.completeness_detail,
            last_checkpoint_time=body.time if body is not None else None,
        )

    @property
    def index_end(self) -> int:
        """One past the highest checkpoint index the scan listed (0 until the first segment is asked for).

        A scheduling hint (how many segments may still come), never a verdict: the
        listing is the log's, and the segment checks judge every index below it.
        """
        return self._log.end

    @property
    def defers_canonical(self) -> bool:
        """Whether the consumer must check each record's RFC 8785 form (``defer_canonical``)."""
        return self._log.defer_canonical

    def content_mismatch(self, segment: str) -> None:
        """Record that a deferred segment's file did not pass :func:`segment_lines`, or a record of a
        segment whose canonical check was deferred is not canonical."""
        self._mismatched.append(segment)

    def report(self) -> VerificationReport:
        """The report; RuntimeError unless :meth:`segments` was iterated to the end.

        With deferred content or canonical checks, a report with problems or flagged
        segments is replaced by a full verification's. If that one finds nothing (the log changed since it
        was read, e.g. an append finished), the report keeps what was seen while
        reading and is never ok.
        """
        if self._report is None:
            raise RuntimeError("LogVerifier.report() called before segments() was exhausted")
        log = self._log
        deferred = log.defer_content or log.defer_canonical
        if deferred and not self._settled and (self._mismatched or not self._report.ok):
            full = verify_log(
                self.logdir,
                log.keyring,
                record_type=self._record_type,
                trusted_checkpoint=log.trusted,
                expected_size=log.expected_size,
                now=log.now,
            )
            if full.ok:  # the log changed since it was read: fail with what was seen then
                changed = [
                    Problem(
                        "root-mismatch",
                        f"{name} did not match its signed digest and leaves "
                        "when it was replayed (changed while the log was read?)",
                        name,
                    )
                    for name in self._mismatched
                ]
                seen = sorted([*self._report.problems, *changed], key=_sort_key)
                full = replace(self._report, ok=False, problems=tuple(seen))
            self._report, self._mismatched, self._settled = full, [], True
        return self._report


# --------------------------------------------------------------------------- helpers


def read_segment_file(path: Path, seg: SegmentInfo) -> bytes | None:
    """The bytes of a deferred segment file for :func:`segment_lines`, None if it cannot be the sealed one.

    Read as the verifier reads it: a regular file, not a symlink, no larger than the
    checkpoint allows (refused from its size).
    """
    try:
        return read_bytes(path, follow_symlinks=False, max_bytes=max_segment_bytes(seg.count))
    except InputError:
        return None


def segment_lines(raw: bytes, seg: SegmentInfo, *, canonical: bool = True) -> list[bytes] | None:
    """The records of a segment file if it is exactly the sealed one, else None.

    What a deferred verification leaves to whoever reads the file: its SHA-256 and
    record count must be the signed ones, nothing may follow the last newline, the
    records' leaf hashes must hash to the signed leaves digest (so they are the
    leaves the verified roots were computed from), and every record must be its
    RFC 8785 canonical form (``non-canonical-record`` in a full verification) -
    unless ``canonical`` is False: then the caller checks each record as it reads it
    (:func:`~audit.logs.verify.records.is_canonical_line`) and flags the segment if one is not.
    """
    if len(raw) > max_segment_bytes(seg.count) or hashlib.sha256(raw).hexdigest() != seg.sha256:
        return None
    lines = raw.split(b"\n")
    if lines.pop() or len(lines) != seg.count:
        return None
    if hashlib.sha256(b"".join(leaf_hashes(lines))).hexdigest() != seg.leaves_sha256:
        return None
    if canonical and non_canonical_lines(lines):
        return None
    return lines


def verify_log(
    logdir: Path,
    keyring: Keyring,
    *,
    record_type: str | None = None,
    trusted_checkpoint: SignedCheckpoint | None = None,
    expected_size: int | None = None,
    now: datetime | None = None,
) -> VerificationReport:
    """Verify a whole log directory and return its report (segments are discarded).

    ``now`` is the verifier's clock (default: the current time), against which
    checkpoint times must not lie in the future.
    """
    verifier = LogVerifier(
        logdir,
        keyring,
        record_type=record_type,
        trusted_checkpoint=trusted_checkpoint,
        expected_size=expected_size,
        now=now,
    )
    for _ in verifier.segments():
        pass
    return verifier.report()
