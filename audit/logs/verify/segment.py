"""Segment checks: one checkpoint index and its segment, in :data:`SEGMENT_CHECKS` order.

What it does: each function is one tamper class, run over a
:class:`SegmentContext`. The first ones authenticate the checkpoint (envelope,
signature, body, key status) and halt the segment if it is not authentic or
names another position; the next ones compare it with the log so far (equivocation,
record type, origin, chain, tree size); the last ones read the segment and its
signed ``.leaves`` sidecar and check digests, lines (localised by
:mod:`audit.logs.verify.localise`), the segment root, the cumulative root over
all leaves so far, and that every sealed record is its RFC 8785 canonical form
(:mod:`audit.logs.verify.records`). Checkpoint times are checked against the
previous checkpoint's and the verifier's clock before the key status is judged at
them.

Files are read through the state object with caps the checkpoint implies: a
checkpoint at most :data:`~audit.logs.checkpoint.MAX_CHECKPOINT_BYTES`, a
``.leaves`` sidecar exactly ``32 * count`` bytes, a ``.jsonl`` at most
:func:`~audit.logs.checkpoint.max_segment_bytes` of ``count``. A larger file is
reported from its size without being read.

What it does not do: it reads only the files of this index (and, to recognise
moved content, the segment it came from), always through the state object; it
does not validate records against a model.
"""

from __future__ import annotations

import hashlib

import orjson
from pydantic import ValidationError

from audit.canonical import is_canonical
from audit.errors import InputError, IntegrityError
from audit.logs.checkpoint import (
    CHECKPOINT_PAYLOAD_TYPE,
    CLOCK_SKEW,
    MAX_CHECKPOINT_BYTES,
    checkpoint_name,
    format_time,
    leaves_bytes,
    leaves_name,
    max_segment_bytes,
    parse_checkpoint_payload,
    segment_name,
)
from audit.logs.merkle import EMPTY_ROOT, HASH_LEN, leaf_hashes, tree_levels
from audit.logs.verify.localise import lines_text, localise
from audit.logs.verify.records import describe_line, non_canonical_lines
from audit.logs.verify.state import MAX_LINE_PROBLEMS, FileTooLarge, SegmentCheck, SegmentContext, refusal
from audit.records import describe_validation_error
from audit.signing.dsse import envelope_bytes, parse_envelope, verify_envelope
from audit.signing.keys import KeyStatus, purpose_for_record_type


def check_checkpoint_envelope(ctx: SegmentContext) -> None:
    """``undecodable-file`` / ``malformed-checkpoint``: not JSON; unreadable, not a DSSE envelope, not canonical."""
    raw = ctx.read(ctx.checkpoint_file, "malformed-checkpoint", MAX_CHECKPOINT_BYTES)
    ctx.checkpoint_raw = raw
    if raw is None:
        if not ctx.problems:  # listed by the layout scan but gone when read
            ctx.problem("checkpoint-missing", f"checkpoint {ctx.checkpoint_file} disappeared")
        ctx.halted = True
        return
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        ctx.problem("undecodable-file", f"{ctx.checkpoint_file} ({len(raw)} bytes) is not decodable JSON: {exc}")
        ctx.halted = True
        return
    try:
        envelope = parse_envelope(raw, path=ctx.checkpoint_file, integrity=True)
    except IntegrityError as exc:
        ctx.problem("malformed-checkpoint", f"{ctx.checkpoint_file}: {exc.reason}")
        ctx.halted = True
        return
    if envelope_bytes(envelope) != raw:
        ctx.problem("malformed-checkpoint", f"{ctx.checkpoint_file}: envelope is not canonical (RFC 8785) JSON")
        ctx.halted = True
        return
    ctx.envelope = envelope


