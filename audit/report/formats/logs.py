"""Documents of the ``log`` commands: a log verification, and a check of an inclusion or consistency proof.

Text is what a person reads in CI logs (``OK``/``FAIL`` lines with the problem
codes); JSON is one compact line per result. Verification itself happens in
:mod:`audit.logs`; these documents only describe its outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.logs.verify import Completeness, Problem, VerificationReport
from audit.report.formats.interface import JsonDocument, Lines


def problems_json(problems: Sequence[Problem]) -> list[dict[str, Any]]:
    """Verification problems as JSON."""
    return [{"code": p.code, "segment": p.segment, "line": p.line, "message": p.message} for p in problems]


def verification_status(report: VerificationReport) -> str:
    """``failed``, ``verified``, or ``verified-completeness-unproven``."""
    if not report.ok:
        return "failed"
    return "verified" if report.completeness is Completeness.proven else "verified-completeness-unproven"


@dataclass(frozen=True)
class LogVerificationDocument(JsonDocument):
    """``log verify``: the outcome of verifying one sealed log."""

    indent_json = False
    log: str | Path
    report: VerificationReport

    def lines(self) -> Lines:
        report, logdir = self.report, self.log
        completeness = f"completeness {report.completeness.value.upper()}: {report.completeness_detail}"
        if report.ok:
            head = "OK" if report.completeness is Completeness.proven else "OK (completeness UNPROVEN)"
            return [
                f"{head} {logdir}: {report.tree_size} records in {report.segments} segment(s), root {report.root}",
                completeness,
            ]
        lines: Lines = []
        for p in report.problems:
            where = p.segment or str(logdir)
            if p.line is not None:
                where += f":{p.line}"
            lines.append(f"FAIL {where}: {p.code}: {p.message}")
        return [*lines, f"{len(report.problems)} problem(s) in {logdir}", completeness]

    def to_json(self) -> dict[str, Any]:
        report = self.report
        return {
            "log": str(self.log),
            "ok": report.ok,
            "status": verification_status(report),
            "completeness": report.completeness.value,
            "completeness_detail": report.completeness_detail,
            "tree_size": report.tree_size,
            "root": report.root,
            "segments": report.segments,
            "origin": report.origin,
            "record_type": report.record_type,
            "problems": problems_json(report.problems),
        }


@dataclass(frozen=True)
class ProofCheckDocument(JsonDocument):
    """``log verify-inclusion`` / ``verify-consistency``: the problems found in one proof."""

    indent_json = False
    subject: str
    problems: Sequence[Problem]
    details: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> Lines:
        if not self.problems:
            return [f"OK {self.subject}"]
        return [f"FAIL {self.subject}: {p.code}: {p.message}" for p in self.problems]

    def to_json(self) -> dict[str, Any]:
        return {"ok": not self.problems, **self.details, "problems": problems_json(self.problems)}
