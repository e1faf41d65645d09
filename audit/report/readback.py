"""Read back the ``findings.jsonl`` this process has just written, checked against its written digest.

What it does: :func:`read_written_findings` streams the findings of a file that
:meth:`~audit.report.findings.FindingsSpool.write` (or
:func:`~audit.report.waivers.apply_waivers`) wrote a moment ago, hashing the bytes
as it reads them. Each line is decoded by :class:`WrittenFinding`, a typed msgspec
mirror of :class:`~audit.models.Finding` (types, ``Literal`` values, lengths and
bounds as the model states them; the digest covers the rest), and that struct is
what the report's writers read (:class:`~audit.models.FindingView`): no pydantic
model is built and no SHA-256 id recomputed, since the bytes were canonical findings
of validated models when they were written. After the last line the digest and count
must be those the writer computed; otherwise, or if a line does not decode, it raises
:class:`~audit.errors.IntegrityError` naming the file, and the caller publishes nothing
(the pass runs in the staging directory). A test holds every finding equal to the
validated read of :func:`~audit.report.findings.iter_findings`, field by field
(docs/adr/0013-trusted-findings-read-back.md).

What it does not do: read a report from anywhere else. A report handed to
``verify``, ``residency``, ``diff`` and the like may come from an attacker: those
read with :func:`~audit.report.findings.iter_findings`, which validates every field and id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import msgspec

from audit.errors import AuditError, IntegrityError
from audit.models import Severity
from audit.reading import iter_lines, open_regular
from audit.report.findings import WrittenFindings

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


def read_written_findings(written: WrittenFindings) -> Iterator[WrittenFinding]:
    """The findings of ``written.path``, which must still hold the bytes whose digest and count ``written`` states.

    Raises :class:`~audit.errors.IntegrityError` naming the file (and line, for a line
    that does not decode) when it does not; the check of the whole file is made after
    its last finding, so a caller must exhaust the iterator before it publishes anything.
    """
    path = written.path
    digest = hashlib.sha256()
    count = 0
    decode = _DECODER.decode
    with open_regular(path) as fh:
        for number, raw in iter_lines(fh, path=path):
            digest.update(raw)
            count = number
            try:
                finding = decode(raw)
                time = finding.time
                if time.tzinfo is not UTC:  # never in a file this tool wrote ("Z"), kept as the model normalises it
                    finding = _replace(finding, time=time.astimezone(UTC))
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError, OverflowError) as exc:
                # e.g. a time whose UTC instant is outside the calendar: never written by this tool
                raise _changed(written, f"this line is not a finding as written ({exc})", line=number) from None
            yield finding
    if count != written.count or digest.hexdigest() != written.sha256:
        raise _changed(written, f"it holds {count} findings with SHA-256 {digest.hexdigest()}")


@contextmanager
def unchanged_while_read(written: WrittenFindings) -> Iterator[None]:
    """Around a pass that consumes :func:`read_written_findings`: a failure while the file
    no longer holds what was written is an :class:`~audit.errors.IntegrityError` (exit 3).

    A consumer may fail on an altered finding before the read reaches the digest check
    (a commitment the tallies do not know, say); the file is hashed again then, and if
    it changed, that is the error reported. Otherwise the failure is raised as it was.
    """
    try:
        yield
    except IntegrityError:
        raise
    except Exception:
        if not _still_written(written):
            raise _changed(written, "found while the findings were being read") from None
        raise


def _still_written(written: WrittenFindings) -> bool:
    digest = hashlib.sha256()
    count = 0
    try:
        with open_regular(written.path) as fh:
            for count, raw in iter_lines(fh, path=written.path):  # noqa: B007 - the last number is the count
                digest.update(raw)
    except (AuditError, OSError):
        return False
    return count == written.count and digest.hexdigest() == written.sha256


def _changed(written: WrittenFindings, detail: str, line: int | None = None) -> AuditError:
    return IntegrityError(
        f"findings changed after they were written ({written.count} findings, SHA-256 {written.sha256}); {detail}",
        path=written.path,
        line=line,
    )
