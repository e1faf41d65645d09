"""Size and complexity limits that keep every module readable by a newcomer.

No module in ``audit/`` over 600 source lines, no function or method over cyclomatic
complexity 15 (both as radon measures them). The import layers are checked by
``lint-imports`` (the contract is in pyproject.toml), which ``make test`` runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from radon.complexity import cc_visit
from radon.raw import analyze

from tests.conftest import REPO

MAX_MODULE_SLOC = 600
MAX_COMPLEXITY = 15
MODULES = sorted((REPO / "audit").rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def test_there_are_modules_to_check() -> None:
    assert len(MODULES) > 50


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_module_is_at_most_600_source_lines(path: Path) -> None:
    sloc = analyze(path.read_text()).sloc
    assert sloc <= MAX_MODULE_SLOC, f"{_name(path)} has {sloc} source lines: split it along its concerns"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_function_above_complexity_15(path: Path) -> None:
    blocks = [b for b in cc_visit(path.read_text()) if b.complexity > MAX_COMPLEXITY]
    described = [f"{b.fullname} (line {b.lineno}): {b.complexity}" for b in blocks]
    assert not described, f"{_name(path)}: split these into one function per step: {described}"


def test_the_limits_catch_what_they_claim() -> None:
    branches = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(MAX_COMPLEXITY + 1))
    [block] = cc_visit(f"def f(x):\n{branches}    return -1\n")
    assert block.complexity == MAX_COMPLEXITY + 2
    assert analyze("x = 1\n" * (MAX_MODULE_SLOC + 1)).sloc == MAX_MODULE_SLOC + 1
