"""Cases: findings grouped into the incidents an auditor reads, written as ``cases.jsonl``.

A case is the findings of one rule breaking one commitment for one subject - the
actor, or the store for storage rules (``store_rules``, the caller's: which rules are
about where data sits is the policy pack's to say) - contiguous in time: a
finding more than :data:`CASE_GAP` after the case's last one starts a new case. A case
carries its first and last seen time, finding and event counts, the actors and stores
involved, severity, and the ids of its findings. Every finding is in exactly one case.

What it does not do: judge events (replay does) or sign anything; ``cases.jsonl`` is
a subject of the signed report like ``findings.jsonl``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict

from audit.canonical import canonical_bytes
from audit.models import CommitmentId, Finding, Severity, UtcDatetime
from audit.records import iter_jsonl

CASE_GAP = timedelta(days=7)
"""Findings of one rule, commitment and subject more than this apart belong to different cases."""
SEVERITY_ORDER: tuple[Severity, ...] = ("critical", "high", "medium", "low")

SubjectKind = Literal["actor", "store"]


class Case(BaseModel):
    """One case: contiguous findings of a rule and commitment about one actor or store."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    rule_id: str
    commitment: CommitmentId
    severity: Severity
    title: str
    subject_kind: SubjectKind
    subject: str
    first_seen: UtcDatetime
    last_seen: UtcDatetime
    findings: int
    events: int
    waived: int = 0
    actors: tuple[str, ...]
    stores: tuple[str, ...]
    finding_ids: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What identifies a case across reports: rule, commitment, subject kind and subject."""
        return self.rule_id, self.commitment, self.subject_kind, self.subject


def subject_of(finding: Finding, store_rules: frozenset[str]) -> tuple[SubjectKind, str]:
    """Whom a finding's case is about: its store for ``store_rules`` (rules about where data sits), else its actor."""
    if finding.rule_id in store_rules and finding.store:
        return "store", finding.store
    return "actor", finding.actor_id


def case_id(rule_id: str, commitment: str, kind: str, subject: str, first_finding: str) -> str:
    """``K-`` and 16 hex digits of SHA-256 over ``[rule, commitment, kind, subject, first finding id]``."""
    data = orjson.dumps([rule_id, commitment, kind, subject, first_finding])
    return "K-" + hashlib.sha256(data).hexdigest()[:16]


@dataclass
class _Open:
    """A case being built."""

    first: Finding
    kind: SubjectKind
    subject: str
    last_seen: datetime
    ids: list[str] = field(default_factory=list)
    actors: set[str] = field(default_factory=set)
    stores: set[str] = field(default_factory=set)
    waived: int = 0

    def add(self, finding: Finding) -> None:
        self.ids.append(finding.id)
        self.actors.add(finding.actor_id)
        if finding.store:
            self.stores.add(finding.store)
        self.waived += finding.waiver is not None
        self.last_seen = max(self.last_seen, finding.time)

    def close(self) -> Case:
        f = self.first
        return Case(
            id=case_id(f.rule_id, f.commitment, self.kind, self.subject, f.id),
            rule_id=f.rule_id,
            commitment=f.commitment,
            severity=f.severity,
            title=f.title,
            subject_kind=self.kind,
            subject=self.subject,
            first_seen=f.time,
            last_seen=self.last_seen,
            findings=len(self.ids),
            events=len(set(self.ids)),  # one rule and commitment: a finding id names its events
            waived=self.waived,
            actors=tuple(sorted(self.actors)),
            stores=tuple(sorted(self.stores)),
            finding_ids=tuple(self.ids),
        )


def build_cases(findings: Iterable[Finding], store_rules: frozenset[str], gap: timedelta = CASE_GAP) -> list[Case]:
    """Cases of ``findings`` (in ``findings.jsonl`` order: by time), sorted by first seen, rule and subject.

    Findings of ``store_rules`` (rules about where data sits) group by store, the others by actor.
    """
    open_cases: dict[tuple[str, str, str, str], _Open] = {}
    closed: list[Case] = []
    for finding in findings:
        kind, subject = subject_of(finding, store_rules)
        key = (finding.rule_id, finding.commitment, kind, subject)
        current = open_cases.get(key)
        if current is not None and finding.time - current.last_seen > gap:
            closed.append(current.close())
            current = None
        if current is None:
            current = open_cases[key] = _Open(finding, kind, subject, finding.time)
        current.add(finding)
    closed += [case.close() for case in open_cases.values()]
    closed.sort(key=lambda c: (c.first_seen, c.rule_id, c.commitment, c.subject_kind, c.subject))
    return closed


def cases_lines(cases: Iterable[Case]) -> Iterator[bytes]:
    """``cases.jsonl``, one canonical JSON case per line (streamed: a case lists every finding id)."""
    for case in cases:
        yield canonical_bytes(case) + b"\n"


def iter_cases(path: Path) -> Iterator[Case]:
    """Cases of a ``cases.jsonl`` file, one line at a time (InputError on a bad line)."""
    for _, case in iter_jsonl(path, Case):
        yield case
