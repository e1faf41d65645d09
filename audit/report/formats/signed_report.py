"""The document of ``report verify``: one verdict line, the signer, what the report claims, each check.

Verification happens in the report layer; this only describes its outcome. Checks
nothing was requested for are listed as not checked, each with the flag that
would check it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from audit.report.formats.interface import JsonDocument, Lines
from audit.report.statement import ApprovalsSummary, Predicate, ReportVerification

#: Flag that compares each kind of subject (by name prefix) or turns a claim into a check.
_SUBJECT_FLAGS = (("log:", "--log LOGDIR"), ("policy/", "--policy DIR"), ("approvals", "--approvals SOURCE"))
CLAIM_CHECKS = {"completeness": "--require-complete", "approvals-trust": "--require-signed-approvals"}


def approvals_line(approvals: ApprovalsSummary) -> str:
    """Whether the report's approvals were signature-verified when it was made (from the signed predicate)."""
    if approvals.signature_verified:
        return f"approvals: signature-verified ({approvals.kind}, {approvals.count} approval(s))"
    return f"approvals: NOT signature-verified ({approvals.kind} file, {approvals.count} approval(s))"


def _flag_for(name: str) -> str:
    return next((flag for prefix, flag in _SUBJECT_FLAGS if name.startswith(prefix)), "the matching option")


def claims(pred: Predicate) -> dict[str, Any]:
    """What the signed report claims: period, events, findings and cases, completeness, verdicts."""
    period = pred.period
    return {
        "period": {
            "first_event": period.first_event.isoformat() if period and period.first_event else None,
            "last_event": period.last_event.isoformat() if period and period.last_event else None,
        },
        "events": pred.summary.events,
        "findings": pred.summary.findings,
        "cases": pred.summary.cases,
        "completeness": pred.log.completeness,
        "completeness_detail": pred.log.completeness_detail,
        "approvals_signature_verified": pred.approvals.signature_verified,
        "commitments": [
            {"id": v.id, "verdict": v.verdict, "cases": v.cases, "events": v.events, "findings": v.findings}
            for v in pred.verdicts
        ]
        or [{"id": cid, "findings": n} for cid, n in pred.summary.by_commitment.items()],
    }


@dataclass(frozen=True)
class ReportCheckDocument(JsonDocument):
    """``report verify``: verdict, signer, claims, one line per check, then what was not checked."""

    result: ReportVerification
    label: str | None = None

    def not_checked(self) -> list[tuple[str, str]]:
        """``(subject or claim, flag that would check it)`` for everything not checked."""
        checked = {check.name for check in self.result.checks}
        out = [(s.name, _flag_for(s.name)) for s in self.result.statement.subject if s.name not in checked]
        out += [(name, flag) for name, flag in CLAIM_CHECKS.items() if name not in checked]
        return out

    def lines(self) -> Lines:
        result, pred = self.result, self.result.statement.predicate
        failed = sum(not c.ok for c in result.checks)
        c = claims(pred)
        period = c["period"]
        lines: Lines = [
            "VERIFIED" if result.ok else f"FAILED ({failed} check(s) failed)",
            f"signer: {self.label or 'unlabelled key'} (key {result.key_id}); signature OK",
            f"generated_at: {pred.generated_at.isoformat()}",
            f"claims: period {period['first_event'] or 'n/a'} to {period['last_event'] or 'n/a'}; "
            f"{c['events']} events; {c['findings']} findings in {c['cases'] if c['cases'] is not None else 'n/a'} "
            f"cases; completeness {pred.log.completeness.upper()}",
            approvals_line(pred.approvals),
        ]
        lines += [f"  {v['id']}: {v.get('verdict', '')} {_counts(v)}".rstrip() for v in c["commitments"]]
        lines += [f"{'OK  ' if check.ok else 'FAIL'} {check.name}: {check.detail}" for check in result.checks]
        lines += [f"NOT CHECKED {name}: pass {flag} to check it" for name, flag in self.not_checked()]
        return lines

    def to_json(self) -> dict[str, Any]:
        result, pred = self.result, self.result.statement.predicate
        return {
            "verdict": "VERIFIED" if result.ok else "FAILED",
            "signer": {"key_id": result.key_id, "label": self.label},
            "generated_at": pred.generated_at.isoformat(),
            "claims": claims(pred),
            "checks": [{"name": ch.name, "ok": ch.ok, "detail": ch.detail} for ch in result.checks],
            "not_checked": [{"name": name, "flag": flag} for name, flag in self.not_checked()],
        }


def _counts(row: dict[str, Any]) -> str:
    if "cases" not in row:
        return f"({row['findings']} findings)"
    return f"({row['cases']} cases, {row['events']} events, {row['findings']} findings)"
