"""``residency-audit policy ...``: lint, test, prove and diff policy packs for CI.

Every command takes ``--format`` (text, json, sarif; ``test`` also junit) and
``--output FILE`` (written atomically; without it the report goes to stdout).
Exit codes: 0 clean, 1 findings (lint problems, failing cases or coverage, failing
invariants, new access), 2 usage or input errors (a symlinked pack file without
``--allow-symlinks``, a matcher outside the allow-list, evaluation over its
``--timeout`` or a domain over its size limit), 4 internal errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from audit.cli.console import show
from audit.errors import EXIT_CLEAN, EXIT_VIOLATIONS
from audit.policy.budget import DEFAULT_TIMEOUT, Budget
from audit.policy.diagnostics import LEVEL_RANK, LevelChoice
from audit.report.formats.choice import PolicyFormat, TestFormat

policy_app = typer.Typer(help="Lint, test, prove and diff policy packs (for CI).", no_args_is_help=True)


FormatOption = Annotated[PolicyFormat, typer.Option("--format", help="Report format.")]
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", min=0.1, help="Seconds policy evaluation may take; exit 2 when exceeded."),
]
SymlinksOption = Annotated[
    bool,
    typer.Option(
        "--allow-symlinks",
        help="Follow symlinked pack files (never out of the pack directory). Off: symlinks are refused.",
    ),
]
OutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write the report (in its --format) to this file, atomically, not stdout."),
]


# ---------------------------------------------------------------------------- lint


@policy_app.command("lint")
def policy_lint(
    paths: Annotated[list[Path], typer.Argument(help="Pack directories, or model (.conf) and policy (.csv) files.")],
    fmt: FormatOption = PolicyFormat.text,
    output: OutputOption = None,
    fail_on: Annotated[
        LevelChoice, typer.Option(help="Lowest severity that fails the run (exit 1).")
    ] = LevelChoice.warning,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    allow_symlinks: SymlinksOption = False,
) -> int:
    """Report every problem in model and policy files with file, line, column, check id and severity."""
    from audit.policy.files import symlinks_allowed
    from audit.policy.lint import lint_paths
    from audit.replay.rules import rule_commitments, template_scope
    from audit.report.formats.policy import LintDocument
    from audit.residency.rules import template_scope as residency_scope

    scopes = {"replay": template_scope(), "residency": residency_scope()}
    with symlinks_allowed(allow_symlinks):
        document = LintDocument(lint_paths(paths, rule_commitments(), budget=Budget(timeout), scopes=scopes))
    show(fmt.to_format().render(document), output, document.summary())
    threshold = LEVEL_RANK[fail_on.value]
    failing = [d for d in document.report.diagnostics if LEVEL_RANK[d.severity] >= threshold]
    return EXIT_VIOLATIONS if failing else EXIT_CLEAN


# ---------------------------------------------------------------------------- test


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
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    allow_symlinks: SymlinksOption = False,
) -> int:
    """Run YAML test cases against the real enforcer; report failures and p-row coverage."""
    from audit.policy.files import symlinks_allowed
    from audit.policy.testing import run_tests
    from audit.report.formats.policy import TestDocument

    with symlinks_allowed(allow_symlinks):
        report = run_tests(directory, cases or None, budget=Budget(timeout))
    document = TestDocument(report, min_coverage, directory)
    show(fmt.to_format().render(document), output, document.summary())
    return EXIT_VIOLATIONS if document.report.failed or document.below_minimum else EXIT_CLEAN


# ---------------------------------------------------------------------------- prove


@policy_app.command("prove")
def policy_prove(
    directory: Annotated[Path, typer.Argument(help="Pack directory with invariants.yaml.")],
    invariants: Annotated[Path | None, typer.Option(help="Invariants file (default: DIR/invariants.yaml).")] = None,
    fmt: FormatOption = PolicyFormat.text,
    output: OutputOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    allow_symlinks: SymlinksOption = False,
) -> int:
    """Check every invariant on every request of the declared domain; print counterexamples."""
    from audit.policy.files import symlinks_allowed
    from audit.policy.prove import prove
    from audit.report.formats.policy import ProveDocument

    with symlinks_allowed(allow_symlinks):
        document = ProveDocument(prove(directory, invariants, budget=Budget(timeout)))
    show(fmt.to_format().render(document), output, document.summary())
    return EXIT_CLEAN if document.report.ok else EXIT_VIOLATIONS


# ---------------------------------------------------------------------------- diff


@policy_app.command("diff")
def policy_diff(
    old: Annotated[str, typer.Argument(help="Old pack: a directory, or REV:PATH in git (HEAD~1:policies).")],
    new: Annotated[str, typer.Argument(help="New pack: a directory, or REV:PATH.")],
    repo: Annotated[Path, typer.Option(help="Git repository for REV:PATH arguments.")] = Path("."),
    allow_new_access: Annotated[
        bool, typer.Option("--allow-new-access", help="Newly allowed requests are intended: do not fail.")
    ] = False,
    fmt: FormatOption = PolicyFormat.text,
    output: OutputOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    allow_symlinks: SymlinksOption = False,
) -> int:
    """Requests whose decision changes between two versions; exit 1 on new access."""
    from audit.policy.diff import diff
    from audit.policy.files import symlinks_allowed
    from audit.report.formats.policy import DiffDocument

    with symlinks_allowed(allow_symlinks):
        document = DiffDocument(diff(old, new, repo, budget=Budget(timeout)), allow_new_access)
    show(fmt.to_format().render(document), output, document.summary())
    return EXIT_VIOLATIONS if document.report.new_access and not allow_new_access else EXIT_CLEAN


# ---------------------------------------------------------------------------- init


@policy_app.command("init")
def policy_init(
    directory: Annotated[Path, typer.Argument(help="New (or empty) directory for the pack.")],
    template: Annotated[
        str, typer.Option("--template", help="basic, or the name of a shipped pack (see --list-templates).")
    ] = "basic",
    name: Annotated[str | None, typer.Option("--name", help="Pack name (default: the directory's name).")] = None,
    home_country: Annotated[
        list[str] | None,
        typer.Option("--home-country", help="Template basic: a home country (ISO 3166 alpha-2); repeat for several."),
    ] = None,
    home_name: Annotated[
        str | None, typer.Option("--home-name", help='Template basic: how findings name home ("the EU/EEA").')
    ] = None,
    list_templates: Annotated[
        bool, typer.Option("--list-templates", help="Print the template names and exit.")
    ] = False,
) -> int:
    """Scaffold a policy pack that passes lint, test and prove as generated; then edit it."""
    from datetime import UTC, datetime

    from audit.policy.scaffold import init_pack, render, template_names

    if list_templates:
        typer.echo("\n".join(template_names()))
        return EXIT_CLEAN
    files = render(
        template,
        name=name or directory.resolve().name,
        home_countries=home_country or (),
        home_name=home_name,
        effective_from=datetime.now(UTC).date(),
    )
    written = init_pack(directory, files)
    typer.echo(
        f"wrote {len(written)} files to {directory}; edit the values marked EDIT, then run "
        f"residency-audit policy lint/test/prove {directory}"
    )
    return EXIT_CLEAN
