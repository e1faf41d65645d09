"""Waivers (accepted risk): a YAML file saying which findings an approver has accepted, until when.

A waiver names a rule or a commitment (or both), a scope of glob patterns over the
finding's actor, store and event ids (all given must match; none given matches
every finding of the rule/commitment), a reason, an approver and an expiry date.
:class:`WaiverSet` marks matching findings with the waiver's id - a waived finding
is kept and shown as waived, never dropped - and counts what each waiver accepted.
A waiver whose expiry is before the report's date no longer applies and is reported
as expired. The file is copied into the report directory as ``waivers.yaml`` and
is a signed subject. Reading is bounded (:func:`audit.reading.read_bytes`), YAML safe and alias-free.

File format::

    waivers:
      - id: W-2022-001
        rule: store-outside-oci-us      # and/or commitment: C3
        scope: {store: "aws-*"}          # actor, store, event: glob patterns
        reason: analytics copy being migrated, ticket SEC-123
        approver: ciso@example.com
        expires: 2022-12-31
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from fnmatch import fnmatchcase
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from audit.canonical import canonical_bytes
from audit.errors import InputError
from audit.models import CommitmentId, Finding, FindingView, NonEmpty
from audit.reading import read_bytes
from audit.records import MAX_YAML_BYTES, validate, yaml_value
from audit.report.readback import written_finding


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WaiverScope(_Strict):
    """Glob patterns (``fnmatch``, case-sensitive) a finding must all match."""

    actor: str | None = None
    store: str | None = None
    event: str | None = None

    def matches(self, finding: FindingView) -> bool:
        """Whether every pattern given matches the finding (``event``: any of its event ids)."""
        if self.actor is not None and not fnmatchcase(finding.actor_id, self.actor):
            return False
        if self.store is not None and not fnmatchcase(finding.store or "", self.store):
            return False
        return self.event is None or any(fnmatchcase(e, self.event) for e in finding.event_ids)


class Waiver(_Strict):
    """One accepted risk."""

    id: NonEmpty
    rule: str | None = None
    commitment: CommitmentId | None = None
    scope: WaiverScope = Field(default_factory=WaiverScope)
    reason: NonEmpty
    approver: NonEmpty
    expires: date

    @model_validator(mode="after")
    def _names_what_it_waives(self) -> Waiver:
        if self.rule is None and self.commitment is None:
            raise ValueError("a waiver must name a rule or a commitment")
        return self

    def covers(self, finding: FindingView) -> bool:
        """Whether the waiver's rule, commitment and scope match the finding."""
        if self.rule is not None and finding.rule_id != self.rule:
            return False
        if self.commitment is not None and finding.commitment != self.commitment:
            return False
        return self.scope.matches(finding)


class WaiversFile(_Strict):
    """The whole file."""

    waivers: tuple[Waiver, ...]

    @model_validator(mode="after")
    def _unique_ids(self) -> WaiversFile:
        ids = [w.id for w in self.waivers]
        if len(ids) != len(set(ids)):
            raise ValueError("waiver ids must be unique")
        return self


class WaiverStatus(_Strict):
    """What one waiver did in a report (signed in the predicate)."""

    id: str
    rule: str | None = None
    commitment: str | None = None
    reason: str
    approver: str
    expires: date
    expired: bool
    waived: int


class WaiverSet:
    """Waivers in force at a report's date; marks findings and counts what each accepted."""

    def __init__(self, waivers: tuple[Waiver, ...], as_of: datetime) -> None:
        self.waivers = waivers
        self.as_of = as_of.date()
        self._active = [w for w in waivers if w.expires >= self.as_of]
        self.counts: Counter[str] = Counter()

    def apply(self, finding: Finding) -> Finding:
        """The finding, marked with the first active waiver that covers it (file order)."""
        for waiver in self._active:
            if waiver.covers(finding):
                self.counts[waiver.id] += 1
                return finding.model_copy(update={"waiver": waiver.id})
        return finding

    def apply_line(self, line: bytes) -> bytes:
        """A ``findings.jsonl`` line of this tool's, marked as :meth:`apply` marks its finding (unchanged if not).

        A line no waiver covers is passed on after a typed decode
        (:func:`~audit.report.readback.written_finding`); only a covered one (or one
        that does not decode) is validated as a :class:`Finding` and re-encoded.
        """
        if not self._active:
            return line
        view = written_finding(line)
        if view is not None and not any(waiver.covers(view) for waiver in self._active):
            return line
        finding = Finding.model_validate_json(line)
        marked = self.apply(finding)
        return line if marked is finding else canonical_bytes(marked) + b"\n"

    def statuses(self) -> tuple[WaiverStatus, ...]:
        """Each waiver, expired or not, with the findings it accepted."""
        return tuple(
            WaiverStatus(
                id=w.id,
                rule=w.rule,
                commitment=w.commitment,
                reason=w.reason,
                approver=w.approver,
                expires=w.expires,
                expired=w.expires < self.as_of,
                waived=self.counts[w.id],
            )
            for w in self.waivers
        )


def load_waivers(path: Path) -> tuple[tuple[Waiver, ...], bytes]:
    """The waivers of a file and its bytes, read once (InputError naming the file on any problem)."""
    raw = read_bytes(path, max_bytes=MAX_YAML_BYTES)
    try:
        data = yaml_value(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"not a YAML waivers file: {str(exc).splitlines()[0]}", path=path) from None
    if not isinstance(data, dict):
        raise InputError("a waivers file is a mapping with a 'waivers' list", path=path)
    return validate(WaiversFile, data, path=path, line=None).waivers, raw