def check_checkpoint_signature(ctx: SegmentContext) -> None:
    """``unknown-key`` / ``bad-signature``: the checkpoint must be signed by a keyring key."""
    envelope = ctx.envelope
    assert envelope is not None
    if envelope.payloadType != CHECKPOINT_PAYLOAD_TYPE:
        ctx.problem("malformed-checkpoint", f"{ctx.checkpoint_file}: unexpected payloadType {envelope.payloadType!r}")
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
        ctx.problem("malformed-checkpoint", f"{ctx.checkpoint_file}: signed body: {describe_validation_error(exc)}")
        ctx.halted = True
        return
    ctx.body = body
    if not is_canonical(payload):
        ctx.problem("malformed-checkpoint", f"{ctx.checkpoint_file}: signed body is not canonical (RFC 8785) JSON")
    if body.key_id != signer:
        ctx.problem(
            "malformed-checkpoint", f"{ctx.checkpoint_file}: body names key {body.key_id} but is signed by {signer}"
        )


def check_checkpoint_time(ctx: SegmentContext) -> None:
    """``checkpoint-in-future`` / ``time-went-backwards``: the signer cannot choose the time freely.

    A checkpoint's ``time`` may lie at most :data:`~audit.logs.checkpoint.CLOCK_SKEW`
    beyond the verifier's clock, and not before the time of the previous checkpoint
    whose signed body was read (along the chain; a checkpoint in the future is not
    taken as the reference, so it is reported once). Key windows are then judged
    at this time (:func:`check_key_status`).
    """
    body = ctx.body
    assert body is not None
    log = ctx.log
    if body.time > log.now + CLOCK_SKEW:
        ctx.problem(
            "checkpoint-in-future",
            f"{ctx.checkpoint_file} is dated {format_time(body.time)}, later than the verifier's clock "
            f"{format_time(log.now.replace(microsecond=0))} plus {int(CLOCK_SKEW.total_seconds() // 60)} minutes",
        )
        return
    last = log.last_time
    if last is not None and body.time < last[1]:
        ctx.problem(
            "time-went-backwards",
            f"{ctx.checkpoint_file} is dated {format_time(body.time)}, before {last[0]} "
            f"({format_time(last[1])}): checkpoint times must not decrease",
        )
    log.last_time = (ctx.checkpoint_file, body.time)


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
        ctx.problem(_STATUS_CODES[status], f"{ctx.checkpoint_file} is signed by key {signer}, {status.value} at {when}")


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
        ctx.problem("segment-moved", f"{ctx.checkpoint_file} names segment file {body.segment.name!r}, not {ctx.name}")
        return
    digest = hashlib.sha256(raw).hexdigest()
    if ctx.log.checkpoint_digests.get(body.index) == digest:
        ctx.problem(
            "segment-replayed",
            f"{ctx.checkpoint_file} is a copy of {checkpoint_name(body.index)}: segment "
            f"{body.index} replayed at index {ctx.index}",
        )
        return
    ctx.problem(
        "segment-moved",
        f"{ctx.checkpoint_file} is the checkpoint of index {body.index} ({body.segment.name}), "
        f"moved to index {ctx.index}",
    )


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
        ctx.problem(
            "equivocation",
            f"{ctx.checkpoint_file} and {seen[0]} are both validly signed for tree size "
            f"{body.tree_size} with different roots ({body.root} / {seen[1]})",
        )
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
        ctx.problem(
            "record-type-mismatch", f"{ctx.checkpoint_file} seals {body.record_type!r} records, expected {expected!r}"
        )


def check_origin(ctx: SegmentContext) -> None:
    """``origin-mismatch``: every checkpoint names the same log origin."""
    body = ctx.body
    assert body is not None
    if ctx.log.origin is None:
        ctx.log.origin = body.origin
    elif body.origin != ctx.log.origin:
        ctx.problem(
            "origin-mismatch",
            f"{ctx.checkpoint_file} has origin {body.origin!r}, earlier checkpoints {ctx.log.origin!r}",
        )


