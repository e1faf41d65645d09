"""Final checks: completeness and what only the whole log can show, after the last segment.

What it does: :data:`FINAL_CHECKS` run in order over the :class:`LogState` left by
the segments. They report an interrupted append, segment files no checkpoint
accounts for, stray checkpoints and the trusted checkpoint that contradict the
log (equivocation, fork), rollback and tail truncation, and finally settle
:class:`Completeness`.

Completeness: deleting the last segments together with their checkpoints leaves
a log that is internally consistent. Only a pin can reveal it — a trusted
checkpoint (:class:`~audit.logs.trusted.SignedCheckpoint`, which also reveals
rollback and equivocation) or an expected size. The report's ``completeness``
says whether the log was proven complete up to the pin, failed it, or was not
pinned (``unproven``); an unpinned log is never reported as plainly complete.

What it does not do: it reads no file; everything it judges was recorded by the
scan, the layout checks and the segment checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.logs.checkpoint import JOURNAL_FILE, MAX_SEGMENTS, SEGMENT_FILE_RE, CheckpointBody, segment_name
from audit.logs.verify.state import Completeness, FinalCheck, LogState, span


def check_unreferenced_segments(log: LogState) -> None:
    """``unreferenced-segment``: entries of ``segments/`` that no checkpoint can account for.

    That is every misnamed entry and every segment file beyond the last
    checkpoint. (Files of an index below it either have a checkpoint, which
    names exactly that file, or belong to a gap reported as missing.)
    """
    for name, index in sorted(log.segment_files.items()):
        if index is not None and index < log.end:
            continue
        log.problem("unreferenced-segment", f"{name} is not referenced by any checkpoint", name)


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
        log.problem(
            "append-interrupted",
            f"{JOURNAL_FILE} is present but unreadable ({log.journal_error}): an append was "
            f"interrupted; files not covered by a checkpoint: {', '.join(log.pending_files) or 'none'}",
            _first_missing(log),
        )
        return
    journal = log.journal
    if journal is None:
        return
    done = min(max(log.newest_size - journal.start_tree_size, 0), journal.records)
    pending = ", ".join(log.pending_files) or "none"
    segment = next((n for n in log.pending_files if SEGMENT_FILE_RE.match(n.rpartition("/")[2])), _first_missing(log))
    log.problem(
        "append-interrupted",
        f"append of {journal.source_name} ({journal.records} records, sha256 {journal.source_sha256}, "
        f"started {journal.started.strftime('%Y-%m-%dT%H:%M:%SZ')} at size {journal.start_tree_size}) "
        f"was interrupted after {done} of {journal.records} records were checkpointed; written but not "
        f"checkpointed: {pending}; resume with `residency-audit log append` and the same file",
        segment,
    )


@dataclass(frozen=True)
class _Contradiction:
    """How the log contradicts a signed root claimed for one of its sizes."""

    code: str
    """``equivocation`` (a checkpoint of the log has another root) or ``fork`` (the records hash to another)."""
    root: str
    """The log's root at that size: the other checkpoint's, or the recomputed one."""
    checkpoint: str | None = None
    """For ``equivocation``: the log's checkpoint file for that size."""
    segment: str | None = None
    """For ``equivocation``: that checkpoint's segment."""


def _contradiction(log: LogState, size: int, root: str) -> _Contradiction | None:
    """Compare ``root``, signed for tree ``size``, with the log; None if the log does not contradict it.

    An authenticated checkpoint of the log for that size with another root comes
    first (equivocation); else the root the log's own records hash to at that
    size, if the running tree passed through it (fork).
    """
    seen = log.signed_roots.get(size)
    if seen is not None and seen[1] != root:
        return _Contradiction("equivocation", seen[1], seen[0], seen[2])
    computed = log.roots_at.get(size)
    if computed is not None and computed != root:
        return _Contradiction("fork", computed)
    return None


