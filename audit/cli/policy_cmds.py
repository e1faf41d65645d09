"""``residency-audit policy ...``: lint, test, prove and diff policy packs for CI.

Every command takes ``--format`` (text, json, sarif; ``test`` also junit) and
``--output FILE`` (written atomically; without it the report goes to stdout).
Exit codes: 0 clean, 1 findings (lint problems, failing cases or coverage, failing
invariants, new access), 2 usage or input errors, 3 internal errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.text import Text

from audit.cli.console import out
from audit.errors import EXIT_CLEAN, EXIT_VIOLATIONS
from audit.fsio import atomic_write
from audit.policy.diagnostics import CHECKS, LEVEL_RANK, Diagnostic, Level, diagnostic
from audit.policy.diff import DiffReport, diff
from audit.policy.lint import lint_paths
from audit.policy.pack import Decision
from audit.policy.prove import prove
from audit.policy.testing import TestReport, run_tests
from audit.replay.rules import rule_commitments
from audit.report.junit import JUnitCase, render_junit
from audit.report.sarif import render_sarif

policy_app = typer.Typer(help="Lint, test, prove and diff policy packs (for CI).", no_args_is_help=True)

_STYLE = {"error": "bold red", "warning": "yellow", "note": "cyan"}


class Format(StrEnum):
    """Report formats of lint, prove and diff."""

    text = "text"
    json = "json"
    sarif = "sarif"


class TestFormat(StrEnum):
    """Report formats of ``policy test``."""

    __test__ = False
    text = "text"
    json = "json"
    junit = "junit"
    sarif = "sarif"


class FailOn(StrEnum):
    """Lowest severity that makes ``policy lint`` exit 1."""

    error = "error"
    warning = "warning"
    note = "note"


FormatOption = Annotated[Format, typer.Option("--format", help="Report format.")]
OutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write a json/sarif/junit report to this file (atomically) instead of stdout."),
]


def _emit(data: bytes, output: Path | None, summary: str) -> None:
    if output is None:
        out.print(data.decode("utf-8").rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
        return
    atomic_write(output, data)
    out.print(f"{summary}; report written to {output}", markup=False)


def _print_diagnostics(diagnostics: Sequence[Diagnostic]) -> None:
    for diag in diagnostics:
        line = Text(f"{diag.where()}: ")
        line.append(diag.severity, style=_STYLE[diag.severity])
        line.append(f" [{diag.check}] {diag.message}")
        out.print(line)


def _sarif(diagnostics: Sequence[Diagnostic], command: str) -> bytes:
    return render_sarif(diagnostics, CHECKS, root=Path.cwd(), command=command)


def _diag_json(diag: Diagnostic) -> dict[str, Any]:
    return {"check": diag.check, "severity": diag.severity, "message": diag.message, "file": diag.file,
            "line": diag.line, "column": diag.column}


def _json(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def _decision_json(decision: Decision) -> dict[str, Any]:
    row = decision.row
    return {"allowed": decision.allowed, "commitment": decision.commitment, "rule": decision.rule_id,
            "row": None if row is None else {"file": row.file, "line": row.line, "fields": list(row.fields)}}


# ---------------------------------------------------------------------------- lint


@policy_app.command("lint")
def policy_lint(
    paths: Annotated[list[Path], typer.Argument(help="Pack directories, or model (.conf) and policy (.csv) files.")],
    fmt: FormatOption = Format.text,
    output: OutputOption = None,
    fail_on: Annotated[FailOn, typer.Option(help="Lowest severity that fails the run (exit 1).")] = FailOn.warning,
) -> int:
    """Report every problem in model and policy files with file, line, column, check id and severity."""
    report = lint_paths(paths, rule_commitments())
    threshold = LEVEL_RANK[fail_on.value]
    failing = [d for d in report.diagnostics if LEVEL_RANK[d.severity] >= threshold]
    counts = {severity: sum(1 for d in report.diagnostics if d.severity == severity)
              for severity in ("error", "warning", "note")}
    summary = (f"{len(report.files)} file(s) linted: {counts['error']} error(s), {counts['warning']} warning(s), "
               f"{counts['note']} note(s)")
    if fmt is Format.text:
        _print_diagnostics(report.diagnostics)
        out.print(summary if report.diagnostics else f"OK: {summary}", markup=False)
    elif fmt is Format.json:
        _emit(_json({"files": list(report.files), "summary": counts,
                     "diagnostics": [_diag_json(d) for d in report.diagnostics]}), output, summary)
    else:
        _emit(_sarif(report.diagnostics, "lint"), output, summary)
    return EXIT_VIOLATIONS if failing else EXIT_CLEAN


# ---------------------------------------------------------------------------- test


def _test_diagnostics(report: TestReport, min_coverage: float) -> list[Diagnostic]:
    found = [
        diagnostic("test-failed", f"case {r.located.case.name!r}: {'; '.join(r.problems)}", r.located.file,
                   r.located.line)
        for r in report.failed
    ]
    found += [diagnostic("row-not-covered", f"no case is decided by this row (priority {row.fields[0]})", row.file,
                         row.line) for row in report.uncovered]
    if report.coverage < min_coverage:
        found.append(diagnostic("coverage-below-minimum", f"row coverage {report.coverage:.1f}% is below the "
                                f"minimum {min_coverage:.1f}%", str(report.pack.files[1])))
    return found


@policy_app.command("test")
def policy_test(
    directory: Annotated[Path, typer.Argument(help="Pack directory (cases in DIR/tests/*.yaml).")],
    cases: Annotated[
        list[Path] | None, typer.Option("--cases", help="Case file(s) to run instead of DIR/tests/*.yaml.")
    ] = None,
    min_coverage: Annotated[
        float, typer.Option(min=0, max=100, help="Fail unless this percentage of p rows decides some case.")
    ] = 0.0,
    fmt: Annotated[TestFormat, typer.Option("--format", help="Report format.")] = TestFormat.text,
    output: OutputOption = None,
) -> int:
    """Run YAML test cases against the real enforcer; report failures and p-row coverage."""
    report = run_tests(directory, cases or None)
    below = report.coverage < min_coverage
    summary = (f"{len(report.results)} case(s), {len(report.failed)} failed; row coverage {report.coverage:.1f}% "
               f"({len(report.p_rows) - len(report.uncovered)}/{len(report.p_rows)} p rows)")
    if fmt is TestFormat.text:
        _print_diagnostics(_test_diagnostics(report, min_coverage))
        out.print(summary + (f", below the minimum {min_coverage:.1f}%" if below else ""), markup=False)
    elif fmt is TestFormat.json:
        _emit(_json({
            "summary": {"cases": len(report.results), "failed": len(report.failed), "coverage": report.coverage,
                        "min_coverage": min_coverage},
            "cases": [{"name": r.located.case.name, "file": r.located.file, "line": r.located.line,
                       "request": list(r.located.case.request), "passed": r.passed, "problems": list(r.problems),
                       "decision": _decision_json(r.decision)} for r in report.results],
            "uncovered_rows": [{"file": row.file, "line": row.line, "fields": list(row.fields)}
                               for row in report.uncovered],
        }), output, summary)
    elif fmt is TestFormat.junit:
        junit = [JUnitCase(r.located.case.name, Path(r.located.file).name, r.seconds,
                           "; ".join(r.problems) or None, r.located.file, r.located.line) for r in report.results]
        uncovered = "\n".join(f"{row.file}:{row.line}: p row {row.fields[0]} decides no case"
                              for row in report.uncovered)
        junit.append(JUnitCase(f"row coverage >= {min_coverage:.1f}%", "coverage", 0.0,
                               f"row coverage {report.coverage:.1f}% is below {min_coverage:.1f}%\n{uncovered}"
                               if below else None))
        _emit(render_junit(f"policy test {directory}", junit, {"row_coverage": f"{report.coverage:.1f}"}),
              output, summary)
    else:
        _emit(_sarif(_test_diagnostics(report, min_coverage), "test"), output, summary)
    return EXIT_VIOLATIONS if report.failed or below else EXIT_CLEAN


# ---------------------------------------------------------------------------- prove


@policy_app.command("prove")
def policy_prove(
    directory: Annotated[Path, typer.Argument(help="Pack directory with invariants.yaml.")],
    invariants: Annotated[
        Path | None, typer.Option(help="Invariants file (default: DIR/invariants.yaml).")
    ] = None,
    fmt: FormatOption = Format.text,
    output: OutputOption = None,
) -> int:
    """Check every invariant on every request of the declared domain; print counterexamples."""
    report = prove(directory, invariants)
    fields = report.pack.request_fields
    failed = [r for r in report.results if not r.holds]
    summary = (f"{len(report.results) - len(failed)}/{len(report.results)} invariant(s) hold over "
               f"{report.domain_size} request(s) of the domain; {len(report.gaps)} domain gap(s)")
    if fmt is Format.text:
        _print_diagnostics(report.gaps)
        for result in report.results:
            invariant = result.spec.invariant
            status = Text("PROVED " if result.holds else "FAILED ", style="green" if result.holds else "bold red")
            status.append(f"{invariant.id} ({invariant.commitment}): {invariant.title} "
                          f"[{result.checked} request(s)]")
            out.print(status)
        _print_diagnostics([d for d in report.diagnostics() if d.check == "invariant-violated"])
        out.print(summary, markup=False)
    elif fmt is Format.json:
        _emit(_json({
            "summary": {"ok": report.ok, "domain_size": report.domain_size},
            "gaps": [_diag_json(d) for d in report.gaps],
            "invariants": [{
                "id": r.spec.invariant.id, "commitment": r.spec.invariant.commitment, "title": r.spec.invariant.title,
                "holds": r.holds, "checked": r.checked,
                "counterexamples": [{"request": dict(zip(fields, c.request, strict=True)),
                                     "decision": _decision_json(c.decision)} for c in r.counterexamples],
            } for r in report.results],
        }), output, summary)
    else:
        _emit(_sarif(report.diagnostics(), "prove"), output, summary)
    return EXIT_CLEAN if report.ok else EXIT_VIOLATIONS


# ---------------------------------------------------------------------------- diff


def _diff_json(report: DiffReport) -> dict[str, Any]:
    fields = report.new.request_fields
    counts: dict[str, int] = {}
    for change in report.changes:
        counts[change.kind] = counts.get(change.kind, 0) + 1
    return {
        "old": report.old_label, "new": report.new_label, "compared": report.compared, "summary": counts,
        "changes": [{"kind": c.kind, "request": dict(zip(fields, c.request, strict=True)),
                     "old": _decision_json(c.old), "new": _decision_json(c.new)} for c in report.changes],
    }


@policy_app.command("diff")
def policy_diff(
    old: Annotated[str, typer.Argument(help="Old pack: a directory, or REV:PATH in git (HEAD~1:policies).")],
    new: Annotated[str, typer.Argument(help="New pack: a directory, or REV:PATH.")],
    repo: Annotated[Path, typer.Option(help="Git repository for REV:PATH arguments.")] = Path("."),
    allow_new_access: Annotated[
        bool, typer.Option("--allow-new-access", help="Newly allowed requests are intended: do not fail.")
    ] = False,
    fmt: FormatOption = Format.text,
    output: OutputOption = None,
) -> int:
    """Requests whose decision changes between two versions; exit 1 on new access."""
    report = diff(old, new, repo)
    counts = _diff_json(report)["summary"]
    summary = (f"{report.compared} request(s) compared: {counts.get('new-access', 0)} newly allowed, "
               f"{counts.get('access-removed', 0)} newly denied, {counts.get('reason-changed', 0)} denied for "
               "another reason")
    diagnostics = report.diagnostics()
    if allow_new_access:
        diagnostics = [Diagnostic(d.check, _downgrade(d.severity), d.message, d.file, d.line, d.column)
                       for d in diagnostics]
    if fmt is Format.text:
        _print_diagnostics(diagnostics)
        out.print(summary, markup=False)
    elif fmt is Format.json:
        _emit(_json(_diff_json(report)), output, summary)
    else:
        _emit(_sarif(diagnostics, "diff"), output, summary)
    return EXIT_VIOLATIONS if report.new_access and not allow_new_access else EXIT_CLEAN


def _downgrade(severity: Level) -> Level:
    return "warning" if severity == "error" else severity
