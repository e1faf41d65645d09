"""The verification state: what the checks read and record, and the report types.

What it does: defines :class:`LogState` (carried across the whole verification:
directory listing, running tree, roots seen, pins, problems),
:class:`SegmentContext` (one checkpoint index, filled in as the segment checks
run), :class:`Problem` and its catalogue :data:`PROBLEM_CODES`, and the outcome
types :class:`VerifiedSegment`, :class:`Completeness` and
:class:`VerificationReport`. The only I/O here is reading a file of the log
directory on behalf of a check (:meth:`LogState.read_bytes`,
:meth:`LogState.check_file`, :meth:`SegmentContext.read`), always through
:mod:`audit.reading`: regular files only (a FIFO, socket or device is refused
without blocking), never a symlink (the last component is opened with
``O_NOFOLLOW``; ``segments/`` and ``checkpoints/`` themselves are checked by the
scan), and never more bytes than the caller's cap (a larger file is refused from
its size, before anything is read).

What it does not do: it runs no check and decides nothing (see
:mod:`audit.logs.verify` for the order in which the checks run).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

from audit.errors import InputError
from audit.logs.checkpoint import AppendJournal, CheckpointBody
from audit.logs.merkle import TreeBuilder
from audit.logs.trusted import SignedCheckpoint
from audit.reading import open_regular
from audit.signing.dsse import Envelope
from audit.signing.keys import Keyring

PROBLEM_CODES = frozenset(
    {
        "empty-log",
        "checkpoint-missing",
        "segment-missing",
        "unexpected-file",
        "undecodable-file",
        "malformed-checkpoint",
        "unknown-key",
        "bad-signature",
        "key-revoked",
        "key-expired",
        "key-not-yet-valid",
        "key-wrong-purpose",
        "segment-moved",
        "segment-replayed",
        "equivocation",
        "record-type-mismatch",
        "origin-mismatch",
        "chain-broken",
        "tree-size-mismatch",
        "malformed-segment",
        "leaves-file-tampered",
        "trailing-data",
        "event-modified",
        "event-deleted",
        "event-inserted",
        "events-reordered",
        "root-mismatch",
        "unreferenced-segment",
        "append-interrupted",
        "fork",
        "rollback",
        "tail-truncated",
        "non-canonical-record",
        "time-went-backwards",
        "checkpoint-in-future",
    }
)
"""Every :attr:`Problem.code` the verifier can report (catalogued in docs/log-format.md section 9)."""

MAX_LINE_PROBLEMS = 100
"""At most this many line-level problems are listed per segment; the rest are summarised."""


class FileTooLarge(Exception):
    """A file of the log is larger than its cap; raised from its size, before it is read."""

    def __init__(self, relative: str, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        self.reason = f"is {size} bytes, more than the {limit} allowed (not read)"
        super().__init__(f"{relative} {self.reason}")


def refusal(exc: InputError | FileTooLarge | OSError) -> str:
    """Why a file of the log could not be read, for a problem message (no path: the caller names it)."""
    if isinstance(exc, OSError):
        return f"cannot read: {exc.strerror or exc}"
    return exc.reason


@dataclass(frozen=True)
class Problem:
    """One verification finding: stable code, one-line message, where it is."""

    code: str
    message: str
    segment: str | None = None
    line: int | None = None


@dataclass
class VerifiedSegment:
    """A segment whose checkpoint, files and roots all verified.

    ``lines`` are the records exactly as hashed (no trailing newline), or None when
    the verifier deferred the content (read the file and check it with
    :func:`~audit.logs.verify.segment_lines`); ``first`` is the global leaf index of the first record.
    """

    index: int
    name: str
    first: int
    lines: list[bytes] | None
    body: CheckpointBody

    @property
    def records(self) -> list[bytes]:
        """``lines``, for verifiers that read the files; RuntimeError if content was deferred."""
        if self.lines is None:
            raise RuntimeError(f"{self.name}: content was deferred; read it with segment_lines()")
        return self.lines


class Completeness(StrEnum):
    """Whether the log is known to hold every record up to a pinned size."""

    proven = "proven"
    """A trusted checkpoint / expected size was given and the log reaches it consistently."""
    unproven = "unproven"
    """No pin was given (or the log broke before reaching it): a truncated tail would go unnoticed."""
    failed = "failed"
    """A pin was given and the log contradicts it (truncated, rolled back, forked)."""


@dataclass(frozen=True)
class VerificationReport:
    """Outcome of a full verification; ``ok`` only when there are no problems.

    ``tree_size``, ``root``, ``origin``, ``record_type`` and
    ``last_checkpoint_sha256`` describe the last segment that verified (``root``
    and the others are None if none did); ``segments`` counts verified segments.
    ``ok`` does not imply completeness: check ``completeness`` (``unproven``
    unless a trusted checkpoint or expected size was given), explained in one
    sentence by ``completeness_detail``.
    """

    ok: bool
    problems: tuple[Problem, ...]
    tree_size: int
    root: str | None
    segments: int
    origin: str | None
    record_type: str | None
    last_checkpoint_sha256: str | None
    completeness: Completeness = Completeness.unproven
    completeness_detail: str = ""
    last_checkpoint_time: datetime | None = None
    """The signed ``time`` of the last checkpoint that verified (None if none did)."""


def describe_problems(problems: Sequence[Problem]) -> str:
    """``N problem(s); first: CODE at SEGMENT:LINE: MESSAGE``, for one-line errors."""
    if not problems:
        return "no problems, but no verified checkpoint either"
    first = problems[0]
    where = ""
    if first.segment is not None:
        where = f" at {first.segment}" + (f":{first.line}" if first.line is not None else "")
    return f"{len(problems)} problem(s); first: {first.code}{where}: {first.message}"


@dataclass
class LogState:
    """Everything carried across segments (and seen by layout and final checks)."""

    logdir: Path
    keyring: Keyring
    record_type: str | None
    """Expected record type: given by the caller, else the first authentic checkpoint's."""
    origin: str | None = None
    """The first authentic checkpoint's origin."""
    checkpoint_indexes: set[int] = field(default_factory=set)
    segment_files: dict[str, int | None] = field(default_factory=dict)
    """Every entry of ``segments/`` (relative path) and its index, None if misnamed."""
    other_files: list[str] = field(default_factory=list)
    """Entries of ``checkpoints/`` that are not ``NNNNNNNN.json``, and odd top-level entries."""
    end: int = 0
    """One past the highest checkpoint index present."""
    missing: set[int] = field(default_factory=set)
    """Indexes below ``end`` without a checkpoint (reported by a layout check)."""
    builder: TreeBuilder | None = field(default_factory=TreeBuilder)
    """Cumulative tree over all leaves so far; None once a gap makes it unknowable."""
    previous: tuple[int, str] | None = None
    """(index, SHA-256 hex) of the last checkpoint file read."""
    problems: list[Problem] = field(default_factory=list)
    trusted: SignedCheckpoint | None = None
    """The pinned trusted checkpoint, if the caller gave one."""
    expected_size: int | None = None
    """The pinned minimum size, if the caller gave one."""
    checkpoint_digests: dict[int, str] = field(default_factory=dict)
    """SHA-256 hex of every numbered checkpoint file, by index (read before the segments)."""
    claimed_segments: dict[str, int] = field(default_factory=dict)
    """``segment.sha256`` -> the index its (not yet authenticated) checkpoint claims; hints only."""
    journal: AppendJournal | None = None
    journal_error: str | None = None
    pending_files: list[str] = field(default_factory=list)
    """Files an interrupted append left without a checkpoint (only with a journal)."""
    stray: list[tuple[str, CheckpointBody]] = field(default_factory=list)
    """Validly signed checkpoints found under other names in ``checkpoints/``."""
    watch_sizes: set[int] = field(default_factory=set)
    """Tree sizes whose root is recorded in ``roots_at`` while streaming (pins, strays)."""
    roots_at: dict[int, str] = field(default_factory=dict)
    """Recomputed root (hex) at each watched size the running tree passed through."""
    signed_roots: dict[int, tuple[str, str, str]] = field(default_factory=dict)
    """Tree size -> (checkpoint file, root hex, segment) of every authenticated checkpoint in place."""
    newest: tuple[str, CheckpointBody] | None = None
    """The authenticated, in-place checkpoint with the highest index."""
    verified_size: int = 0
    """Tree size of the last checkpoint whose cumulative root was recomputed from leaf 0."""
    completeness: Completeness = Completeness.unproven
    completeness_detail: str = ""
    pin_failed: list[str] = field(default_factory=list)
    """Codes of the problems that contradict a pin."""
    defer_content: bool = False
    """Leave the segment files to the consumer (:func:`~audit.logs.verify.segment_lines`)."""
    defer_canonical: bool = False
    """Leave the records' canonical form to the consumer (:func:`~audit.logs.verify.records.is_canonical_line`)."""
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    """The verifier's clock: checkpoint times beyond it plus the allowed skew are in the future."""
    last_time: tuple[str, datetime] | None = None
    """(checkpoint file, time) of the last checkpoint whose signed body was read and not in the future."""

    def problem(self, code: str, message: str, segment: str | None = None, line: int | None = None) -> None:
        """Record a problem."""
        self.problems.append(Problem(code, message, segment, line))

    def pin_problem(self, code: str, message: str, segment: str | None = None) -> None:
        """Record a problem that contradicts a pin (so completeness ``failed``)."""
        self.problem(code, message, segment)
        if code not in self.pin_failed:
            self.pin_failed.append(code)

    def read_bytes(self, relative: str, max_bytes: int) -> bytes:
        """Bytes of a regular file in the log directory (``relative`` to it), at most ``max_bytes``.

        FileNotFoundError if there is no such entry; :class:`InputError` if it is not a
        regular file (FIFO, directory, device...) or is a symlink; :class:`FileTooLarge`
        (from its size, nothing read) if it is larger than ``max_bytes``; OSError if a
        read fails.
        """
        with self._open(relative, max_bytes) as fh:
            data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:  # grew since it was opened
            raise FileTooLarge(relative, len(data), max_bytes)
        return data

    def check_file(self, relative: str, max_bytes: int) -> None:
        """Raise as :meth:`read_bytes` would, without reading (for deferred content)."""
        with self._open(relative, max_bytes):
            pass

    def _open(self, relative: str, max_bytes: int) -> BinaryIO:
        path = self.logdir / relative
        directory = relative.rpartition("/")[0]
        if directory and os.path.islink(self.logdir / directory):
            raise InputError(f"is inside {directory}/, a symlink (not followed)", path=relative)
        if not os.path.lexists(path):
            raise FileNotFoundError(relative)
        fh = open_regular(path, follow_symlinks=False, max_bytes=sys.maxsize)
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            fh.close()
            raise FileTooLarge(relative, size, max_bytes)
        return fh

    @property
    def newest_size(self) -> int:
        """Tree size of the newest authenticated checkpoint in place (0 if none)."""
        return self.newest[1].tree_size if self.newest is not None else 0


