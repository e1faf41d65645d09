"""Localisation: name the lines where a segment file departs from its signed leaves.

What it does: aligns the leaf hashes of the file's lines with the authentic
``.leaves`` sidecar and records ``event-modified`` / ``event-deleted`` /
``event-inserted`` / ``events-reordered`` problems on the :class:`SegmentContext`,
each with its 1-based line (and the leaf index it should have held). A change
spread over too many duplicate lines to align exactly is summarised as one range.

What it does not do: it reads no file and does not decide whether the segment
verified (:func:`~audit.logs.verify.segment.check_segment_digest` does).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from difflib import SequenceMatcher

from audit.logs.verify.state import SegmentContext

_EXACT_DIFF_LIMIT = 4_000_000
"""Above this product of differing-region sizes (with duplicate lines) the diff is summarised."""


def lines_text(numbers: Sequence[int]) -> str:
    """``line 3``, ``lines 3-5`` or ``lines 1, 4, 9`` (at most ten listed), for messages."""
    if len(numbers) == 1:
        return f"line {numbers[0]}"
    if list(numbers) == list(range(numbers[0], numbers[-1] + 1)):
        return f"lines {numbers[0]}-{numbers[-1]}"
    shown = ", ".join(str(n) for n in numbers[:10])
    more = f", ... ({len(numbers)} lines)" if len(numbers) > 10 else ""
    return f"lines {shown}{more}"


def localise(ctx: SegmentContext, sealed: list[bytes], actual: list[bytes]) -> None:
    """Name the lines where ``actual`` (file) departs from ``sealed`` (signed leaves)."""
    if sealed == actual:  # the usual case, compared in C
        return
    p, old, new = _differing_region(sealed, actual)
    if not old and not new:
        return
    if Counter(old) == Counter(new):
        _report_reordered(ctx, p, old, new)
        return
    unique = len(set(old)) == len(old) and len(set(new)) == len(new)
    if not unique and len(old) * len(new) > _EXACT_DIFF_LIMIT:
        _report_summary(ctx, p, old, new)
        return
    first = ctx.body.segment.first if ctx.body is not None else 0
    matcher = SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            _report_opcode(ctx, tag, p, first, (i1, i2, j1, j2))


def _differing_region(sealed: list[bytes], actual: list[bytes]) -> tuple[int, list[bytes], list[bytes]]:
    """Length ``p`` of the common prefix, and the sealed and actual lines between it and the common suffix."""
    n, m = len(sealed), len(actual)
    p = 0
    while p < n and p < m and sealed[p] == actual[p]:
        p += 1
    s = 0
    while s < n - p and s < m - p and sealed[n - 1 - s] == actual[m - 1 - s]:
        s += 1
    return p, sealed[p : n - s], actual[p : m - s]


def _report_reordered(ctx: SegmentContext, p: int, old: list[bytes], new: list[bytes]) -> None:
    """``events-reordered``: the differing region holds the sealed records in another order."""
    moved = [p + i + 1 for i in range(len(new)) if new[i] != old[i]]
    ctx.line_problem(
        "events-reordered",
        f"{lines_text(moved)} of {ctx.name} hold sealed records in a different order",
        moved[0],
    )


def _report_summary(ctx: SegmentContext, p: int, old: list[bytes], new: list[bytes]) -> None:
    """One ``event-modified`` over the whole differing region (too large to align exactly)."""
    ctx.line_problem(
        "event-modified",
        f"lines {p + 1}-{p + len(new)} of {ctx.name} differ from sealed lines "
        f"{p + 1}-{p + len(old)} (too many changes to localise each)",
        p + 1,
    )


def _report_opcode(ctx: SegmentContext, tag: str, p: int, first: int, span: tuple[int, int, int, int]) -> None:
    """The problems of one non-equal :class:`SequenceMatcher` opcode (region offset ``p``).

    A ``replace`` pairs sealed and actual lines one to one (modified); what is
    left over on the sealed side was deleted, on the actual side inserted.
    """
    i1, i2, j1, j2 = span
    paired = min(i2 - i1, j2 - j1) if tag == "replace" else 0
    for k in range(paired):
        _report_modified(ctx, p + j1 + k + 1, p + i1 + k + 1, first)
    if i2 - i1 > paired:
        _report_deleted(ctx, p + i1 + paired + 1, p + i2, first, before=p + j2 + 1)
    if j2 - j1 > paired:
        _report_inserted(ctx, p + j1 + paired + 1, p + j2)


def _report_modified(ctx: SegmentContext, line: int, sealed_line: int, first: int) -> None:
    """``event-modified``: ``line`` of the file holds another record than ``sealed_line``."""
    where = "" if line == sealed_line else f" (sealed line {sealed_line})"
    ctx.line_problem(
        "event-modified",
        f"line {line} of {ctx.name} differs from the sealed record{where}, leaf {first + sealed_line - 1}",
        line,
    )


def _report_deleted(ctx: SegmentContext, lo: int, hi: int, first: int, *, before: int) -> None:
    """``event-deleted``: sealed lines ``lo..hi`` are missing before current line ``before``."""
    count = hi - lo + 1
    ctx.line_problem(
        "event-deleted",
        f"{count} sealed record(s) missing from {ctx.name}: sealed "
        f"{lines_text(list(range(lo, hi + 1)))} (leaf {first + lo - 1}"
        f"{'' if count == 1 else f'..{first + hi - 1}'}), "
        f"before current line {before}",
        lo,
    )


def _report_inserted(ctx: SegmentContext, lo: int, hi: int) -> None:
    """``event-inserted``: lines ``lo..hi`` of the file are not in the sealed segment."""
    ctx.line_problem(
        "event-inserted",
        f"{lines_text(list(range(lo, hi + 1)))} of {ctx.name} {'is' if lo == hi else 'are'} not in the sealed segment",
        lo,
    )
