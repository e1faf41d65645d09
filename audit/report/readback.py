"""Read back the ``findings.jsonl`` this process has just written, checked against its written digest.

What it does: :func:`read_written_findings` streams the findings of a file that
:meth:`~audit.report.findings.FindingsSpool.write` (or
:func:`~audit.report.waivers.apply_waivers`) wrote a moment ago, hashing the bytes
as it reads them. Each line is decoded by a typed msgspec mirror of
:class:`~audit.models.Finding` (types, ``Literal`` values, lengths and bounds as the
model states them; the digest covers the rest), and the :class:`~audit.models.Finding` is built without pydantic
validation and without recomputing its SHA-256 id: the bytes were canonical findings
of validated models when they were written. After the last line the digest and count
must be those the writer computed; otherwise, or if a line does not decode, it raises
:class:`~audit.errors.IntegrityError` naming the file, and the caller publishes nothing
(the pass runs in the staging directory). A test holds every finding equal to the
validated read of :func:`~audit.report.findings.iter_findings` (docs/adr/0013-trusted-findings-read-back.md).

What it does not do: read a report from anywhere else. A report handed to
``verify``, ``residency``, ``diff`` and the like may come from an attacker: those
read with :func:`~audit.report.findings.iter_findings`, which validates every field and id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import msgspec
from pydantic import BaseModel

from audit.errors import AuditError, IntegrityError
from audit.models import Finding, LogPosition, PolicyRowRef, Severity
from audit.reading import iter_lines, open_regular
from audit.report.findings import WrittenFindings

_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
_Line = Annotated[int, msgspec.Meta(ge=1)]


class _PolicyRow(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Mirror of :class:`audit.models.PolicyRowRef`."""

    file: _NonEmpty
    line: _Line
    fields: tuple[str, ...]


class _Position(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Mirror of :class:`audit.models.LogPosition`."""

    segment: _NonEmpty
    line: _Line


class _Finding(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
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
    policy_row: _PolicyRow | None = None
    position: _Position | None = None
    store: str | None = None
    region: str | None = None
    actor_country: str | None = None
    waiver: str | None = None
    id: _NonEmpty


_DECODER = msgspec.json.Decoder(_Finding)
_OPTIONAL = ("policy_row", "position", "store", "region", "actor_country", "waiver")
"""Fields written only when not None (``exclude_none``): the others are always in a line."""
_ALWAYS = frozenset(Finding.model_fields) - frozenset(_OPTIONAL)
_ROWS_KEPT = 4_096
"""Policy rows remembered (a report cites few; findings citing one row share its :class:`PolicyRowRef`)."""
_set = object.__setattr__
_asdict = msgspec.structs.asdict
M = TypeVar("M", bound=BaseModel)


def _model(cls: type[M], values: dict[str, Any], fields_set: set[str]) -> M:
    """``cls`` holding ``values``, as :meth:`~pydantic.BaseModel.model_construct` builds it without its field loop."""
    model = object.__new__(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", fields_set)
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


class _Builder:
    """Turns decoded lines into findings; one per read, so its memo of policy rows lives as long as the read."""

    def __init__(self) -> None:
        self._rows: dict[_PolicyRow, PolicyRowRef] = {}

    def _policy_row(self, row: _PolicyRow) -> PolicyRowRef:
        ref = self._rows.get(row)
        if ref is None:
            if len(self._rows) >= _ROWS_KEPT:
                self._rows.clear()
            values = {"file": row.file, "line": row.line, "fields": row.fields}
            ref = self._rows[row] = _model(PolicyRowRef, values, {"file", "line", "fields"})
        return ref

    def finding(self, decoded: _Finding) -> Finding:
        """The :class:`Finding` a validated read gives for the line ``decoded`` came from (its id cached)."""
        values = _asdict(decoded)  # the model's field order, then "id": where Finding.id caches it (not a field)
        fields_set = set(_ALWAYS)
        for name in _OPTIONAL:
            if values[name] is not None:
                fields_set.add(name)
        time = decoded.time
        if time.tzinfo is not UTC:  # never in a file this tool wrote ("Z"), kept as the model normalises it
            values["time"] = time.astimezone(UTC)
        if decoded.policy_row is not None:
            values["policy_row"] = self._policy_row(decoded.policy_row)
        position = decoded.position
        if position is not None:
            values["position"] = _model(
                LogPosition, {"segment": position.segment, "line": position.line}, {"segment", "line"}
            )
        return _model(Finding, values, fields_set)


def read_written_findings(written: WrittenFindings) -> Iterator[Finding]:
    """The findings of ``written.path``, which must still hold the bytes whose digest and count ``written`` states.

    Raises :class:`~audit.errors.IntegrityError` naming the file (and line, for a line
    that does not decode) when it does not; the check of the whole file is made after
    its last finding, so a caller must exhaust the iterator before it publishes anything.
    """
    path = written.path
    digest = hashlib.sha256()
    count = 0
    build = _Builder().finding
    with open_regular(path) as fh:
        for number, raw in iter_lines(fh, path=path):
            digest.update(raw)
            count = number
            try:
                finding = build(_DECODER.decode(raw))
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