@dataclass
class SegmentContext:
    """What the segment checks know about one checkpoint index, filled in as they run.

    Checks run in :data:`~audit.logs.verify.SEGMENT_CHECKS` order; a check that makes the rest
    meaningless (an unauthenticated checkpoint) sets ``halted``.
    """

    log: LogState
    index: int
    name: str
    checkpoint_file: str
    checkpoint_raw: bytes | None = None
    envelope: Envelope | None = None
    signer: str | None = None
    """Id of the keyring key whose signature verified."""
    payload: bytes | None = None
    """The signed checkpoint body bytes, once the signature verified."""
    body: CheckpointBody | None = None
    jsonl_raw: bytes | None = None
    leaves_raw: bytes | None = None
    lines: list[bytes] | None = None
    line_hashes: list[bytes] | None = None
    sealed_leaves: list[bytes] | None = None
    """The signed leaf hashes from the ``.leaves`` sidecar, once authenticated."""
    trusted_levels: list[list[bytes]] | None = None
    """Tree levels (:func:`~audit.logs.merkle.tree_levels`) over the leaf hashes known to be the sealed ones
    (sidecar or verified lines); ``[0]`` are the leaves."""
    jsonl_sha256: str | None = None
    identified: bool = False
    """The segment file was recognised as another segment's sealed content (moved or replayed)."""
    cumulative_ok: bool = False
    halted: bool = False
    problems: list[Problem] = field(default_factory=list)
    line_problems: int = 0

    def problem(self, code: str, message: str, line: int | None = None) -> None:
        """Record a problem about this segment."""
        self.problems.append(Problem(code, message, self.name, line))

    def problems_about(self, *codes: str) -> bool:
        """Whether a problem with one of ``codes`` was recorded for this segment."""
        return any(p.code in codes for p in self.problems)

    def line_problem(self, code: str, message: str, line: int | None) -> None:
        """Record a line-level problem, summarising beyond :data:`MAX_LINE_PROBLEMS`."""
        self.line_problems += 1
        if self.line_problems <= MAX_LINE_PROBLEMS:
            self.problem(code, message, line)

    def read(self, relative: str, code: str, max_bytes: int) -> bytes | None:
        """Bytes of a file in the log dir (see :meth:`LogState.read_bytes`); None if absent;
        not a regular file, a symlink, larger than ``max_bytes`` or unreadable -> problem ``code``."""
        try:
            return self.log.read_bytes(relative, max_bytes)
        except FileNotFoundError:
            return None
        except (InputError, FileTooLarge, OSError) as exc:
            self.problem(code, f"{relative} {refusal(exc)}")
            return None


LayoutCheck = Callable[[LogState], None]
SegmentCheck = Callable[[SegmentContext], None]
FinalCheck = Callable[[LogState], None]


def span(first: int, last: int, name: Callable[[int], str]) -> str:
    """``name(first)``, or ``name(first)..name(last)`` for a run of indexes (in messages)."""
    return name(first) if first == last else f"{name(first)}..{name(last)}"