def check_stray_checkpoints(log: LogState) -> None:
    """``equivocation`` / ``fork``: a validly signed checkpoint in ``checkpoints/`` that contradicts the log.

    Same size and a different root than a checkpoint of the log is
    equivocation; a root that the log's own records do not hash to at that size
    is a fork. Stray checkpoints that agree with the log are ``unexpected-file``.
    """
    for name, body in log.stray:
        size = body.tree_size
        if log.origin is not None and body.origin != log.origin:
            log.problem(
                "unexpected-file",
                f"unexpected entry {name}: a validly signed checkpoint of another log ({body.origin!r})",
            )
            continue
        found = _contradiction(log, size, body.root)
        if found is None:
            what = "agrees with the log" if size in log.roots_at else "is for a size the log was not verified to"
            log.problem(
                "unexpected-file", f"unexpected entry {name}: a validly signed checkpoint (size {size}) that {what}"
            )
        elif found.code == "equivocation":
            log.problem(
                "equivocation",
                f"{name} and {found.checkpoint} are both validly signed for tree size {size} of "
                f"{body.origin!r} with different roots ({body.root} / {found.root})",
                found.segment,
            )
        else:
            log.problem(
                "fork",
                f"{name} is validly signed for tree size {size} with root {body.root}, but the "
                f"log's first {size} records hash to {found.root}",
            )


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
        log.pin_problem(
            "origin-mismatch",
            f"trusted checkpoint {trusted.path} is for origin {body.origin!r}, the log is {log.origin!r}",
        )
        return
    found = _contradiction(log, size, body.root)
    if found is None:
        return
    if found.code == "equivocation":
        log.pin_problem(
            "equivocation",
            f"trusted checkpoint {trusted.path} and {found.checkpoint} are both validly signed for "
            f"tree size {size} with different roots ({body.root} / {found.root}): the producer "
            f"equivocated",
            found.segment,
        )
    else:
        log.pin_problem(
            "fork",
            f"the log's first {size} records hash to {found.root}, not to the root {body.root} of "
            f"trusted checkpoint {trusted.path}: the log was rewritten, not extended",
        )


def check_rollback(log: LogState) -> None:
    """``rollback``: the newest checkpoint is older than the trusted one (smaller and sealed earlier)."""
    trusted, newest = log.trusted, log.newest
    if trusted is None or newest is None:
        return
    name, body = newest
    if body.tree_size < trusted.tree_size and body.time < trusted.body.time:
        log.pin_problem(
            "rollback",
            f"the newest checkpoint {name} (size {body.tree_size}, sealed {_when(body)}) is older "
            f"than trusted checkpoint {trusted.path} (size {trusted.tree_size}, sealed "
            f"{_when(trusted.body)}): the log was rolled back to an earlier state",
            _first_missing(log),
        )


def check_tail_truncation(log: LogState) -> None:
    """``tail-truncated``: the log ends before a pinned size (trusted checkpoint or expected size)."""
    size = log.newest_size
    where = (
        f"its newest authenticated checkpoint {log.newest[0]}"
        if log.newest is not None
        else "it has no authenticated checkpoint"
    )
    pins: list[tuple[int, str]] = []
    if log.trusted is not None:
        trusted = log.trusted
        gone = ""
        if trusted.body.index >= log.end:
            count = trusted.body.index - log.end + 1
            gone = (
                f"; {span(log.end, trusted.body.index, segment_name)} "
                f"({count} segment(s)) and {'its' if count == 1 else 'their'} checkpoint(s) are gone"
            )
        pins.append((trusted.tree_size, f"trusted checkpoint {trusted.path} is at size {trusted.tree_size}{gone}"))
    if log.expected_size is not None:
        pins.append((log.expected_size, f"at least {log.expected_size} records were expected"))
    for pinned, why in pins:
        if size < pinned:
            log.pin_problem(
                "tail-truncated",
                f"the log is truncated: {pinned - size} record(s) missing at the end — it reaches "
                f"size {size} ({where}), but {why}",
                _first_missing(log),
            )


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
            "together with their checkpoints would not be detected"
        )
        return
    if log.pin_failed:
        log.completeness = Completeness.failed
        log.completeness_detail = f"the log contradicts its pin(s): {', '.join(log.pin_failed)}"
        return
    for size, label, root in pins:
        if size > log.verified_size or (root is not None and log.roots_at.get(size) != root):
            log.completeness = Completeness.unproven
            log.completeness_detail = (
                f"the log could not be verified from its first record up to the size pinned by {label} ({size})"
            )
            return
    log.completeness = Completeness.proven
    log.completeness_detail = (
        f"the log holds every record up to size {max(p[0] for p in pins)} "
        f"({'; '.join(p[1] for p in pins)}); it verifies to size {log.verified_size}"
    )


FINAL_CHECKS: list[FinalCheck] = [
    check_interrupted_append,
    check_unreferenced_segments,
    check_stray_checkpoints,
    check_trusted_consistency,
    check_rollback,
    check_tail_truncation,
    settle_completeness,
]
