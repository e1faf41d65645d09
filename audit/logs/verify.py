"""Verify a sealed log directory and localise every kind of tampering found.

What it does: walks the log segment by segment in index order, holding one
segment in memory, and checks each checkpoint's DSSE signature and key status,
the checkpoint chain, the segment and leaves file digests, the segment Merkle
root and the cumulative RFC 9162 root over all leaves so far. Every problem is
collected as a :class:`Problem` with a stable kebab-case ``code``, naming the
segment and (where meaningful) the 1-based line; nothing inside the log
directory raises. The signed ``.leaves`` sidecar is used to say which line was
modified, deleted, inserted or reordered, and to keep the cumulative tree going
past a damaged segment.

How it is organised: each tamper class is one detection function. Three ordered
registries hold them — :data:`LAYOUT_CHECKS` (over the directory listing, before
any segment is read), :data:`SEGMENT_CHECKS` (over a :class:`SegmentContext`, one
per checkpoint index) and :data:`FINAL_CHECKS` (after the last segment). A new
tamper class is added by writing one function and appending it to a registry.
The problem codes are catalogued in ``docs/log-format.md`` section 9.

Completeness: deleting the last segments together with their checkpoints leaves
a log that is internally consistent. Only a pin can reveal it — a trusted
checkpoint (:class:`~audit.logs.trusted.SignedCheckpoint`, which also reveals
rollback and equivocation) or an expected size. The report's ``completeness``
says whether the log was proven complete up to the pin, failed it, or was not
pinned (``unproven``); an unpinned log is never reported as plainly complete.

Deferred content (``defer_content=True``, for parallel replay): the verifier
checks everything but the segment files themselves - checkpoints, chain, signed
leaves, segment and cumulative roots, completeness - and yields segments without
their lines. Whoever reads a segment file must check it with
:func:`segment_lines` (digest, count, and leaf hashes equal to the signed ones) and
report a mismatch with :meth:`LogVerifier.content_mismatch`. If anything is wrong,
:meth:`LogVerifier.report` re-verifies the whole log in full so the problems listed
are exactly those of a normal verification; it never reports a flagged log as ok.

What it does not do: it does not parse or validate records (consumers parse
:attr:`VerifiedSegment.lines`); it produces no inclusion or consistency proofs
(see :mod:`audit.logs.proofs`); it never prints.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from enum import StrEnum
from pathlib import Path

import orjson
from pydantic import ValidationError

from audit.canonical import is_canonical
from audit.errors import InputError, IntegrityError
from audit.logs.checkpoint import (
    CHECKPOINT_FILE_RE,
    CHECKPOINT_PAYLOAD_TYPE,
    CHECKPOINTS_DIR,
    JOURNAL_FILE,
    MAX_SEGMENTS,
    PARTIAL_FILE_RE,
    SEGMENT_FILE_RE,
    SEGMENTS_DIR,
    AppendJournal,
    CheckpointBody,
    SegmentInfo,
    checkpoint_name,
    leaves_name,
    parse_checkpoint_payload,
    segment_name,
)
from audit.logs.merkle import HASH_LEN, TreeBuilder, leaf_hashes, tree_levels
from audit.logs.trusted import SignedCheckpoint, read_checkpoint
from audit.records import describe_validation_error
from audit.signing.dsse import Envelope, envelope_bytes, parse_envelope, verify_envelope
from audit.signing.keys import Keyring, KeyStatus, purpose_for_record_type

__all__ = [
    "FINAL_CHECKS",
    "LAYOUT_CHECKS",
    "MAX_LINE_PROBLEMS",
    "PROBLEM_CODES",
    "SEGMENT_CHECKS",
    "CheckpointBody",
    "Completeness",
    "LogState",
    "LogVerifier",
    "Problem",
    "SegmentContext",
    "SegmentInfo",
    "VerificationReport",
    "VerifiedSegment",
    "describe_problems",
    "read_journal",
    "segment_lines",
    "verify_log",
]

PROBLEM_CODES = frozenset({
    "empty-log", "checkpoint-missing", "segment-missing", "unexpected-file", "undecodable-file",
    "malformed-checkpoint", "unknown-key", "bad-signature", "key-revoked", "key-expired", "key-not-yet-valid",
    "key-wrong-purpose",
    "segment-moved", "segment-replayed", "equivocation", "record-type-mismatch", "origin-mismatch",
    "chain-broken", "tree-size-mismatch", "malformed-segment", "leaves-file-tampered", "trailing-data",
    "event-modified", "event-deleted", "event-inserted", "events-reordered", "root-mismatch",
    "unreferenced-segment", "append-interrupted", "fork", "rollback", "tail-truncated",
})
"""Every :attr:`Problem.code` the verifier can report (catalogued in docs/log-format.md section 9)."""

MAX_LINE_PROBLEMS = 100
"""At most this many line-level problems are listed per segment; the rest are summarised."""

_EXACT_DIFF_LIMIT = 4_000_000
"""Above this product of differing-region sizes (with duplicate lines) the diff is summarised."""


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
    :func:`segment_lines`); ``first`` is the global leaf index of the first record.
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
    """Leave the segment files to the consumer (:func:`segment_lines`)."""

    def problem(self, code: str, message: str, segment: str | None = None,
                line: int | None = None) -> None:
        """Record a problem."""
        self.problems.append(Problem(code, message, segment, line))

    def pin_problem(self, code: str, message: str, segment: str | None = None) -> None:
        """Record a problem that contradicts a pin (so completeness ``failed``)."""
        self.problem(code, message, segment)
        if code not in self.pin_failed:
            self.pin_failed.append(code)

    @property
    def newest_size(self) -> int:
        """Tree size of the newest authenticated checkpoint in place (0 if none)."""
        return self.newest[1].tree_size if self.newest is not None else 0


@dataclass
class SegmentContext:
    """What the segment checks know about one checkpoint index, filled in as they run.

    Checks run in :data:`SEGMENT_CHECKS` order; a check that makes the rest
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
    """Tree levels (:func:`tree_levels`) over the leaf hashes known to be the sealed ones
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

    def read(self, relative: str, code: str) -> bytes | None:
        """Bytes of a file in the log dir; None if absent; unreadable -> problem ``code``."""
        try:
            return (self.log.logdir / relative).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.problem(code, f"cannot read {relative}: {exc.strerror or exc}")
            return None


LayoutCheck = Callable[[LogState], None]
SegmentCheck = Callable[[SegmentContext], None]
FinalCheck = Callable[[LogState], None]


# --------------------------------------------------------------------------- layout


def _span(first: int, last: int, name: Callable[[int], str]) -> str:
    return name(first) if first == last else f"{name(first)}..{name(last)}"


def check_empty_log(log: LogState) -> None:
    """``empty-log``: no checkpoint at all."""
    if not log.checkpoint_indexes:
        what = "no checkpoints" if log.segment_files else "no checkpoints and no segments"
        log.problem("empty-log", f"log contains {what}")


def check_missing_checkpoints(log: LogState) -> None:
    """``checkpoint-missing`` / ``segment-missing``: gaps below the last checkpoint.

    A run of consecutive indexes without a checkpoint is one problem giving the
    exact count. If none of the run's segments is present either, the whole
    segments were deleted (``segment-missing``); otherwise the checkpoints were
    (``checkpoint-missing``), plus ``segment-missing`` for any segment of the run
    that is gone too.
    """
    present = {index for index in log.segment_files.values() if index is not None}
    index = 0
    while index < log.end:
        if index in log.checkpoint_indexes:
            index += 1
            continue
        start = index
        while index < log.end and index not in log.checkpoint_indexes:
            index += 1
        last = index - 1
        count = last - start + 1
        run = range(start, last + 1)
        log.missing.update(run)
        gone = [i for i in run if i not in present]
        if len(gone) == count:
            what = "segment" if count == 1 else f"{count} consecutive segments"
            log.problem(
                "segment-missing",
                f"{what} {_span(start, last, segment_name)} missing together with "
                f"{'its checkpoint' if count == 1 else 'their checkpoints'} "
                f"(a later checkpoint exists)",
                segment_name(start),
            )
            continue
        plural = "checkpoint" if count == 1 else f"{count} consecutive checkpoints"
        log.problem(
            "checkpoint-missing",
            f"{plural} missing: {_span(start, last, checkpoint_name)}",
            segment_name(start),
        )
        for i in gone:
            log.problem(
                "segment-missing",
                f"segment {segment_name(i)} missing (its checkpoint is missing too)",
                segment_name(i),
            )


def claim_pending_append(log: LogState) -> None:
    """With an append journal present, set aside the files the append wrote but did not checkpoint.

    Those are segment files at or beyond the first index without a checkpoint
    and append's ``.partial`` temporaries; :func:`check_interrupted_append`
    reports them (instead of ``unreferenced-segment`` / ``unexpected-file``).
    """
    if log.journal is None and log.journal_error is None:
        return
    for name, index in list(log.segment_files.items()):
        partial = PARTIAL_FILE_RE.match(name.rpartition("/")[2]) is not None
        if partial or (index is not None and index >= log.end):
            log.pending_files.append(name)
            del log.segment_files[name]
    for name in list(log.other_files):
        if name.startswith(f"{CHECKPOINTS_DIR}/") and PARTIAL_FILE_RE.match(name.rpartition("/")[2]):
            log.pending_files.append(name)
            log.other_files.remove(name)


def collect_stray_checkpoints(log: LogState) -> None:
    """Set aside validly signed checkpoints kept under other names in ``checkpoints/``.

    They are compared with the log by :func:`check_stray_checkpoints` (equivocation).
    """
    for name in list(log.other_files):
        if not name.startswith(f"{CHECKPOINTS_DIR}/"):
            continue
        try:
            raw = (log.logdir / name).read_bytes()
            signed = read_checkpoint(raw, log.keyring, path=name)
        except (OSError, InputError, IntegrityError):
            continue
        log.other_files.remove(name)
        log.stray.append((name, signed.body))
        log.watch_sizes.add(signed.tree_size)


def check_unexpected_files(log: LogState) -> None:
    """``unexpected-file``: entries in ``checkpoints/`` not named ``NNNNNNNN.json``."""
    for name in log.other_files:
        log.problem("unexpected-file", f"unexpected entry {name} in the log directory")


LAYOUT_CHECKS: list[LayoutCheck] = [
    check_empty_log,
    check_missing_checkpoints,
    claim_pending_append,
    collect_stray_checkpoints,
    check_unexpected_files,
]


# --------------------------------------------------------------------------- segment


def check_checkpoint_envelope(ctx: SegmentContext) -> None:
    """``undecodable-file`` / ``malformed-checkpoint``: not JSON; unreadable, not a DSSE envelope, not canonical."""
    raw = ctx.read(ctx.checkpoint_file, "malformed-checkpoint")
    ctx.checkpoint_raw = raw
    if raw is None:
        if not ctx.problems:  # listed by the layout scan but gone when read
            ctx.problem("checkpoint-missing", f"checkpoint {ctx.checkpoint_file} disappeared")
        ctx.halted = True
        return
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        ctx.problem("undecodable-file",
                    f"{ctx.checkpoint_file} ({len(raw)} bytes) is not decodable JSON: {exc}")
        ctx.halted = True
        return
    try:
        envelope = parse_envelope(raw, path=ctx.checkpoint_file, integrity=True)
    except IntegrityError as exc:
        ctx.problem("malformed-checkpoint", f"{ctx.checkpoint_file}: {exc.reason}")
        ctx.halted = True
        return
    if envelope_bytes(envelope) != raw:
        ctx.problem("malformed-checkpoint",
                    f"{ctx.checkpoint_file}: envelope is not canonical (RFC 8785) JSON")
        ctx.halted = True
        return
    ctx.envelope = envelope


def check_checkpoint_signature(ctx: SegmentContext) -> None:
    """``unknown-key`` / ``bad-signature``: the checkpoint must be signed by a keyring key."""
    envelope = ctx.envelope
    assert envelope is not None
    if envelope.payloadType != CHECKPOINT_PAYLOAD_TYPE:
        ctx.problem("malformed-checkpoint",
                    f"{ctx.checkpoint_file}: unexpected payloadType {envelope.payloadType!r}")
        ctx.halted = True
        return
    keyring = ctx.log.keyring
    if not any(keyring.get(sig.keyid) is not None for sig in envelope.signatures):
        ids = ", ".join(sig.keyid or "(empty keyid)" for sig in envelope.signatures)
        ctx.problem("unknown-key", f"{ctx.checkpoint_file} is signed by unknown key {ids}")
        ctx.halted = True
        return
    try:
        verified = verify_envelope(envelope, keyring, expected_type=CHECKPOINT_PAYLOAD_TYPE)
    except IntegrityError as exc:
        ctx.problem("bad-signature", f"{ctx.checkpoint_file}: {exc.reason}")
        ctx.halted = True
        return
    ctx.signer = verified.key_id
    ctx.payload = verified.payload


def check_checkpoint_body(ctx: SegmentContext) -> None:
    """``malformed-checkpoint``: the signed body must be a canonical checkpoint body."""
    payload, signer = ctx.payload, ctx.signer
    assert payload is not None and signer is not None
    try:
        body = parse_checkpoint_payload(payload)
    except ValidationError as exc:
        ctx.problem("malformed-checkpoint",
                    f"{ctx.checkpoint_file}: signed body: {describe_validation_error(exc)}")
        ctx.halted = True
        return
    ctx.body = body
    if not is_canonical(payload):
        ctx.problem("malformed-checkpoint",
                    f"{ctx.checkpoint_file}: signed body is not canonical (RFC 8785) JSON")
    if body.key_id != signer:
        ctx.problem("malformed-checkpoint",
                    f"{ctx.checkpoint_file}: body names key {body.key_id} "
                    f"but is signed by {signer}")


_STATUS_CODES = {
    KeyStatus.unknown: "unknown-key",
    KeyStatus.revoked: "key-revoked",
    KeyStatus.expired: "key-expired",
    KeyStatus.not_yet_valid: "key-not-yet-valid",
    KeyStatus.wrong_purpose: "key-wrong-purpose",
}


def check_key_status(ctx: SegmentContext) -> None:
    """``key-revoked`` / ``key-expired`` / ``key-not-yet-valid`` at the checkpoint's time, and
    ``key-wrong-purpose`` for a key not trusted to sign logs of this record type."""
    body, signer = ctx.body, ctx.signer
    assert body is not None and signer is not None
    status = ctx.log.keyring.status(signer, at=body.time, purpose=purpose_for_record_type(body.record_type))
    if status is not KeyStatus.ok:
        when = body.time.strftime("%Y-%m-%dT%H:%M:%SZ")
        ctx.problem(_STATUS_CODES[status],
                    f"{ctx.checkpoint_file} is signed by key {signer}, {status.value} at {when}")


def check_segment_position(ctx: SegmentContext) -> None:
    """``segment-replayed`` / ``segment-moved``: the checkpoint names another index.

    Replayed when the same checkpoint file is also present at its own index (a
    copy), moved otherwise.
    """
    body, raw = ctx.body, ctx.checkpoint_raw
    assert body is not None and raw is not None
    if body.index == ctx.index and body.segment.name == ctx.name:
        return
    ctx.halted = True
    if body.index == ctx.index:
        ctx.problem("segment-moved", f"{ctx.checkpoint_file} names segment file {body.segment.name!r}, "
                                     f"not {ctx.name}")
        return
    digest = hashlib.sha256(raw).hexdigest()
    if ctx.log.checkpoint_digests.get(body.index) == digest:
        ctx.problem("segment-replayed",
                    f"{ctx.checkpoint_file} is a copy of {checkpoint_name(body.index)}: segment "
                    f"{body.index} replayed at index {ctx.index}")
        return
    ctx.problem("segment-moved",
                f"{ctx.checkpoint_file} is the checkpoint of index {body.index} ({body.segment.name}), "
                f"moved to index {ctx.index}")


def check_equivocation(ctx: SegmentContext) -> None:
    """``equivocation``: two authenticated checkpoints in the log for one size, different roots.

    Also remembers every authenticated root by size (for pins and stray
    checkpoints) and the newest authenticated checkpoint.
    """
    body = ctx.body
    assert body is not None
    if ctx.problems:
        return  # not authentic enough to be compared
    log = ctx.log
    seen = log.signed_roots.get(body.tree_size)
    if seen is not None and seen[1] != body.root:
        ctx.problem("equivocation",
                    f"{ctx.checkpoint_file} and {seen[0]} are both validly signed for tree size "
                    f"{body.tree_size} with different roots ({body.root} / {seen[1]})")
    else:
        log.signed_roots.setdefault(body.tree_size, (ctx.checkpoint_file, body.root, ctx.name))
    log.newest = (ctx.checkpoint_file, body)


def check_record_type(ctx: SegmentContext) -> None:
    """``record-type-mismatch``: every checkpoint names the expected record type."""
    body = ctx.body
    assert body is not None
    expected = ctx.log.record_type
    if expected is None:
        ctx.log.record_type = body.record_type
    elif body.record_type != expected:
        ctx.problem("record-type-mismatch",
                    f"{ctx.checkpoint_file} seals {body.record_type!r} records, "
                    f"expected {expected!r}")


def check_origin(ctx: SegmentContext) -> None:
    """``origin-mismatch``: every checkpoint names the same log origin."""
    body = ctx.body
    assert body is not None
    if ctx.log.origin is None:
        ctx.log.origin = body.origin
    elif body.origin != ctx.log.origin:
        ctx.problem("origin-mismatch",
                    f"{ctx.checkpoint_file} has origin {body.origin!r}, "
                    f"earlier checkpoints {ctx.log.origin!r}")


def check_chain(ctx: SegmentContext) -> None:
    """``chain-broken``: ``previous`` is the SHA-256 of the previous checkpoint file."""
    body = ctx.body
    assert body is not None
    if ctx.index == 0:
        if body.previous is not None:
            ctx.problem("chain-broken",
                        f"{ctx.checkpoint_file} is the first checkpoint but names a previous one")
        return
    previous = ctx.log.previous
    if previous is None or previous[0] != ctx.index - 1:
        return  # the predecessor is missing; reported by the layout check
    if body.previous != previous[1]:
        ctx.problem(
            "chain-broken",
            f"{ctx.checkpoint_file} does not chain to {checkpoint_name(ctx.index - 1)} "
            f"(previous {body.previous}, file digest {previous[1]})",
        )


def check_tree_size(ctx: SegmentContext) -> None:
    """``tree-size-mismatch``: segment ``first``/``count`` and ``tree_size`` add up."""
    body = ctx.body
    assert body is not None
    seg = body.segment
    builder = ctx.log.builder
    if builder is not None and seg.first != builder.size:
        ctx.problem("tree-size-mismatch",
                    f"{ctx.checkpoint_file} says the segment starts at leaf {seg.first}, "
                    f"but {builder.size} leaves precede it")
        ctx.log.builder = None
    if body.tree_size != seg.first + seg.count:
        ctx.problem("tree-size-mismatch",
                    f"{ctx.checkpoint_file}: tree_size {body.tree_size} != first {seg.first} "
                    f"+ count {seg.count}")
        ctx.log.builder = None


def check_segment_files(ctx: SegmentContext) -> None:
    """``segment-missing`` / ``malformed-segment``: read the segment and its leaves file.

    With deferred content the segment file is only looked for, not read.
    """
    leaves = leaves_name(ctx.index)
    ctx.leaves_raw = ctx.read(leaves, "malformed-segment")
    if ctx.log.defer_content:
        if not (ctx.log.logdir / ctx.name).is_file():
            ctx.problem("segment-missing", f"segment file {ctx.name} is missing")
        elif ctx.leaves_raw is None and not ctx.problems_about("malformed-segment"):
            ctx.problem("leaves-file-tampered", f"leaves file {leaves} is missing")
        return
    ctx.jsonl_raw = ctx.read(ctx.name, "malformed-segment")
    if ctx.jsonl_raw is None and not ctx.problems_about("malformed-segment"):
        also = "" if ctx.leaves_raw is not None else f" (and {leaves})"
        ctx.problem("segment-missing", f"segment file {ctx.name}{also} is missing")
    elif ctx.leaves_raw is None and not ctx.problems_about("malformed-segment"):
        ctx.problem("leaves-file-tampered", f"leaves file {leaves} is missing")


def check_leaves_file(ctx: SegmentContext) -> None:
    """``leaves-file-tampered``: the sidecar must hash to ``leaves_sha256``.

    An authentic sidecar that disagrees with the signed count or segment root is
    a ``root-mismatch`` (the producer signed inconsistent data).
    """
    body, raw = ctx.body, ctx.leaves_raw
    assert body is not None
    if raw is None:
        return
    seg = body.segment
    leaves = leaves_name(ctx.index)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != seg.leaves_sha256:
        ctx.problem("leaves-file-tampered",
                    f"leaves file {leaves} does not match its checkpoint "
                    f"(sha256 {digest}, signed {seg.leaves_sha256})")
        return
    if len(raw) != seg.count * HASH_LEN:
        ctx.problem("root-mismatch",
                    f"signed leaves file {leaves} holds {len(raw) / HASH_LEN:g} leaves, "
                    f"checkpoint count is {seg.count}")
        return
    sealed = [raw[i:i + HASH_LEN] for i in range(0, len(raw), HASH_LEN)]
    levels = tree_levels(sealed)
    if levels[-1][0].hex() != seg.root:
        ctx.problem("root-mismatch",
                    f"signed leaves of {leaves} do not hash to the signed segment root")
        return
    ctx.sealed_leaves = sealed
    ctx.trusted_levels = levels


def check_segment_identity(ctx: SegmentContext) -> None:
    """``segment-replayed`` / ``segment-moved``: the segment file is another segment's sealed content.

    Replayed when that other segment still holds the same content (a copy),
    moved otherwise. Line-level localisation is skipped for such a file.
    """
    body, raw = ctx.body, ctx.jsonl_raw
    assert body is not None
    if raw is None:
        return
    digest = hashlib.sha256(raw).hexdigest()
    ctx.jsonl_sha256 = digest
    if digest == body.segment.sha256:
        return
    other = ctx.log.claimed_segments.get(digest)
    if other is None or other == ctx.index:
        return
    other_name = segment_name(other)
    try:
        in_place = hashlib.sha256((ctx.log.logdir / other_name).read_bytes()).hexdigest() == digest
    except OSError:
        in_place = False
    ctx.identified = True
    if in_place:
        ctx.problem("segment-replayed",
                    f"{ctx.name} is a copy of sealed segment {other_name}: segment {other} "
                    f"replayed at index {ctx.index}")
    else:
        ctx.problem("segment-moved",
                    f"{ctx.name} holds the sealed content of {other_name}, moved to index {ctx.index}")


def check_trailing_data(ctx: SegmentContext) -> None:
    """``trailing-data``: bytes after the last newline of the segment file.

    Also splits the file into lines and hashes them for the later checks.
    """
    raw = ctx.jsonl_raw
    if raw is None:
        return
    lines = raw.split(b"\n")
    tail = lines.pop()
    ctx.lines = lines
    ctx.line_hashes = leaf_hashes(lines)
    if tail:
        ctx.problem("trailing-data",
                    f"{len(tail)} byte(s) after the last newline of {ctx.name}",
                    line=len(lines) + 1)


def _decodable(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def check_segment_decodable(ctx: SegmentContext) -> None:
    """``undecodable-file``: a changed segment file whose lines are not JSON objects (UTF-8).

    Only looked at when the file does not match its signed digest, so a sealed
    log is never parsed here. A partial last line is ``trailing-data`` instead.
    """
    body, lines = ctx.body, ctx.lines
    assert body is not None
    if lines is None or ctx.identified or ctx.jsonl_sha256 == body.segment.sha256:
        return
    bad = [number for number, line in enumerate(lines, start=1) if not _decodable(line)]
    if bad:
        ctx.problem("undecodable-file",
                    f"{ctx.name} is corrupted: {len(bad)} of {len(lines)} line(s) are not UTF-8 JSON "
                    f"objects ({_lines_text(bad)})",
                    line=bad[0])


def check_segment_lines(ctx: SegmentContext) -> None:
    """``event-modified`` / ``event-deleted`` / ``event-inserted`` / ``events-reordered``.

    Aligns the file's line hashes with the signed sidecar to name the lines.
    """
    if ctx.sealed_leaves is None or ctx.line_hashes is None or ctx.identified:
        return
    _localise(ctx, ctx.sealed_leaves, ctx.line_hashes)


_CONTENT_CODES = frozenset({
    "event-modified", "event-deleted", "event-inserted", "events-reordered", "trailing-data",
    "segment-moved", "segment-replayed", "undecodable-file",
})


def check_segment_digest(ctx: SegmentContext) -> None:
    """``root-mismatch``: the segment file must match its signed digest and root.

    Catches what line alignment could not localise (no authentic sidecar).
    """
    body, raw, hashes = ctx.body, ctx.jsonl_raw, ctx.line_hashes
    assert body is not None
    if raw is None or hashes is None:
        return
    seg = body.segment
    if ctx.problems_about(*_CONTENT_CODES):
        return
    if ctx.jsonl_sha256 != seg.sha256:
        how = ("" if ctx.sealed_leaves is not None
               else "; the leaves file is not usable to localise the change")
        ctx.problem("root-mismatch", f"{ctx.name} does not match its signed sha256{how}")
        return
    if ctx.sealed_leaves is not None:
        return  # lines equal the authentic sidecar, whose root was checked
    levels = tree_levels(hashes) if hashes else None
    if len(hashes) != seg.count or levels is None or levels[-1][0].hex() != seg.root:
        ctx.problem("root-mismatch",
                    f"{ctx.name} matches its signed sha256 but not the signed count/root")
        return
    ctx.trusted_levels = levels


def check_cumulative_root(ctx: SegmentContext) -> None:
    """``root-mismatch``: the signed root over all leaves so far must be recomputed exactly."""
    body = ctx.body
    assert body is not None
    log = ctx.log
    builder, levels = log.builder, ctx.trusted_levels
    if builder is None or levels is None:
        return
    start, done = builder.size, 0
    for size in sorted(s for s in log.watch_sizes if start < s <= start + len(levels[0])):
        builder.extend_levels(levels, done, size - start)
        done = size - start
        log.roots_at[size] = builder.root().hex()
    builder.extend_levels(levels, done)
    root = builder.root().hex()
    if builder.size != body.tree_size or root != body.root:
        ctx.problem("root-mismatch",
                    f"{ctx.checkpoint_file}: signed root {body.root} at size {body.tree_size} "
                    f"is not the recomputed {root} at size {builder.size}")
        return
    ctx.cumulative_ok = True
    log.verified_size = body.tree_size


SEGMENT_CHECKS: list[SegmentCheck] = [
    check_checkpoint_envelope,
    check_checkpoint_signature,
    check_checkpoint_body,
    check_key_status,
    check_segment_position,
    check_equivocation,
    check_record_type,
    check_origin,
    check_chain,
    check_tree_size,
    check_segment_files,
    check_leaves_file,
    check_segment_identity,
    check_trailing_data,
    check_segment_decodable,
    check_segment_lines,
    check_segment_digest,
    check_cumulative_root,
]


# --------------------------------------------------------------------------- final


def check_unreferenced_segments(log: LogState) -> None:
    """``unreferenced-segment``: entries of ``segments/`` that no checkpoint can account for.

    That is every misnamed entry and every segment file beyond the last
    checkpoint. (Files of an index below it either have a checkpoint, which
    names exactly that file, or belong to a gap reported as missing.)
    """
    for name, index in sorted(log.segment_files.items()):
        if index is not None and index < log.end:
            continue
        log.problem("unreferenced-segment",
                    f"{name} is not referenced by any checkpoint", name)


def _first_missing(log: LogState) -> str | None:
    return segment_name(log.end) if log.end < MAX_SEGMENTS else None


def _when(body: CheckpointBody) -> str:
    return body.time.strftime("%Y-%m-%dT%H:%M:%SZ")


def check_interrupted_append(log: LogState) -> None:
    """``append-interrupted``: an append journal is present, so ``log append`` crashed (or is running).

    Names what the append had done: records checkpointed so far, and the files
    it wrote that no checkpoint covers yet. Running the same append again resumes it.
    """
    if log.journal_error is not None:
        log.problem("append-interrupted",
                    f"{JOURNAL_FILE} is present but unreadable ({log.journal_error}): an append was "
                    f"interrupted; files not covered by a checkpoint: {', '.join(log.pending_files) or 'none'}",
                    _first_missing(log))
        return
    journal = log.journal
    if journal is None:
        return
    done = min(max(log.newest_size - journal.start_tree_size, 0), journal.records)
    pending = ", ".join(log.pending_files) or "none"
    segment = next((n for n in log.pending_files if SEGMENT_FILE_RE.match(n.rpartition("/")[2])),
                   _first_missing(log))
    log.problem(
        "append-interrupted",
        f"append of {journal.source_name} ({journal.records} records, sha256 {journal.source_sha256}, "
        f"started {journal.started.strftime('%Y-%m-%dT%H:%M:%SZ')} at size {journal.start_tree_size}) "
        f"was interrupted after {done} of {journal.records} records were checkpointed; written but not "
        f"checkpointed: {pending}; resume with `residency-audit log append` and the same file",
        segment,
    )


def check_stray_checkpoints(log: LogState) -> None:
    """``equivocation`` / ``fork``: a validly signed checkpoint in ``checkpoints/`` that contradicts the log.

    Same size and a different root than a checkpoint of the log is
    equivocation; a root that the log's own records do not hash to at that size
    is a fork. Stray checkpoints that agree with the log are ``unexpected-file``.
    """
    for name, body in log.stray:
        size = body.tree_size
        if log.origin is not None and body.origin != log.origin:
            log.problem("unexpected-file",
                        f"unexpected entry {name}: a validly signed checkpoint of another log ({body.origin!r})")
            continue
        seen = log.signed_roots.get(size)
        computed = log.roots_at.get(size)
        if seen is not None and seen[1] != body.root:
            log.problem("equivocation",
                        f"{name} and {seen[0]} are both validly signed for tree size {size} of "
                        f"{body.origin!r} with different roots ({body.root} / {seen[1]})", seen[2])
        elif computed is not None and computed != body.root:
            log.problem("fork",
                        f"{name} is validly signed for tree size {size} with root {body.root}, but the "
                        f"log's first {size} records hash to {computed}")
        else:
            what = "agrees with the log" if computed is not None else "is for a size the log was not verified to"
            log.problem("unexpected-file",
                        f"unexpected entry {name}: a validly signed checkpoint (size {size}) that {what}")


def check_trusted_consistency(log: LogState) -> None:
    """``equivocation`` / ``fork`` / ``origin-mismatch`` against the trusted checkpoint.

    Equivocation: a checkpoint of the log has the trusted size and another
    root. Fork: the log's first ``tree_size`` records do not hash to the trusted
    root (the log was rewritten, not extended).
    """
    trusted = log.trusted
    if trusted is None:
        return
    body, size = trusted.body, trusted.tree_size
    if log.origin is not None and body.origin != log.origin:
        log.pin_problem("origin-mismatch",
                        f"trusted checkpoint {trusted.path} is for origin {body.origin!r}, the log is "
                        f"{log.origin!r}")
        return
    seen = log.signed_roots.get(size)
    computed = log.roots_at.get(size)
    if seen is not None and seen[1] != body.root:
        log.pin_problem("equivocation",
                        f"trusted checkpoint {trusted.path} and {seen[0]} are both validly signed for tree "
                        f"size {size} with different roots ({body.root} / {seen[1]}): the producer "
                        f"equivocated", seen[2])
    elif computed is not None and computed != body.root:
        log.pin_problem("fork",
                        f"the log's first {size} records hash to {computed}, not to the root {body.root} of "
                        f"trusted checkpoint {trusted.path}: the log was rewritten, not extended")


def check_rollback(log: LogState) -> None:
    """``rollback``: the newest checkpoint is older than the trusted one (smaller and sealed earlier)."""
    trusted, newest = log.trusted, log.newest
    if trusted is None or newest is None:
        return
    name, body = newest
    if body.tree_size < trusted.tree_size and body.time < trusted.body.time:
        log.pin_problem("rollback",
                        f"the newest checkpoint {name} (size {body.tree_size}, sealed {_when(body)}) is older "
                        f"than trusted checkpoint {trusted.path} (size {trusted.tree_size}, sealed "
                        f"{_when(trusted.body)}): the log was rolled back to an earlier state",
                        _first_missing(log))


def check_tail_truncation(log: LogState) -> None:
    """``tail-truncated``: the log ends before a pinned size (trusted checkpoint or expected size)."""
    size = log.newest_size
    where = (f"its newest authenticated checkpoint {log.newest[0]}" if log.newest is not None
             else "it has no authenticated checkpoint")
    pins: list[tuple[int, str]] = []
    if log.trusted is not None:
        trusted = log.trusted
        gone = ""
        if trusted.body.index >= log.end:
            count = trusted.body.index - log.end + 1
            gone = (f"; {_span(log.end, trusted.body.index, segment_name)} "
                    f"({count} segment(s)) and {'its' if count == 1 else 'their'} checkpoint(s) are gone")
        pins.append((trusted.tree_size, f"trusted checkpoint {trusted.path} is at size {trusted.tree_size}{gone}"))
    if log.expected_size is not None:
        pins.append((log.expected_size, f"at least {log.expected_size} records were expected"))
    for pinned, why in pins:
        if size < pinned:
            log.pin_problem("tail-truncated",
                            f"the log is truncated: {pinned - size} record(s) missing at the end — it reaches "
                            f"size {size} ({where}), but {why}", _first_missing(log))


def settle_completeness(log: LogState) -> None:
    """Decide :class:`Completeness` from the pins (reports nothing itself)."""
    pins: list[tuple[int, str, str | None]] = []
    if log.trusted is not None:
        pins.append((log.trusted.tree_size, f"trusted checkpoint {log.trusted.path}", log.trusted.root))
    if log.expected_size is not None:
        pins.append((log.expected_size, f"expected size {log.expected_size}", None))
    if not pins:
        log.completeness = Completeness.unproven
        log.completeness_detail = (
            "no --trusted-checkpoint or --expect-size given: records deleted from the end of the log "
            "together with their checkpoints would not be detected")
        return
    if log.pin_failed:
        log.completeness = Completeness.failed
        log.completeness_detail = f"the log contradicts its pin(s): {', '.join(log.pin_failed)}"
        return
    for size, label, root in pins:
        if size > log.verified_size or (root is not None and log.roots_at.get(size) != root):
            log.completeness = Completeness.unproven
            log.completeness_detail = (f"the log could not be verified from its first record up to the size "
                                       f"pinned by {label} ({size})")
            return
    log.completeness = Completeness.proven
    log.completeness_detail = (f"the log holds every record up to size {max(p[0] for p in pins)} "
                               f"({'; '.join(p[1] for p in pins)}); it verifies to size {log.verified_size}")


FINAL_CHECKS: list[FinalCheck] = [
    check_interrupted_append,
    check_unreferenced_segments,
    check_stray_checkpoints,
    check_trusted_consistency,
    check_rollback,
    check_tail_truncation,
    settle_completeness,
]


# --------------------------------------------------------------------------- alignment


def _lines_text(numbers: Sequence[int]) -> str:
    if len(numbers) == 1:
        return f"line {numbers[0]}"
    if list(numbers) == list(range(numbers[0], numbers[-1] + 1)):
        return f"lines {numbers[0]}-{numbers[-1]}"
    shown = ", ".join(str(n) for n in numbers[:10])
    more = f", ... ({len(numbers)} lines)" if len(numbers) > 10 else ""
    return f"lines {shown}{more}"


def _localise(ctx: SegmentContext, sealed: list[bytes], actual: list[bytes]) -> None:
    """Name the lines where ``actual`` (file) departs from ``sealed`` (signed leaves)."""
    if sealed == actual:  # the usual case, compared in C
        return
    n, m = len(sealed), len(actual)
    p = 0
    while p < n and p < m and sealed[p] == actual[p]:
        p += 1
    s = 0
    while s < n - p and s < m - p and sealed[n - 1 - s] == actual[m - 1 - s]:
        s += 1
    old, new = sealed[p:n - s], actual[p:m - s]
    if not old and not new:
        return
    first = ctx.body.segment.first if ctx.body is not None else 0
    if Counter(old) == Counter(new):
        moved = [p + i + 1 for i in range(len(new)) if new[i] != old[i]]
        ctx.line_problem(
            "events-reordered",
            f"{_lines_text(moved)} of {ctx.name} hold sealed records in a different order",
            moved[0],
        )
        return
    unique = len(set(old)) == len(old) and len(set(new)) == len(new)
    if not unique and len(old) * len(new) > _EXACT_DIFF_LIMIT:
        ctx.line_problem(
            "event-modified",
            f"lines {p + 1}-{p + len(new)} of {ctx.name} differ from sealed lines "
            f"{p + 1}-{p + len(old)} (too many changes to localise each)",
            p + 1,
        )
        return
    matcher = SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for k in range(paired):
            line = p + j1 + k + 1
            sealed_line = p + i1 + k + 1
            where = "" if line == sealed_line else f" (sealed line {sealed_line})"
            ctx.line_problem(
                "event-modified",
                f"line {line} of {ctx.name} differs from the sealed record{where}, "
                f"leaf {first + sealed_line - 1}",
                line,
            )
        if i2 - i1 > paired:
            lo, hi = p + i1 + paired + 1, p + i2
            count = hi - lo + 1
            ctx.line_problem(
                "event-deleted",
                f"{count} sealed record(s) missing from {ctx.name}: sealed "
                f"{_lines_text(list(range(lo, hi + 1)))} (leaf {first + lo - 1}"
                f"{'' if count == 1 else f'..{first + hi - 1}'}), "
                f"before current line {p + j2 + 1}",
                lo,
            )
        if j2 - j1 > paired:
            lo, hi = p + j1 + paired + 1, p + j2
            ctx.line_problem(
                "event-inserted",
                f"{_lines_text(list(range(lo, hi + 1)))} of {ctx.name} "
                f"{'is' if lo == hi else 'are'} not in the sealed segment",
                lo,
            )


# --------------------------------------------------------------------------- driver


def _claimed_body(raw: bytes) -> CheckpointBody | None:
    """The body a checkpoint file carries, without authenticating it (for hints only)."""
    try:
        envelope = parse_envelope(raw, path="", integrity=True)
        return parse_checkpoint_payload(envelope.payload_bytes())
    except (IntegrityError, ValidationError, ValueError):
        return None


def read_journal(logdir: Path) -> AppendJournal | None:
    """The append journal of ``logdir``, None if there is none; IntegrityError naming it if unreadable."""
    path = Path(logdir) / JOURNAL_FILE
    if not path.exists():
        return None
    try:
        return AppendJournal.model_validate_json(path.read_bytes(), strict=True)
    except OSError as exc:
        raise IntegrityError(f"cannot read: {exc.strerror or exc}", path=path) from None
    except ValidationError as exc:
        raise IntegrityError(describe_validation_error(exc), path=path) from None


def _read_journal(log: LogState) -> None:
    try:
        log.journal = read_journal(log.logdir)
    except IntegrityError as exc:
        log.journal_error = exc.reason


def _scan(log: LogState) -> None:
    """Fill the directory listing of ``log``, and read what is needed before the segments.

    That is the append journal, the digest of every numbered checkpoint file and
    the segment digest each one claims (used to recognise moved and replayed
    segments).
    """
    checkpoints = log.logdir / CHECKPOINTS_DIR
    segments = log.logdir / SEGMENTS_DIR
    for directory in (checkpoints, segments):
        if directory.exists() and not directory.is_dir():
            log.other_files.append(f"{directory.name} (not a directory)")
    if checkpoints.is_dir():
        for entry in sorted(checkpoints.iterdir()):
            match = CHECKPOINT_FILE_RE.match(entry.name)
            if match is None:
                log.other_files.append(f"{CHECKPOINTS_DIR}/{entry.name}")
            else:
                log.checkpoint_indexes.add(int(match.group(1)))
    if segments.is_dir():
        for entry in sorted(segments.iterdir()):
            match = SEGMENT_FILE_RE.match(entry.name)
            index = int(match.group(1)) if match is not None else None
            log.segment_files[f"{SEGMENTS_DIR}/{entry.name}"] = index
    log.end = max(log.checkpoint_indexes) + 1 if log.checkpoint_indexes else 0
    _read_journal(log)
    for index in sorted(log.checkpoint_indexes):
        try:
            raw = (log.logdir / checkpoint_name(index)).read_bytes()
        except OSError:
            continue
        log.checkpoint_digests[index] = hashlib.sha256(raw).hexdigest()
        body = _claimed_body(raw)
        if body is not None:
            log.claimed_segments.setdefault(body.segment.sha256, body.index)


def _sort_key(problem: Problem) -> tuple[bool, str, int]:
    return (problem.segment is None, problem.segment or "", problem.line or 0)


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
    Without either the report's ``completeness`` is ``unproven``.
    """

    def __init__(self, logdir: Path, keyring: Keyring, *, record_type: str | None = None,
                 trusted_checkpoint: SignedCheckpoint | None = None,
                 expected_size: int | None = None, defer_content: bool = False):
        self.logdir = Path(logdir)
        if not self.logdir.exists():
            raise InputError("no such log directory", path=self.logdir)
        if not self.logdir.is_dir():
            raise InputError("not a directory", path=self.logdir)
        if expected_size is not None and expected_size < 1:
            raise InputError(f"expected size must be at least 1, got {expected_size}")
        self._log = LogState(logdir=self.logdir, keyring=keyring, record_type=record_type,
                             trusted=trusted_checkpoint, expected_size=expected_size,
                             defer_content=defer_content)
        self._record_type = record_type  # as given: the full re-verification starts from the same
        self._mismatched: list[str] = []
        self._settled = False  # a deferred report was already replaced by the full one
        if trusted_checkpoint is not None:
            self._log.watch_sizes.add(trusted_checkpoint.tree_size)
        self._started = False
        self._report: VerificationReport | None = None

    def segments(self) -> Iterator[VerifiedSegment]:
        """Verify segment by segment; yield each one that fully verifies."""
        if self._started:
            raise RuntimeError("LogVerifier.segments() can be iterated only once")
        self._started = True
        return self._run()

    def _run(self) -> Iterator[VerifiedSegment]:
        log = self._log
        try:
            _scan(log)
        except OSError as exc:
            raise InputError(f"cannot list log directory: {exc.strerror or exc}",
                             path=self.logdir) from None
        for layout_check in LAYOUT_CHECKS:
            layout_check(log)
        verified = 0
        last: tuple[CheckpointBody, str] | None = None
        for index in range(log.end):
            if index not in log.checkpoint_indexes:
                log.builder = None
                continue
            ctx = SegmentContext(log=log, index=index, name=segment_name(index),
                                 checkpoint_file=checkpoint_name(index))
            for check in SEGMENT_CHECKS:
                check(ctx)
                if ctx.halted:
                    break
            if ctx.line_problems > MAX_LINE_PROBLEMS:
                ctx.problem("event-modified",
                            f"... and {ctx.line_problems - MAX_LINE_PROBLEMS} more changed "
                            f"line(s) in {ctx.name} not listed")
            if not ctx.cumulative_ok:
                log.builder = None
            digest = (hashlib.sha256(ctx.checkpoint_raw).hexdigest()
                      if ctx.checkpoint_raw is not None else None)
            log.previous = (index, digest) if digest is not None else None
            if log.defer_content and not ctx.problems and not ctx.cumulative_ok:
                ctx.problem("root-mismatch", f"{ctx.name} could not be verified from its signed leaves alone")
            log.problems.extend(ctx.problems)
            if ctx.problems or not ctx.cumulative_ok:
                continue
            body, lines = ctx.body, ctx.lines
            assert body is not None and digest is not None and (lines is not None or log.defer_content)
            verified += 1
            last = (body, digest)
            yield VerifiedSegment(index=index, name=ctx.name, first=body.segment.first,
                                  lines=lines, body=body)
        for final_check in FINAL_CHECKS:
            final_check(log)
        problems = tuple(sorted(log.problems, key=_sort_key))
        body = last[0] if last is not None else None
        self._report = VerificationReport(
            ok=not problems,
            problems=problems,
            tree_size=body.tree_size if body is not None else 0,
            root=body.root if body is not None else None,
            segments=verified,
            origin=body.origin if body is not None else None,
            record_type=body.record_type if body is not None else None,
            last_checkpoint_sha256=last[1] if last is not None else None,
            completeness=log.completeness,
            completeness_detail=log.completeness_detail,
        )

    def content_mismatch(self, segment: str) -> None:
        """Record that a deferred segment's file did not pass :func:`segment_lines`."""
        self._mismatched.append(segment)

    def report(self) -> VerificationReport:
        """The report; RuntimeError unless :meth:`segments` was iterated to the end.

        With deferred content, a report with problems or flagged segments is replaced
        by a full verification's. If that one finds nothing (the log changed since it
        was read, e.g. an append finished), the report keeps what was seen while
        reading and is never ok.
        """
        if self._report is None:
            raise RuntimeError("LogVerifier.report() called before segments() was exhausted")
        log = self._log
        if log.defer_content and not self._settled and (self._mismatched or not self._report.ok):
            full = verify_log(self.logdir, log.keyring, record_type=self._record_type,
                              trusted_checkpoint=log.trusted, expected_size=log.expected_size)
            if full.ok:  # the log changed since it was read: fail with what was seen then
                changed = [Problem("root-mismatch", f"{name} did not match its signed digest and leaves "
                                   "when it was replayed (changed while the log was read?)", name)
                           for name in self._mismatched]
                seen = sorted([*self._report.problems, *changed], key=_sort_key)
                full = replace(self._report, ok=False, problems=tuple(seen))
            self._report, self._mismatched, self._settled = full, [], True
        return self._report


def segment_lines(raw: bytes, seg: SegmentInfo) -> list[bytes] | None:
    """The records of a segment file if it is exactly the sealed one, else None.

    What a deferred verification leaves to whoever reads the file: its SHA-256 and
    record count must be the signed ones, nothing may follow the last newline, and
    the records' leaf hashes must hash to the signed leaves digest (so they are the
    leaves the verified roots were computed from).
    """
    if hashlib.sha256(raw).hexdigest() != seg.sha256:
        return None
    lines = raw.split(b"\n")
    if lines.pop() or len(lines) != seg.count:
        return None
    if hashlib.sha256(b"".join(leaf_hashes(lines))).hexdigest() != seg.leaves_sha256:
        return None
    return lines


def verify_log(logdir: Path, keyring: Keyring, *, record_type: str | None = None,
               trusted_checkpoint: SignedCheckpoint | None = None,
               expected_size: int | None = None) -> VerificationReport:
    """Verify a whole log directory and return its report (segments are discarded)."""
    verifier = LogVerifier(logdir, keyring, record_type=record_type,
                           trusted_checkpoint=trusted_checkpoint, expected_size=expected_size)
    for _ in verifier.segments():
        pass
    return verifier.report()
