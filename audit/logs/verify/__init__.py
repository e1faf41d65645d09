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
registries hold them — :data:`LAYOUT_CHECKS` (:mod:`.layout`, over the directory
listing, before any segment is read), :data:`SEGMENT_CHECKS` (:mod:`.segment`, over
a :class:`SegmentContext`, one per checkpoint index) and :data:`FINAL_CHECKS`
(:mod:`.final`, after the last segment). :mod:`.state` holds what they share and
the report types, :mod:`.localise` names changed lines, and :mod:`.verifier` runs
it all. A new tamper class is added by writing one function and appending it to
a registry. The problem codes are catalogued in ``docs/log-format.md`` section 9.

The rules :class:`LogVerifier` follows:

* The scan runs first and is the only step that lists the directory: checkpoint
  indexes, entries of ``segments/`` and ``checkpoints/``, the append journal, and
  every numbered checkpoint file read once for its digest and the segment digest
  it claims (unauthenticated hints, used only to recognise moved and replayed
  content). A directory that cannot be listed raises :class:`InputError`; nothing
  later raises for what is inside the log.
* The layout checks run next, in :data:`LAYOUT_CHECKS` order, over the listing
  alone: gaps in the numbering are reported and remembered, files of an
  interrupted append and validly signed checkpoints under other names are set
  aside for the final checks.
* Segments follow strictly in index order, ``0`` to the last checkpoint, one at
  a time. An index without a checkpoint makes the running tree unknown, so no
  later cumulative root can be checked. For an index with one, the
  :data:`SEGMENT_CHECKS` run in order over a fresh :class:`SegmentContext`:
  first authentication (envelope, signature, body, key status), then the
  comparison with the log so far (position, equivocation, record type, origin,
  chain, tree size), then the files (segment, leaves sidecar, lines, roots).
* A segment halts — its remaining checks are skipped — when the checkpoint is
  gone, undecodable, not a canonical DSSE envelope of the checkpoint type, not
  signed by a keyring key, badly signed, carries a malformed body, or names
  another index or segment file. A key with the wrong status does not halt.
  Only a checkpoint without problems so far counts as authentic for later
  comparisons (its root by size, the newest checkpoint).
* A segment is yielded only if it has no problem and its cumulative root was
  recomputed from leaf 0; otherwise the running tree is forgotten and no later
  segment is yielded (they are still checked). Every checkpoint read, verified or
  not, is what the next index must chain to.
* The final checks run last, in :data:`FINAL_CHECKS` order, over what the scan
  and the segments recorded; ``settle_completeness`` comes last and reports
  nothing. The report lists the problems sorted by segment and line (problems
  about the whole log last).
* The checks do no I/O except reading the log's files through the state object
  (:meth:`LogState.read_bytes`, :meth:`LogState.check_file`,
  :meth:`SegmentContext.read`): the checkpoint and segment files of their index,
  the segment that moved content came from, stray checkpoints. They never list,
  write or print. Every read goes through :mod:`audit.reading`: regular files only
  (a FIFO is reported, never waited on), no symlink followed, and a cap the
  checkpoint implies (a larger file is reported from its size, never read).
* What the producer chose is not taken on trust: checkpoint times must not
  decrease nor lie in the future (key windows are judged at the checked time), and
  every sealed record must be its RFC 8785 form even when its hashes verify.

Completeness: deleting the last segments together with their checkpoints leaves
a log that is internally consistent; only a pin (trusted checkpoint or expected
size) can reveal it, and an unpinned log is reported ``unproven``, never plainly
complete (see :mod:`.final`). Deferred content (``defer_content=True``, for
parallel replay) leaves the segment files to whoever reads them, checked with
:func:`segment_lines` (see :mod:`.verifier`).

What it does not do: it does not parse or validate records (consumers parse
:attr:`VerifiedSegment.lines`); it produces no inclusion or consistency proofs
(see :mod:`audit.logs.proofs`); it never prints.
"""

from __future__ import annotations

from audit.logs.checkpoint import CheckpointBody, SegmentInfo
from audit.logs.verify.final import FINAL_CHECKS
from audit.logs.verify.layout import LAYOUT_CHECKS
from audit.logs.verify.segment import SEGMENT_CHECKS
from audit.logs.verify.state import (
    MAX_LINE_PROBLEMS,
    PROBLEM_CODES,
    Completeness,
    LogState,
    Problem,
    SegmentContext,
    VerificationReport,
    VerifiedSegment,
    describe_problems,
)
from audit.logs.verify.verifier import LogVerifier, read_journal, read_segment_file, segment_lines, verify_log

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
    "read_segment_file",
    "segment_lines",
    "verify_log",
]
