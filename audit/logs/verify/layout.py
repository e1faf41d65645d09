"""Layout checks: the directory listing, judged before any segment is read.

What it does: :data:`LAYOUT_CHECKS` run in order over the :class:`LogState` the
verifier's scan filled in (checkpoint indexes, entries of ``segments/`` and
``checkpoints/``, the append journal). They report an empty log and gaps in the
checkpoint numbering, set aside the files of an interrupted append and the
validly signed checkpoints kept under other names (judged later by the final
checks), and report the remaining unexpected entries.

What it does not do: it does not list directories (the scan does, in
:mod:`audit.logs.verify.verifier`) and reads no file except a stray checkpoint,
through the state object.
"""

from __future__ import annotations

from audit.errors import InputError, IntegrityError
from audit.logs.checkpoint import (
    CHECKPOINTS_DIR,
    MAX_CHECKPOINT_BYTES,
    PARTIAL_FILE_RE,
    checkpoint_name,
    segment_name,
)
from audit.logs.trusted import read_checkpoint
from audit.logs.verify.state import FileTooLarge, LayoutCheck, LogState, span


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
                f"{what} {span(start, last, segment_name)} missing together with "
                f"{'its checkpoint' if count == 1 else 'their checkpoints'} "
                f"(a later checkpoint exists)",
                segment_name(start),
            )
            continue
        plural = "checkpoint" if count == 1 else f"{count} consecutive checkpoints"
        log.problem(
            "checkpoint-missing",
            f"{plural} missing: {span(start, last, checkpoint_name)}",
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
            raw = log.read_bytes(name, MAX_CHECKPOINT_BYTES)
            signed = read_checkpoint(raw, log.keyring, path=name, now=log.now)
        except (OSError, InputError, IntegrityError, FileTooLarge):
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
