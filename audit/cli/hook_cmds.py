"""``residency-audit policy hook CHECK FILES...``: what the shipped pre-commit hooks run.

pre-commit passes the changed file names; the checks work on whole packs, so this
finds the pack directory holding each file (the nearest directory with a
``pack.yaml``) and runs ``policy lint``, ``test`` or ``prove`` once per pack, in text
format. Packs without test cases (``test``) or invariants (``prove``) are skipped.
The exit code is the worst of the runs.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from audit.cli.console import out
from audit.cli.policy_cmds import policy_lint, policy_prove, policy_test
from audit.errors import EXIT_CLEAN
from audit.policy.budget import DEFAULT_TIMEOUT
from audit.policy.diagnostics import LevelChoice
from audit.report.formats.choice import PolicyFormat, TestFormat


class HookCheck(StrEnum):
    """The check a hook runs."""

    lint = "lint"
    test = "test"
    prove = "prove"


def packs_of(files: list[Path]) -> list[Path]:
    """The pack directories holding ``files`` (each once, in order); files outside any pack are ignored."""
    packs: dict[Path, None] = {}
    for file in files:
        start = file if file.is_dir() else file.parent
        for directory in (start, *start.parents):
            if (directory / "pack.yaml").is_file():
                packs[directory] = None
                break
    return list(packs)


def _run(check: HookCheck, pack: Path, min_coverage: float) -> int | None:
    if check is HookCheck.lint:
        return policy_lint([pack], PolicyFormat.text, None, LevelChoice.warning, DEFAULT_TIMEOUT, False)
    if check is HookCheck.test:
        if not any((pack / "tests").glob("*.yaml")):
            return None
        return policy_test(pack, None, min_coverage, TestFormat.text, None, DEFAULT_TIMEOUT, False)
    if not (pack / "invariants.yaml").is_file():
        return None
    return policy_prove(pack, None, PolicyFormat.text, None, DEFAULT_TIMEOUT, False)


def policy_hook(
    check: Annotated[HookCheck, typer.Argument(help="lint, test or prove.")],
    files: Annotated[
        list[Path] | None, typer.Argument(help="Changed files (pre-commit passes them); each pack holding one is run.")
    ] = None,
    min_coverage: Annotated[
        float, typer.Option(min=0, max=100, help="For test: fail unless this percentage of p rows decides a case.")
    ] = 0.0,
) -> int:
    """Run lint, test or prove on every pack directory that holds one of FILES (the pre-commit hooks)."""
    worst = EXIT_CLEAN
    for pack in packs_of(list(files or ())):
        out.print(f"policy {check.value} {pack}", markup=False)
        code = _run(check, pack, min_coverage)
        if code is None:
            out.print(
                f"  skipped: {pack} has no {'test cases' if check is HookCheck.test else 'invariants.yaml'}",
                markup=False,
            )
        worst = max(worst, code or EXIT_CLEAN)
    return worst
