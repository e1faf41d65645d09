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

What it does not do: it does not parse or validate records (consumers parse
:attr:`VerifiedSegment.lines`); it cannot notice tail truncation, rollback or
equivocation without a pinned trusted checkpoint; it produces no inclusion or
consistency proofs; it never prints.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path

import orjson
import rfc8785
from pydantic import ValidationError

from audit.errors import InputError, IntegrityError
from audit.logs.checkpoint import (
    CHECKPOINT_FILE_RE,
    CHECKPOINT_PAYLOAD_TYPE,
    CHECKPOINTS_DIR,
    SEGMENT_FILE_RE,
    SEGMENTS_DIR,
    CheckpointBody,
    SegmentInfo,
    checkpoint_name,
    leaves_name,
    parse_checkpoint_payload,
    segment_name,
)
from audit.logs.merkle import HASH_LEN, TreeBuilder, leaf_hashes, root_of
from audit.records import describe_validation_error
from audit.signing.dsse import Envelope, envelope_bytes, parse_envelope, verify_envelope
from audit.signing.keys import Keyring, KeyStatus

__all__ = [
    "FINAL_CHECKS",
    "LAYOUT_CHECKS",
    "MAX_LINE_PROBLEMS",
    "SEGMENT_CHECKS",
    "CheckpointBody",
    "LogState",
    "LogVerifier",
    "Problem",
    "SegmentContext",
    "SegmentInfo",
    "VerificationReport",
    "VerifiedSegment",
    "verify_log",
]

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

    ``lines`` are the records exactly as hashed (no trailing newline); ``first``
    is the global leaf index of ``lines[0]``.
    """

    index: int
    name: str
    first: int
    lines: list[bytes]
    body: CheckpointBody


@dataclass(frozen=True)
class VerificationReport:
    """Outcome of a full verification; ``ok`` only when there are no problems.

    ``tree_size``, ``root``, ``origin``, ``record_type`` and
    ``last_checkpoint_sha256`` describe the last segment that verified (``root``
    and the others are None if none did); ``segments`` counts verified segments.
    """

    ok: bool
    problems: tuple[Problem, ...]
    tree_size: int
    root: str | None
    segments: int
    origin: str | None
    record_type: str | None
    last_checkpoint_sha256: str | None


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

    def problem(self, code: str, message: str, segment: str | None = None,
                line: int | None = None) -> None:
        """Record a problem."""
        self.problems.append(Problem(code, message, segment, line))


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
    trusted_leaves: list[bytes] | None = None
    """Leaf hashes known to be the sealed ones (sidecar or verified lines)."""
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


def check_unexpected_files(log: LogState) -> None:
    """``unexpected-file``: entries in ``checkpoints/`` not named ``NNNNNNNN.json``."""
    for name in log.other_files:
        log.problem("unexpected-file", f"unexpected entry {name} in the log directory")


LAYOUT_CHECKS: list[LayoutCheck] = [
    check_empty_log,
    check_missing_checkpoints,
    check_unexpected_files,
]


# --------------------------------------------------------------------------- segment


def check_checkpoint_envelope(ctx: SegmentContext) -> None:
    """``malformed-checkpoint``: unreadable, not a DSSE envelope, or not canonical JSON."""
    raw = ctx.read(ctx.checkpoint_file, "malformed-checkpoint")
    ctx.checkpoint_raw = raw
    if raw is None:
        if not ctx.problems:  # listed by the layout scan but gone when read
            ctx.problem("checkpoint-missing", f"checkpoint {ctx.checkpoint_file} disappeared")
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
    try:
        canonical = rfc8785.dumps(orjson.loads(payload)) == payload
    except (orjson.JSONDecodeError, rfc8785.CanonicalizationError):
        canonical = False
    if not canonical:
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
}


def check_key_status(ctx: SegmentContext) -> None:
    """``key-revoked`` / ``key-expired`` / ``key-not-yet-valid`` at the checkpoint's time."""
    body, signer = ctx.body, ctx.signer
    assert body is not None and signer is not None
    status = ctx.log.keyring.status(signer, at=body.time)
    if status is not KeyStatus.ok:
        when = body.time.strftime("%Y-%m-%dT%H:%M:%SZ")
        ctx.problem(_STATUS_CODES[status],
                    f"{ctx.checkpoint_file} is signed by key {signer}, {status.value} at {when}")