def check_chain(ctx: SegmentContext) -> None:
    """``chain-broken``: ``previous`` is the SHA-256 of the previous checkpoint file."""
    body = ctx.body
    assert body is not None
    if ctx.index == 0:
        if body.previous is not None:
            ctx.problem("chain-broken", f"{ctx.checkpoint_file} is the first checkpoint but names a previous one")
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
        ctx.problem(
            "tree-size-mismatch",
            f"{ctx.checkpoint_file} says the segment starts at leaf {seg.first}, but {builder.size} leaves precede it",
        )
        ctx.log.builder = None
    if body.tree_size != seg.first + seg.count:
        ctx.problem(
            "tree-size-mismatch",
            f"{ctx.checkpoint_file}: tree_size {body.tree_size} != first {seg.first} + count {seg.count}",
        )
        ctx.log.builder = None


def _read_leaves(ctx: SegmentContext, leaves: str, count: int) -> bytes | None:
    """The sidecar's bytes; a sidecar larger than ``32 * count`` is ``leaves-file-tampered``, unread."""
    try:
        return ctx.log.read_bytes(leaves, leaves_bytes(count))
    except FileNotFoundError:
        return None
    except FileTooLarge as exc:
        ctx.problem(
            "leaves-file-tampered",
            f"leaves file {leaves} is {exc.size} bytes, its checkpoint's {count} leaves are {exc.limit} (not read)",
        )
    except (InputError, OSError) as exc:
        ctx.problem("malformed-segment", f"{leaves} {refusal(exc)}")
    return None


def _check_deferred_segment(ctx: SegmentContext, cap: int) -> bool:
    """Whether the segment file is there and readable within ``cap`` (deferred content: not read)."""
    try:
        ctx.log.check_file(ctx.name, cap)
    except FileNotFoundError:
        ctx.problem("segment-missing", f"segment file {ctx.name} is missing")
        return False
    except (InputError, FileTooLarge, OSError) as exc:
        ctx.problem("malformed-segment", f"{ctx.name} {refusal(exc)}")
        return False
    return True


def check_segment_files(ctx: SegmentContext) -> None:
    """``segment-missing`` / ``malformed-segment``: read the segment and its leaves file.

    Each is read only if it is a regular file (not a symlink, FIFO, device...) no larger
    than the checkpoint allows; otherwise it is reported from its type or size, unread.
    With deferred content the segment file is only opened and closed, not read.
    """
    body = ctx.body
    assert body is not None
    count = body.segment.count
    leaves = leaves_name(ctx.index)
    ctx.leaves_raw = _read_leaves(ctx, leaves, count)
    if ctx.log.defer_content:
        if not _check_deferred_segment(ctx, max_segment_bytes(count)):
            return
        if ctx.leaves_raw is None and not ctx.problems_about("malformed-segment", "leaves-file-tampered"):
            ctx.problem("leaves-file-tampered", f"leaves file {leaves} is missing")
        return
    ctx.jsonl_raw = ctx.read(ctx.name, "malformed-segment", max_segment_bytes(count))
    if ctx.jsonl_raw is None and not ctx.problems_about("malformed-segment"):
        also = "" if ctx.leaves_raw is not None else f" (and {leaves})"
        ctx.problem("segment-missing", f"segment file {ctx.name}{also} is missing")
    elif ctx.leaves_raw is None and not ctx.problems_about("malformed-segment", "leaves-file-tampered"):
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
        ctx.problem(
            "leaves-file-tampered",
            f"leaves file {leaves} does not match its checkpoint (sha256 {digest}, signed {seg.leaves_sha256})",
        )
        return
    if len(raw) != seg.count * HASH_LEN:
        ctx.problem(
            "root-mismatch",
            f"signed leaves file {leaves} holds {len(raw) / HASH_LEN:g} leaves, checkpoint count is {seg.count}",
        )
        return
    sealed = [raw[i : i + HASH_LEN] for i in range(0, len(raw), HASH_LEN)]
    levels = tree_levels(sealed) if sealed else [[], [EMPTY_ROOT]]  # an empty log's one empty segment
    if levels[-1][0].hex() != seg.root:
        ctx.problem("root-mismatch", f"signed leaves of {leaves} do not hash to the signed segment root")
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
        in_place = hashlib.sha256(ctx.log.read_bytes(other_name, len(raw))).hexdigest() == digest
    except (OSError, InputError, FileTooLarge):
        in_place = False
    ctx.identified = True
    if in_place:
        ctx.problem(
            "segment-replayed",
            f"{ctx.name} is a copy of sealed segment {other_name}: segment {other} replayed at index {ctx.index}",
        )
    else:
        ctx.problem("segment-moved", f"{ctx.name} holds the sealed content of {other_name}, moved to index {ctx.index}")


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
        ctx.problem("trailing-data", f"{len(tail)} byte(s) after the last newline of {ctx.name}", line=len(lines) + 1)


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
        ctx.problem(
            "undecodable-file",
            f"{ctx.name} is corrupted: {len(bad)} of {len(lines)} line(s) are not UTF-8 JSON "
            f"objects ({lines_text(bad)})",
            line=bad[0],
        )


