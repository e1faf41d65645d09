"""``report diff OLD NEW``: which cases are new, resolved or continuing between two signed reports.

Both reports are verified first (signature, signed time and their own files, so
``cases.jsonl`` is the signed one); a report without ``cases.jsonl`` is an input
error. Cases are matched by what identifies them across reports - rule, commitment,
subject kind and subject (:attr:`~audit.report.cases.Case.key`) - since monthly
reports cut the same incident at different times: several cases of one key in a
report count as one. Nothing is written; the CLI renders the result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from audit.errors import InputError, IntegrityError
from audit.report.cases import Case, iter_cases
from audit.report.formats.interface import JsonDocument, Lines
from audit.report.publish import CASES_FILE
from audit.report.verify import verify_report
from audit.signing.keys import Keyring

CaseKey = tuple[str, str, str, str]


@dataclass(frozen=True)
class CaseGroup:
    """The cases of one key in one report, added up."""

    key: CaseKey
    severity: str
    title: str
    first_seen: datetime
    last_seen: datetime
    findings: int
    case_ids: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        rule, commitment, kind, subject = self.key
        return {
            "rule_id": rule, "commitment": commitment, "subject_kind": kind, "subject": subject,
            "severity": self.severity, "title": self.title, "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(), "findings": self.findings, "case_ids": list(self.case_ids),
        }  # fmt: skip


def group_cases(cases: Iterable[Case]) -> dict[CaseKey, CaseGroup]:
    """Cases by key, in first-seen order."""
    groups: dict[CaseKey, CaseGroup] = {}
    for c in cases:
        old = groups.get(c.key)
        if old is None:
            groups[c.key] = CaseGroup(c.key, c.severity, c.title, c.first_seen, c.last_seen, c.findings, (c.id,))
            continue
        groups[c.key] = CaseGroup(
            c.key, old.severity, old.title, min(old.first_seen, c.first_seen), max(old.last_seen, c.last_seen),
            old.findings + c.findings, (*old.case_ids, c.id),
        )  # fmt: skip
    return groups


@dataclass(frozen=True)
class ReportDiff(JsonDocument):
    """New, resolved and continuing cases of NEW against OLD."""

    old: Path
    new: Path
    new_cases: tuple[CaseGroup, ...]
    resolved: tuple[CaseGroup, ...]
    continuing: tuple[CaseGroup, ...]

    def lines(self) -> Lines:
        out: Lines = [
            f"{len(self.new_cases)} new, {len(self.resolved)} resolved, {len(self.continuing)} continuing case(s) "
            f"({self.old} -> {self.new})"
        ]
        for label, groups in (("NEW", self.new_cases), ("RESOLVED", self.resolved), ("CONTINUING", self.continuing)):
            for g in groups:
                rule, commitment, kind, subject = g.key
                out.append(
                    f"{label:<10} {commitment} {rule} {kind} {subject}: {g.findings} finding(s), "
                    f"{g.first_seen.isoformat()} to {g.last_seen.isoformat()}"
                )
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "old": str(self.old),
            "new": str(self.new),
            "counts": {"new": len(self.new_cases), "resolved": len(self.resolved), "continuing": len(self.continuing)},
            "new_cases": [g.to_json() for g in self.new_cases],
            "resolved": [g.to_json() for g in self.resolved],
            "continuing": [g.to_json() for g in self.continuing],
        }


def _verified_cases(report: Path, keyring: Keyring) -> dict[CaseKey, CaseGroup]:
    result = verify_report(report, keyring)
    if not result.ok:
        failed = next(c for c in result.checks if not c.ok)
        raise IntegrityError(f"report does not verify: {failed.name}: {failed.detail}", path=report)
    path = report.parent / CASES_FILE
    if not path.is_file():
        raise InputError(f"report has no {CASES_FILE} (made by an older version: replay it again)", path=report)
    return group_cases(iter_cases(path))


def diff_reports(old: Path, new: Path, keyring: Keyring) -> ReportDiff:
    """Verify both reports, then compare their cases by key."""
    before, after = _verified_cases(old, keyring), _verified_cases(new, keyring)
    return ReportDiff(
        old,
        new,
        tuple(g for k, g in after.items() if k not in before),
        tuple(g for k, g in before.items() if k not in after),
        tuple(g for k, g in after.items() if k in before),
    )
