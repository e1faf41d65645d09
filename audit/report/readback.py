"""The findings of the ``findings.jsonl`` this process is writing, decoded as written, for its report files.

What it does: :func:`findings_as_written` takes the lines
:meth:`~audit.report.findings.FindingsSpool.writing` hands on - each one just written
and hashed into the file's digest, which the signed statement names - and decodes each
with :class:`WrittenFinding`, a typed msgspec mirror of :class:`~audit.models.Finding`
(types, ``Literal`` values, lengths and bounds as the model states them). The struct
is what the report's writers read (:class:`~audit.models.FindingView`): no pydantic
model is built, no SHA-256 id recomputed, and the file is not read back, since the
bytes are canonical findings of validated models, in memory since this process wrote
them. A test holds every finding equal to the validated read of
:func:`~audit.report.findings.iter_findings`, field by field
(docs/adr/0013-trusted-findings-read-back.md).

What it does not do: read a report from anywhere else. A report handed to
``verify``, ``residency``, ``diff`` and the like may come from an attacker: those
read with :func:`~audit.report.findings.iter_findings`, which validates every field and id.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import msgspec

from audit.errors import InternalError
from audit.models import Severity

_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
_Line = Annotated[int, msgspec.Meta(ge=1)]


class WrittenPolicyRow(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Mirror of :class:`audit.models.PolicyRowRef`."""

    file: _NonEmpty
    line: _Line
    fields: tuple[str, ...]


class WrittenPosition(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Mirror of :class:`audit.models.LogPosition`."""

    segment: _NonEmpty
    line: _Line


class WrittenFinding(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Mirror of :class:`audit.models.Finding` as written, in its field order, then ``id`` (a test keeps them in step).

    Types, ``Literal`` values, lengths and bounds are the model's; the patterns of
    ``commitment`` and ``id`` are not checked here (the file's digest is), which no
    reader of a finding during the pass depends on.
    """

    rule_id: _NonEmpty
    commitment: _NonEmpty
    severity: Severity
    title: _NonEmpty
    message: _NonEmpty
    remediation: _NonEmpty
    event_ids: tuple[str, ...]
    approval_ids: tuple[str, ...] = ()
    time: datetime
    actor_id: str
    policy_row: WrittenPolicyRow | None = None
    position: WrittenPosition | None = None
    store: str | None = None
    region: str | None = None
    actor_country: str | None = None
    waiver: str | None = None
    id: _NonEmpty


_DECODER = msgspec.json.Decoder(WrittenFinding)
_OPTIONAL = ("policy_row", "position", "store", "region", "actor_country", "waiver")
"""Fields written only when not None (``exclude_none``): the others are always in a line."""
_replace = msgspec.structs.replace


def findings_as_written(lines: Iterable[bytes], path: Path) -> Iterator[WrittenFinding]:
    """The findings of ``lines``, the bytes :meth:`~audit.report.findings.FindingsSpool.writing` is writing to ``path``.

    No read and no second hash: these are the bytes the spool hashed into the file's
    digest. A line that does not decode is a bug (the spool wrote it from a validated
    finding): an :class:`~audit.errors.InternalError` naming the file and line.
    """
    for number, raw in enumerate(lines, 1):
        try:
            finding = _decoded(raw)
        except _NOT_A_FINDING as exc:
            raise InternalError(f"a finding written here does not decode ({exc})", path=path, line=number) from None
        yield finding


_NOT_A_FINDING = (msgspec.DecodeError, msgspec.ValidationError, ValueError, OverflowError)
"""What decoding a line that is not a finding as written raises (an out-of-calendar UTC instant: OverflowError)."""


def written_finding(raw: bytes) -> WrittenFinding | None:
    """``raw`` decoded as a line of this tool's ``findings.jsonl``; None if it is not one (no diagnosis)."""
    try:
        return _decoded(raw)
    except _NOT_A_FINDING:
        return None


def _decoded(raw: bytes) -> WrittenFinding:
    finding = _DECODER.decode(raw)
    time = finding.time
    if time.tzinfo is not UTC:  # never in a file this tool wrote ("Z"), kept as the model normalises it
        finding = _replace(finding, time=time.astimezone(UTC))
    return finding
