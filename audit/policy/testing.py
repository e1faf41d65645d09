"""``policy test``: run YAML test cases against a pack's real enforcer and measure row coverage.

A case file is a YAML list; each case gives a ``request`` (one value per request
field of ``model.conf``), the expected ``allow``, the expected ``commitment``
and optionally the expected deny ``rule`` and deciding row ``row`` (its priority,
``null`` for "no row matches"). Cases are decided by pycasbin without the
decision cache. Coverage counts the ``p`` rows that decide at least one case.

It does not prove anything beyond the listed cases (:mod:`audit.policy.prove`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from audit.errors import InputError
from audit.policy.budget import UNLIMITED, Budget
from audit.policy.diagnostics import quote
from audit.policy.domain import INVARIANTS_FILE, compose, node_line
from audit.policy.files import load_pack_yaml
from audit.policy.load import load_pack
from audit.policy.pack import Decision, PolicyPack, PolicyRow
from audit.records import describe_validation_error

TESTS_DIR = "tests"


class TestCase(BaseModel):
    """One expected decision; ``rule`` and ``row`` are checked only when given."""

    __test__ = False  # not a pytest class
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    request: tuple[str, ...]
    allow: bool
    commitment: str
    rule: str | None = None
    row: int | None = None


@dataclass(frozen=True)
class LocatedCase:
    """A case and where it is written."""

    case: TestCase
    file: str
    line: int


@dataclass(frozen=True)
class CaseResult:
    """A case, the decision it got, and what differs from the expectation (empty when it passed)."""

    located: LocatedCase
    decision: Decision
    problems: tuple[str, ...]
    seconds: float

    @property
    def passed(self) -> bool:
        """The decision is the expected one in every given respect."""
        return not self.problems


@dataclass(frozen=True)
class TestReport:
    """Results of every case and the p rows none of them decides."""

    __test__ = False
    pack: PolicyPack
    results: tuple[CaseResult, ...]
    p_rows: tuple[PolicyRow, ...]
    uncovered: tuple[PolicyRow, ...]

    @property
    def coverage(self) -> float:
        """Percentage of p rows that decide at least one case (100 for a pack without p rows)."""
        if not self.p_rows:
            return 100.0
        return 100.0 * (len(self.p_rows) - len(self.uncovered)) / len(self.p_rows)

    @property
    def failed(self) -> tuple[CaseResult, ...]:
        """Cases whose decision differs from the expectation."""
        return tuple(result for result in self.results if not result.passed)


def case_files(directory: Path) -> list[Path]:
    """The ``*.yaml`` files under ``DIR/tests`` (sorted), or an ``InputError`` when there are none."""
    tests = directory / TESTS_DIR
    files = sorted(p for p in tests.glob("*.yaml") if p.is_file() and p.name != INVARIANTS_FILE)
    if not files:
        raise InputError(f"no test case files ({TESTS_DIR}/*.yaml)", path=tests)
    return files


def load_cases(path: Path, request_size: int, root: Path | None = None) -> list[LocatedCase]:
    """Validate one case file; every error names the file and the line of the offending case.

    ``root`` is the pack directory the file must lie in (default: its own directory).
    """
    raw, text = load_pack_yaml(path, root)
    if not isinstance(raw, list):
        raise InputError("a case file is a YAML list of cases", path=path, line=1)
    node = compose(text)
    cases: list[LocatedCase] = []
    names: dict[str, int] = {}
    for index, entry in enumerate(raw):
        line = node_line(node, (index,)) or 1
        try:
            case = TestCase.model_validate(entry)
        except ValidationError as exc:
            loc = exc.errors(include_url=False)[0]["loc"]
            raise InputError(
                f"case {index + 1}: {describe_validation_error(exc)}", path=path, line=node_line(node, (index, *loc))
            ) from None
        if len(case.request) != request_size:
            raise InputError(
                f"case {quote(case.name)}: request has {len(case.request)} fields, model.conf defines {request_size}",
                path=path,
                line=node_line(node, (index, "request")),
            )
        if case.name in names:
            raise InputError(
                f"case name {quote(case.name)} is also used on line {names[case.name]}", path=path, line=line
            )
        names[case.name] = line
        cases.append(LocatedCase(case, str(path), line))
    return cases


def _check(case: TestCase, decision: Decision) -> tuple[str, ...]:
    problems: list[str] = []
    if decision.allowed != case.allow:
        problems.append(f"expected {'allow' if case.allow else 'deny'}, got {'allow' if decision.allowed else 'deny'}")
    if decision.commitment != case.commitment:
        problems.append(f"expected commitment {case.commitment}, got {decision.commitment}")
    if "rule" in case.model_fields_set and decision.rule_id != case.rule:
        problems.append(f"expected rule {case.rule}, got {decision.rule_id}")
    if "row" in case.model_fields_set:
        got = decision.row.fields[0] if decision.row is not None else None
        if got != (str(case.row) if case.row is not None else None):
            where = f" (line {decision.row.line})" if decision.row is not None else ""
            problems.append(f"expected row {case.row}, got {got}{where}")
    return tuple(problems)


def run_tests(directory: Path, files: Sequence[Path] | None = None, *, budget: Budget = UNLIMITED) -> TestReport:
    """Load the pack, run every case of ``files`` (default: :func:`case_files`), measure coverage.

    ``budget`` is checked between enforcer calls.
    """
    pack = load_pack(directory)
    root = None if files else directory  # case files given by name need only stay in their own directory
    size = len(pack.request_fields)
    located = [case for path in (files or case_files(directory)) for case in load_cases(path, size, root)]
    results: list[CaseResult] = []
    deciding: set[PolicyRow] = set()
    for item in located:
        budget.check(item.file)
        start = time.perf_counter()
        decision = pack.decide_uncached(item.case.request)  # type: ignore[arg-type]  # size checked at load
        elapsed = time.perf_counter() - start
        if decision.row is not None:
            deciding.add(decision.row)
        results.append(CaseResult(item, decision, _check(item.case, decision), elapsed))
    p_rows = tuple(row for row in pack.rows if row.ptype == "p")
    uncovered = tuple(row for row in p_rows if row not in deciding)
    return TestReport(pack, tuple(results), p_rows, uncovered)