def check_checkpoint_position(ctx: SegmentContext) -> None:
    """``checkpoint-misplaced``: the body must name this index and this segment."""
    body = ctx.body
    assert body is not None
    if body.index != ctx.index or body.segment.name != ctx.name:
        ctx.problem(
            "checkpoint-misplaced",
            f"{ctx.checkpoint_file} is the checkpoint of index {body.index} "
            f"({body.segment.name}), not of {ctx.name}",
        )
        ctx.halted = True


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
    """``segment-missing`` / ``malformed-segment``: read the segment and its leaves file."""
    ctx.jsonl_raw = ctx.read(ctx.name, "malformed-segment")
    leaves = leaves_name(ctx.index)
    ctx.leaves_raw = ctx.read(leaves, "malformed-segment")
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
    if root_of(sealed).hex() != seg.root:
        ctx.problem("root-mismatch",
                    f"signed leaves of {leaves} do not hash to the signed segment root")
        return
    ctx.sealed_leaves = sealed
    ctx.trusted_leaves = sealed


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


def check_segment_lines(ctx: SegmentContext) -> None:
    """``event-modified`` / ``event-deleted`` / ``event-inserted`` / ``events-reordered``.

    Aligns the file's line hashes with the signed sidecar to name the lines.
    """
    if ctx.sealed_leaves is None or ctx.line_hashes is None:
        return
    _localise(ctx, ctx.sealed_leaves, ctx.line_hashes)


_CONTENT_CODES = frozenset({
    "event-modified", "event-deleted", "event-inserted", "events-reordered", "trailing-data",
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
    if hashlib.sha256(raw).hexdigest() != seg.sha256:
        how = ("" if ctx.sealed_leaves is not None
               else "; the leaves file is not usable to localise the change")
        ctx.problem("root-mismatch", f"{ctx.name} does not match its signed sha256{how}")
        return
    if ctx.sealed_leaves is not None:
        return  # lines equal the authentic sidecar, whose root was checked
    if len(hashes) != seg.count or root_of(hashes).hex() != seg.root:
        ctx.problem("root-mismatch",
                    f"{ctx.name} matches its signed sha256 but not the signed count/root")
        return
    ctx.trusted_leaves = hashes


def check_cumulative_root(ctx: SegmentContext) -> None:
    """``root-mismatch``: the signed root over all leaves so far must be recomputed exactly."""
    body = ctx.body
    assert body is not None
    builder = ctx.log.builder
    if builder is None or ctx.trusted_leaves is None:
        return
    builder.extend(ctx.trusted_leaves)
    root = builder.root().hex()
    if builder.size != body.tree_size or root != body.root:
        ctx.problem("root-mismatch",
                    f"{ctx.checkpoint_file}: signed root {body.root} at size {body.tree_size} "
                    f"is not the recomputed {root} at size {builder.size}")
        return
    ctx.cumulative_ok = True


SEGMENT_CHECKS: list[SegmentCheck] = [
    check_checkpoint_envelope,
    check_checkpoint_signature,
    check_checkpoint_body,
    check_key_status,
    check_checkpoint_position,
    check_record_type,
    check_origin,
    check_chain,
    check_tree_size,
    check_segment_files,
    check_leaves_file,
    check_trailing_data,
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


FINAL_CHECKS: list[FinalCheck] = [
    check_unreferenced_segments,
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


def _scan(log: LogState) -> None:
    """Fill the directory listing of ``log``."""
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


def _sort_key(problem: Problem) -> tuple[bool, str, int]:
    return (problem.segment is None, problem.segment or "", problem.line or 0)


class LogVerifier:
    """Streaming verifier of one log directory.

    Iterate :meth:`segments` (once) to get the verified segments in index order,
    then call :meth:`report`. A missing or non-directory ``logdir`` raises
    :class:`InputError`; anything wrong inside it becomes a :class:`Problem`.
    ``record_type``, if given, is the record type every checkpoint must name.
    """

    def __init__(self, logdir: Path, keyring: Keyring, *, record_type: str | None = None):
        self.logdir = Path(logdir)
        if not self.logdir.exists():
            raise InputError("no such log directory", path=self.logdir)
        if not self.logdir.is_dir():
            raise InputError("not a directory", path=self.logdir)
        self._log = LogState(logdir=self.logdir, keyring=keyring, record_type=record_type)
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
            log.problems.extend(ctx.problems)
            if ctx.problems or not ctx.cumulative_ok:
                continue
            body, lines = ctx.body, ctx.lines
            assert body is not None and lines is not None and digest is not None
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
        )

    def report(self) -> VerificationReport:
        """The report; RuntimeError unless :meth:`segments` was iterated to the end."""
        if self._report is None:
            raise RuntimeError("LogVerifier.report() called before segments() was exhausted")
        return self._report


def verify_log(logdir: Path, keyring: Keyring, *,
               record_type: str | None = None) -> VerificationReport:
    """Verify a whole log directory and return its report (segments are discarded)."""
    verifier = LogVerifier(logdir, keyring, record_type=record_type)
    for _ in verifier.segments():
        pass
    return verifier.report()
