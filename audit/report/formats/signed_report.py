"""The document of ``report verify``: the signer, each subject check, and the subjects nothing was given for.

Verification happens in the report layer; this only describes its outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.report.formats.interface import Document, Lines
from audit.report.statement import ApprovalsSummary, ReportVerification


def approvals_line(approvals: ApprovalsSummary) -> str:
    """Whether the report's approvals were signature-verified when it was made (from the signed predicate)."""
    if approvals.signature_verified:
        return f"approvals: signature-verified ({approvals.kind}, {approvals.count} approval(s))"
    return f"approvals: NOT signature-verified ({approvals.kind} file, {approvals.count} approval(s))"


@dataclass(frozen=True)
class ReportCheckDocument(Document):
    """``report verify``: one line for the signature, one per subject."""

    result: ReportVerification

    def lines(self) -> Lines:
        result = self.result
        lines: Lines = [f"signature OK (key {result.key_id})", approvals_line(result.statement.predicate.approvals)]
        lines += [f"{'OK  ' if check.ok else 'FAIL'} {check.name}: {check.detail}" for check in result.checks]
        checked = {check.name for check in result.checks}
        lines += [
            f"NOT CHECKED {subject.name}: pass --log, --policy or --approvals to compare it"
            for subject in result.statement.subject
            if subject.name not in checked
        ]
        return lines