def check_segment_lines(ctx: SegmentContext) -> None:
    """``event-modified`` / ``event-deleted`` / ``event-inserted`` / ``events-reordered``.

    Aligns the file's line hashes with the signed sidecar to name the lines.
    """
    if ctx.sealed_leaves is None or ctx.line_hashes is None or ctx.identified:
        return
    localise(ctx, ctx.sealed_leaves, ctx.line_hashes)


_CONTENT_CODES = frozenset(
    {
        "event-modified",
        "event-deleted",
        "event-inserted",
        "events-reordered",
        "trailing-data",
        "segment-moved",
        "segment-replayed",
        "undecodable-file",
    }
)


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
        how = "" if ctx.sealed_leaves is not None else "; the leaves file is not usable to localise the change"
        ctx.problem("root-mismatch", f"{ctx.name} does not match its signed sha256{how}")
        return
    if ctx.sealed_leaves is not None:
        return  # lines equal the authentic sidecar, whose root was checked
    levels = tree_levels(hashes) if hashes else None
    if len(hashes) != seg.count or levels is None or levels[-1][0].hex() != seg.root:
        ctx.problem("root-mismatch", f"{ctx.name} matches its signed sha256 but not the signed count/root")
        return
    ctx.trusted_levels = levels


def check_records_canonical(ctx: SegmentContext) -> None:
    """``non-canonical-record``: a sealed record line that is not exactly its RFC 8785 form.

    Checked on a segment file that is the sealed one (its signed digest matches),
    so the hashes verify: the producer sealed bytes that readers may decode
    differently (a duplicate key: one takes the first value, another the last) or
    that are not the canonical form the format requires. A changed file's lines
    are reported as changed instead. At most :data:`MAX_LINE_PROBLEMS` lines are
    listed, the rest counted. Left to the consumer when the log defers it
    (``defer_canonical``); a flagged segment makes the report a full verification's.
    """
    body, lines = ctx.body, ctx.lines
    assert body is not None
    if lines is None or ctx.jsonl_sha256 != body.segment.sha256 or ctx.log.defer_canonical:
        return
    bad = non_canonical_lines(lines)
    for number in bad[:MAX_LINE_PROBLEMS]:
        ctx.problem(
            "non-canonical-record",
            f"line {number} of {ctx.name} is not its RFC 8785 canonical form: {describe_line(lines[number - 1])}",
            number,
        )
    if len(bad) > MAX_LINE_PROBLEMS:
        ctx.problem(
            "non-canonical-record",
            f"... and {len(bad) - MAX_LINE_PROBLEMS} more non-canonical line(s) in {ctx.name} not listed",
        )


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
        ctx.problem(
            "root-mismatch",
            f"{ctx.checkpoint_file}: signed root {body.root} at size {body.tree_size} "
            f"is not the recomputed {root} at size {builder.size}",
        )
        return
    ctx.cumulative_ok = True
    log.verified_size = body.tree_size


SEGMENT_CHECKS: list[SegmentCheck] = [
    check_checkpoint_envelope,
    check_checkpoint_signature,
    check_checkpoint_body,
    check_checkpoint_time,
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
    check_records_canonical,
    check_cumulative_root,
]
