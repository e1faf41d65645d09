"""Documents of the ``policy`` commands: lint, test, prove and diff results in text, JSON, SARIF and JUnit.

Each document wraps a result of :mod:`audit.policy` with the options that change
how it reads (the coverage minimum, ``--allow-new-access``) and builds the shapes
the formats ask for. It decides nothing about exit codes and runs no checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text

from audit.policy.diagnostics import Diagnostic, Level, diagnostic
from audit.policy.diff import DiffReport
from audit.policy.lint import LintReport
from audit.policy.pack import Decision, PolicyRow
from audit.policy.prove import ProofReport
from audit.policy.testing import TestReport
from audit.report.formats.interface import DiagnosticDocument, JUnitDocument, Lines
from audit.report.junit import JUnitCase, render_junit

_STYLE = {"error": "bold red", "warning": "yellow", "note": "cyan"}
_LEVELS = ("error", "warning", "note")


def diagnostic_lines(diagnostics: Sequence[Diagnostic]) -> Lines:
    """``file:line:column: severity [check] message``, the severity coloured."""
    lines: Lines = []
    for diag in diagnostics:
        line = Text(f"{diag.where()}: ")
        line.append(diag.severity, style=_STYLE[diag.severity])
        line.append(f" [{diag.check}] {diag.message}")
        lines.append(line)
    return lines


def diagnostic_json(diag: Diagnostic) -> dict[str, Any]:
    """One diagnostic as JSON."""
    return {
        "check": diag.check,
        "severity": diag.severity,
        "message": diag.message,
        "file": diag.file,
        "line": diag.line,
        "column": diag.column,
    }


def row_json(row: PolicyRow) -> dict[str, Any]:
    """A policy row as JSON."""
    return {"file": row.file, "line": row.line, "fields": list(row.fields)}


def decision_json(decision: Decision) -> dict[str, Any]:
    """An enforcer decision as JSON: the outcome, the commitment and the deciding row."""
    row = decision.row
    return {
        "allowed": decision.allowed,
        "commitment": decision.commitment,
        "rule": decision.rule_id,
        "row": None if row is None else row_json(row),
    }


@dataclass(frozen=True)
class LintDocument(DiagnosticDocument):
    """``policy lint``: every problem in the linted files."""

    command = "lint"
    report: LintReport

    def counts(self) -> dict[str, int]:
        """Diagnostics per severity (errors, warnings, notes)."""
        return {level: sum(1 for d in self.report.diagnostics if d.severity == level) for level in _LEVELS}

    def summary(self) -> str:
        counts = self.counts()
        return (
            f"{len(self.report.files)} file(s) linted: {counts['error']} error(s), {counts['warning']} "
            f"warning(s), {counts['note']} note(s)"
        )

    def diagnostics(self) -> Sequence[Diagnostic]:
        return self.report.diagnostics

    def lines(self) -> Lines:
        summary = self.summary()
        return [*diagnostic_lines(self.report.diagnostics), summary if self.report.diagnostics else f"OK: {summary}"]

    def to_json(self) -> dict[str, Any]:
        return {
            "files": list(self.report.files),
            "summary": self.counts(),
            "diagnostics": [diagnostic_json(d) for d in self.report.diagnostics],
        }


@dataclass(frozen=True)
class TestDocument(JUnitDocument):
    """``policy test``: case results and p-row coverage against a minimum."""

    __test__ = False
    command = "test"
    report: TestReport
    min_coverage: float
    directory: Path

    @property
    def below_minimum(self) -> bool:
        """Whether row coverage is below the minimum asked for."""
        return self.report.coverage < self.min_coverage

    def summary(self) -> str:
        report = self.report
        return (
            f"{len(report.results)} case(s), {len(report.failed)} failed; row coverage {report.coverage:.1f}% "
            f"({len(report.p_rows) - len(report.uncovered)}/{len(report.p_rows)} p rows)"
        )

    def diagnostics(self) -> Sequence[Diagnostic]:
        report = self.report
        found = [
            diagnostic(
                "test-failed", f"case {r.located.case.name!r}: {'; '.join(r.problems)}", r.located.file, r.located.line
            )
            for r in report.failed
        ]
        found += [
            diagnostic(
                "row-not-covered", f"no case is decided by this row (priority {row.fields[0]})", row.file, row.line
            )
            for row in report.uncovered
        ]
        if self.below_minimum:
            found.append(
                diagnostic(
                    "coverage-below-minimum",
                    f"row coverage {report.coverage:.1f}% is below the minimum {self.min_coverage:.1f}%",
                    str(report.pack.files[1]),
                )
            )
        return found

    def lines(self) -> Lines:
        below = f", below the minimum {self.min_coverage:.1f}%" if self.below_minimum else ""
        return [*diagnostic_lines(self.diagnostics()), self.summary() + below]

    def to_json(self) -> dict[str, Any]:
        report = self.report
        return {
            "summary": {
                "cases": len(report.results),
                "failed": len(report.failed),
                "coverage": report.coverage,
                "min_coverage": self.min_coverage,
            },
            "cases": [
                {
                    "name": r.located.case.name,
                    "file": r.located.file,
                    "line": r.located.line,
                    "request": list(r.located.case.request),
                    "passed": r.passed,
                    "problems": list(r.problems),
                    "decision": decision_json(r.decision),
                }
                for r in report.results
            ],
            "uncovered_rows": [row_json(row) for row in report.uncovered],
        }

    def junit(self) -> bytes:
        report, minimum = self.report, self.min_coverage
        cases = [
            JUnitCase(
                r.located.case.name,
                Path(r.located.file).name,
                r.seconds,
                "; ".join(r.problems) or None,
                r.located.file,
                r.located.line,
            )
            for r in report.results
        ]
        uncovered = "\n".join(
            f"{row.file}:{row.line}: p row {row.fields[0]} decides no case" for row in report.uncovered
        )
        cases.append(
            JUnitCase(
                f"row coverage >= {minimum:.1f}%",
                "coverage",
                0.0,
                f"row coverage {report.coverage:.1f}% is below {minimum:.1f}%\n{uncovered}"
                if self.below_minimum
                else None,
            )
        )
        return render_junit(f"policy test {self.directory}", cases, {"row_coverage": f"{report.coverage:.1f}"})


@dataclass(frozen=True)
class ProveDocument(DiagnosticDocument):
    """``policy prove``: each invariant over the whole declared domain, with counterexamples."""

    command = "prove"
    report: ProofReport

    def summary(self) -> str:
        report = self.report
        held = sum(1 for r in report.results if r.holds)
        return (
            f"{held}/{len(report.results)} invariant(s) hold over {report.domain_size} request(s) of the "
            f"domain; {len(report.gaps)} domain gap(s)"
        )

    def diagnostics(self) -> Sequence[Diagnostic]:
        return self.report.diagnostics()

    def lines(self) -> Lines:
        lines = diagnostic_lines(self.report.gaps)
        for result in self.report.results:
            invariant = result.spec.invariant
            status = Text("PROVED " if result.holds else "FAILED ", style="green" if result.holds else "bold red")
            status.append(f"{invariant.id} ({invariant.commitment}): {invariant.title} [{result.checked} request(s)]")
            lines.append(status)
        lines += diagnostic_lines([d for d in self.report.diagnostics() if d.check == "invariant-violated"])
        lines.append(self.summary())
        return lines

    def to_json(self) -> dict[str, Any]:
        report = self.report
        fields = report.pack.request_fields
        return {
            "summary": {"ok": report.ok, "domain_size": report.domain_size},
            "gaps": [diagnostic_json(d) for d in report.gaps],
            "invariants": [
                {
                    "id": r.spec.invariant.id,
                    "commitment": r.spec.invariant.commitment,
                    "title": r.spec.invariant.title,
                    "holds": r.holds,
                    "checked": r.checked,
                    "counterexamples": [
                        {"request": dict(zip(fields, c.request, strict=True)), "decision": decision_json(c.decision)}
                        for c in r.counterexamples
                    ],
                }
                for r in report.results
            ],
        }


def _downgrade(severity: Level) -> Level:
    return "warning" if severity == "error" else severity


@dataclass(frozen=True)
class DiffDocument(DiagnosticDocument):
    """``policy diff``: requests whose decision changes; new access is an error unless it is intended."""

    command = "diff"
    report: DiffReport
    allow_new_access: bool = False

    def counts(self) -> dict[str, int]:
        """Changes per kind, in order of first appearance."""
        counts: dict[str, int] = {}
        for change in self.report.changes:
            counts[change.kind] = counts.get(change.kind, 0) + 1
        return counts

    def summary(self) -> str:
        counts = self.counts()
        return (
            f"{self.report.compared} request(s) compared: {counts.get('new-access', 0)} newly allowed, "
            f"{counts.get('access-removed', 0)} newly denied, {counts.get('reason-changed', 0)} denied for "
            "another reason"
        )

    def diagnostics(self) -> Sequence[Diagnostic]:
        diagnostics = self.report.diagnostics()
        if not self.allow_new_access:
            return diagnostics
        return [Diagnostic(d.check, _downgrade(d.severity), d.message, d.file, d.line, d.column) for d in diagnostics]

    def lines(self) -> Lines:
        return [*diagnostic_lines(self.diagnostics()), self.summary()]

    def _decision(self, decision: Decision) -> dict[str, Any]:
        shown = decision_json(decision)
        if shown["row"] is not None:  # a git export's temporary directory is gone: name the REV:PATH
            shown["row"]["file"] = self.report.shown(shown["row"]["file"])
        return shown

    def to_json(self) -> dict[str, Any]:
        report = self.report
        fields = report.new.request_fields
        return {
            "old": report.old_label,
            "new": report.new_label,
            "compared": report.compared,
            "summary": self.counts(),
            "changes": [
                {
                    "kind": c.kind,
                    "request": dict(zip(fields, c.request, strict=True)),
                    "old": self._decision(c.old),
                    "new": self._decision(c.new),
                }
                for c in report.changes
            ],
        }
