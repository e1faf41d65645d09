"""``policy prove``: check a pack's invariants on every request of its declared domain.

The domain (``invariants.yaml``) is finite, so checking is exhaustive: every
request an invariant selects is decided by the real pycasbin enforcer and every
violation is kept as a counterexample, with the row that decided it. Values the
pack names that the domain lacks are reported as domain gaps, because a proof over
an incomplete domain proves less than it says.

It does not lint (:mod:`audit.policy.lint`) and does not derive requests from
events (:mod:`audit.replay`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audit.errors import InputError
from audit.policy.budget import UNLIMITED, Budget
from audit.policy.diagnostics import Diagnostic, diagnostic, quote
from audit.policy.domain import INVARIANTS_FILE, Invariants, InvariantSpec, load_invariants, undeclared_values
from audit.policy.load import load_pack
from audit.policy.pack import Decision, PolicyPack, Request
from audit.policy.symmetry import SymmetricDecisions


@dataclass(frozen=True)
class Counterexample:
    """A request that breaks an invariant, and how the pack decided it."""

    request: Request
    decision: Decision


@dataclass(frozen=True)
class InvariantResult:
    """One invariant: how many requests it was checked on and every counterexample."""

    spec: InvariantSpec
    checked: int
    counterexamples: tuple[Counterexample, ...]

    @property
    def holds(self) -> bool:
        """Checked on at least one request, without a counterexample."""
        return self.checked > 0 and not self.counterexamples


@dataclass(frozen=True)
class ProofReport:
    """Every invariant's result, plus gaps between the pack and its domain."""

    pack: PolicyPack
    invariants_file: Path
    results: tuple[InvariantResult, ...]
    domain_size: int
    """How many requests the whole domain has."""
    """How many requests the whole domain has."""
    gaps: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        """Every invariant holds and the domain covers the pack."""
        return not self.gaps and all(result.holds for result in self.results)

    def diagnostics(self) -> list[Diagnostic]:
        """Gaps, then one diagnostic per failing invariant (at its first counterexample's row)."""
        found = list(self.gaps)
        for result in self.results:
            if result.holds:
                continue
            if not result.counterexamples:
                found.append(
                    diagnostic(
                        "invariant-violated",
                        f"invariant {result.spec.invariant.id} selects no request of the domain: "
                        "it proves nothing (misspelt value?)",
                        str(self.invariants_file),
                        result.spec.line,
                    )
                )
                continue
            first = result.counterexamples[0]
            row = first.decision.row
            file, line = (row.file, row.line) if row is not None else (str(self.invariants_file), result.spec.line)
            message = describe_failure(result, self.pack.request_fields)
            found.append(diagnostic("invariant-violated", message, file, line))
        return found


def _violates(invariants: Invariants, spec: InvariantSpec, request: Request, decision: Decision) -> bool:
    invariant = spec.invariant
    if invariant.expect is not None:
        return decision.allowed != (invariant.expect == "allow")
    if not decision.allowed:
        return False
    alternatives = invariant.allow_only_if or ()
    return not any(invariants.domain.admits(conditions, request) for conditions in alternatives)


def describe_request(request: Request, fields: tuple[str, ...]) -> str:
    """``facet=access sub=foreign_staff ...``."""
    return " ".join(f"{name}={value}" for name, value in zip(fields, request, strict=True))


def describe_decision(decision: Decision) -> str:
    """``allowed by policy.csv:42 (C1)`` or ``denied by ... (C2, rule foreign-sensitive-access)``."""
    verdict = "allowed" if decision.allowed else "denied"
    if decision.row is None:
        return f"{verdict} (no row matches; {decision.commitment}, rule {decision.rule_id})"
    rule = f", rule {decision.rule_id}" if decision.rule_id else ""
    return f"{verdict} by {Path(decision.row.file).name}:{decision.row.line} ({decision.commitment}{rule})"


def describe_failure(result: InvariantResult, fields: tuple[str, ...]) -> str:
    """One line: the invariant, the first counterexample and how many there are."""
    invariant = result.spec.invariant
    first = result.counterexamples[0]
    more = len(result.counterexamples) - 1
    return (
        f"invariant {invariant.id} ({invariant.commitment}: {invariant.title}) fails: counterexample "
        f"{describe_request(first.request, fields)} is {describe_decision(first.decision)}"
        + (f"; {more} more counterexample(s)" if more else "")
    )


def prove(directory: Path, invariants_path: Path | None = None, *, budget: Budget = UNLIMITED) -> ProofReport:
    """Decide every request of the domain and check every invariant of ``invariants.yaml``.

    ``budget`` is checked between enforcer calls; the domain's size is checked before.
    Requests that differ only in values the pack cannot tell apart are decided once
    (:mod:`audit.policy.symmetry`).
    """
    pack = load_pack(directory)
    path = invariants_path or directory / INVARIANTS_FILE
    if not path.is_file():
        raise InputError(f"no {INVARIANTS_FILE}: declare the request domain and invariants to prove", path=path)
    invariants = load_invariants(path, pack.request_fields, directory if invariants_path is None else None)
    if not invariants.invariants:
        raise InputError("no invariants to prove", path=path)
    gaps = tuple(
        diagnostic(
            "domain-gap",
            f"the pack names {quote(gap.value)} but the domain in {path.name} does not declare it",
            gap.row.file,
            gap.row.line,
        )
        for gap in undeclared_values(pack.rows, pack.definitions, invariants.domain)
    )
    decide = SymmetricDecisions(pack.interchangeable(invariants.domain.every_value()), pack.decide)
    results = []
    for spec in invariants.invariants:
        checked = 0
        found: list[Counterexample] = []
        for request in invariants.domain.requests(spec.invariant.when):
            budget.check(path)
            checked += 1
            decision = decide(request)
            if _violates(invariants, spec, request, decision):
                found.append(Counterexample(request, decision))
        results.append(InvariantResult(spec, checked, tuple(found)))
    return ProofReport(pack, path, tuple(results), invariants.domain.size(), gaps)
