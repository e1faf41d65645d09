"""A loaded policy pack and how it decides requests; several packs in force over time.

A *request* is five strings ``(facet, sub, obj, act, ctx)`` derived by the replay
engine from one event. :meth:`PolicyPack.decide` hands it to pycasbin's
``enforce_ex`` and maps the deciding row back to the :class:`PolicyRow` it came
from (file, line, commitment, rule id). Decisions are cached per request: the fact
vocabulary is small and finite, so a replay of millions of events asks Casbin only
a few hundred distinct questions. pycasbin is not thread-safe (and CPython 3.11
can fail compiling its matcher in two threads at once), so uncached decisions are
taken one at a time in a process; cached ones take no lock.

This module holds the types and the decision step only. Reading and validating a
pack directory (``model.conf``, ``policy.csv``, ``pack.yaml``, ``commitments.yaml``,
``rules.yaml``)
is :mod:`audit.policy.load`; deriving requests from events is :mod:`audit.replay`.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from audit.errors import AuditError, PolicyError
from audit.models import Commitment, PolicyRowRef
from audit.policy.config import PackConfig, PackRule
from audit.policy.diagnostics import clean
from audit.policy.symmetry import ValueClasses, interchangeable

Request = tuple[str, str, str, str, str]
"""``(facet, sub, obj, act, ctx)`` as defined by ``r`` in ``model.conf``."""

DEFAULT_COMMITMENT = "C1"
"""Commitment cited when no policy row matches a request."""

DEFAULT_RULE = "policy-default-deny"
"""Rule id reported when no policy row matches a request."""


@dataclass(frozen=True)
class PolicyRow:
    """One row of ``policy.csv``: its type, fields (without the type), and where it is.

    ``commitment`` is the row's ``commitment`` field for ``p`` rows and the commitment
    named by the block header above it for grouping rows; ``rule_id`` is the row's
    ``rule`` field for ``p`` deny rows and ``None`` otherwise.
    """

    ptype: str
    fields: tuple[str, ...]
    file: str
    line: int
    commitment: str = DEFAULT_COMMITMENT
    rule_id: str | None = None

    @cached_property
    def _ref(self) -> PolicyRowRef:
        return PolicyRowRef(file=self.file, line=self.line, fields=self.fields)

    def ref(self) -> PolicyRowRef:
        """The reference a finding records for this row (built once: it is frozen, so findings share it)."""
        return self._ref


@dataclass(frozen=True)
class Decision:
    """The outcome for one request and the row that decided it.

    ``row`` is ``None`` when no row matched; the request is then denied, citing
    :data:`DEFAULT_COMMITMENT` and :data:`DEFAULT_RULE`.
    """

    allowed: bool
    commitment: str
    rule_id: str | None
    row: PolicyRow | None


NO_MATCH = Decision(allowed=False, commitment=DEFAULT_COMMITMENT, rule_id=DEFAULT_RULE, row=None)


class PolicyPack:
    """One validated pack directory and a cached pycasbin enforcer built from it.

    Built by :func:`audit.policy.load.load_pack`; the constructor trusts its
    arguments (rows already validated, enforcer already loaded with exactly them).
    """

    def __init__(
        self,
        *,
        directory: Path,
        config: PackConfig,
        commitments: Mapping[str, Commitment],
        rows: Sequence[PolicyRow],
        definitions: Mapping[str, tuple[str, ...]],
        request_fields: tuple[str, ...],
        files: Sequence[Path],
        enforcer: Any,
        matcher_line: int | None = None,
        rules: Sequence[PackRule] = (),
    ) -> None:
        self.directory = directory
        self.config = config
        self.rules: tuple[PackRule, ...] = tuple(rules)
        """The pack's own rules (``rules.yaml``): ids, commitments and words for engine rules."""
        self.commitments = commitments
        self.rows: tuple[PolicyRow, ...] = tuple(rows)
        self.definitions = definitions
        """Field names per row type, from ``model.conf`` (``p``: priority, facet, ...)."""
        self.request_fields = request_fields
        """Request field names, from ``model.conf`` (facet, sub, obj, act, ctx)."""
        self.files: tuple[Path, ...] = tuple(files)
        self.categories: frozenset[str] = _categories(self.rows)
        self._enforcer = enforcer
        self._matcher_line = matcher_line
        self._p_rows = {row.fields: row for row in self.rows if row.ptype == "p"}
        self._request_size = len(request_fields)
        self._cache: dict[Request, Decision] = {}
        self._broken_cache: dict[Request, tuple[Decision, ...]] = {}

    def __repr__(self) -> str:
        return f"PolicyPack({self.config.name!r}, {str(self.directory)!r}, {len(self.rows)} rows)"

    @property
    def matcher(self) -> str:
        """The matcher pycasbin evaluates, as it holds it (``r.sub`` written ``r_sub``)."""
        return str(self._enforcer.model["m"]["m"].value)

    @property
    def rule_ids(self) -> frozenset[str]:
        """Every rule id some row names (allow rows name none)."""
        return frozenset(row.rule_id for row in self.rows if row.rule_id is not None)

    def decide(self, request: Request) -> Decision:
        """Decide one request: the first matching row in priority order, or deny.

        Cached per request tuple; the pack is immutable once loaded.
        """
        cached = self._cache.get(request)
        if cached is not None:
            return cached
        decision = self.decide_uncached(request)
        self._cache[request] = decision
        return decision

    def decide_uncached(self, request: Request) -> Decision:
        """Ask pycasbin directly, bypassing (and not filling) the cache."""
        if len(request) != self._request_size:
            raise ValueError(f"request has {len(request)} fields, model.conf defines {self._request_size}")
        allowed, explain = self._enforce(request)
        if not explain:
            if allowed:
                raise RuntimeError(f"pycasbin allowed {request} without a matching row")
            return NO_MATCH
        row = self._p_rows.get(tuple(explain))
        if row is None:
            raise RuntimeError(f"pycasbin explained {request} with an unknown row {explain}")
        if bool(allowed) != (row.rule_id is None):
            raise RuntimeError(f"pycasbin decided {request} against its deciding row {row.fields}")
        return Decision(allowed=bool(allowed), commitment=row.commitment, rule_id=row.rule_id, row=row)

    def _enforce(self, request: Request) -> tuple[Any, list[str]]:
        """pycasbin's answer; a matcher that fails on this request is a ``PolicyError`` at the matcher's line."""
        with CASBIN_LOCK:
            return self._enforce_locked(request)

    def _enforce_locked(self, request: Request) -> tuple[Any, list[str]]:
        """:meth:`_enforce` for a caller already holding :data:`CASBIN_LOCK`."""
        return enforce_or_refuse(
            self._enforcer, request, path=self.files[0] if self.files else None, line=self._matcher_line
        )

    def interchangeable(self, values: Iterable[str]) -> ValueClasses | None:
        """Classes of ``values`` this pack decides alike (:mod:`audit.policy.symmetry`); ``None`` if unproven."""
        with CASBIN_LOCK:
            return interchangeable(self._enforcer, values)

    def broken(self, request: Request) -> tuple[Decision, ...]:
        """Every commitment a request breaks: one deny decision per commitment, in priority order.

        Rows are read in priority order as :meth:`decide` reads them, but past a
        matching deny row: each matching deny row before the first matching allow
        row breaks its commitment (the first such row per commitment decides it).
        A default-deny row (rule ``policy-default-deny``) counts only when no other
        deny row matched: it stands for "no row allowed this", which any other deny
        already says. Empty exactly when :meth:`decide` allows; otherwise the first
        element is :meth:`decide`'s decision. Cached like :meth:`decide`.
        """
        cached = self._broken_cache.get(request)
        if cached is not None:
            return cached
        first = self.decide(request)
        if first.allowed:
            result: tuple[Decision, ...] = ()
        else:
            result = _one_per_commitment([first, *self._denies_after(request, first)])
        self._broken_cache[request] = result
        return result

    def _denies_after(self, request: Request, first: Decision) -> list[Decision]:
        """Matching deny rows after ``first``, up to the first matching allow row (pycasbin decides each)."""
        if first.row is None:
            return []
        assertion = self._enforcer.model["p"]["p"]
        denies: list[Decision] = []
        with CASBIN_LOCK:
            everything = assertion.policy
            position = {tuple(fields): i for i, fields in enumerate(everything)}
            start = position[first.row.fields] + 1
            try:
                while start < len(everything):
                    assertion.policy = everything[start:]  # pycasbin reads this list in order
                    allowed, explain = self._enforce_locked(request)
                    if not explain or allowed:
                        break
                    row = self._p_rows[tuple(explain)]
                    denies.append(Decision(allowed=False, commitment=row.commitment, rule_id=row.rule_id, row=row))
                    start = position[row.fields] + 1
            finally:
                assertion.policy = everything
        return denies

    def cache_size(self) -> int:
        """How many distinct requests have been decided so far."""
        return len(self._cache)


def enforce_or_refuse(
    enforcer: Any, request: Request, *, path: str | Path | None, line: int | None = None
) -> tuple[Any, list[str]]:
    """``enforcer.enforce_ex(*request)``; a matcher that fails on the request is a :class:`PolicyError`.

    The one place pycasbin's bare exceptions (and a matcher function's refusal) become
    a diagnostic naming the matcher: the pack's decisions and the linter both use it.
    The caller holds :data:`CASBIN_LOCK` where other threads may evaluate.
    """
    try:
        allowed, explain = enforcer.enforce_ex(*request)
    except AuditError as exc:
        if exc.path is not None:
            raise
        detail = exc.reason  # a matcher function refused its arguments
    except Exception as exc:  # pycasbin and simpleeval raise bare exceptions
        detail = clean(f"{type(exc).__name__}: {exc}", 200)
    else:
        return allowed, list(explain)
    raise PolicyError(f"matcher does not evaluate for request {list(request)}: {detail}", path=path, line=line)


def _one_per_commitment(denies: Sequence[Decision]) -> tuple[Decision, ...]:
    """The first deny per commitment; default-deny rows only if nothing else denied."""
    specific = [d for d in denies if d.rule_id != DEFAULT_RULE]
    chosen: dict[str, Decision] = {}
    for decision in specific or denies[:1]:
        chosen.setdefault(decision.commitment, decision)
    return tuple(chosen.values())


CASBIN_LOCK = threading.Lock()
"""Held around every pycasbin evaluation that may run while other threads do (see the module docstring)."""


def _categories(rows: Sequence[PolicyRow]) -> frozenset[str]:
    members = {row.fields[0] for row in rows if row.ptype == "g2"}
    groups = {row.fields[1] for row in rows if row.ptype == "g2"}
    return frozenset(members - groups)


def _utc_date(when: datetime) -> date:
    if when.tzinfo is None or when.utcoffset() is None:
        return when.date()
    return when.astimezone(UTC).date()


class PolicyHistory:
    """Policy packs in force one after another, ordered by ``effective_from``.

    :meth:`at` returns the pack in force on an instant's UTC date (a naive datetime
    is taken to be UTC). An instant before every pack's ``effective_from`` is
    judged by the earliest pack: replay never runs without a policy, and the
    earliest pack is the closest statement of what was promised.
    """

    def __init__(self, directory: Path, packs: Sequence[PolicyPack]) -> None:
        if not packs:
            raise ValueError("a policy history needs at least one pack")
        ordered = sorted(packs, key=lambda pack: pack.config.effective_from)
        self.directory = directory
        self._packs = tuple(ordered)
        self._dates = [pack.config.effective_from for pack in ordered]

    def __repr__(self) -> str:
        names = ", ".join(pack.config.name for pack in self._packs)
        return f"PolicyHistory({str(self.directory)!r}, [{names}])"

    @property
    def packs(self) -> tuple[PolicyPack, ...]:
        """Every version, earliest first."""
        return self._packs

    def at(self, when: datetime) -> PolicyPack:
        """The latest pack whose ``effective_from`` is on or before ``when``'s UTC date."""
        if len(self._packs) == 1:
            return self._packs[0]
        index = bisect.bisect_right(self._dates, _utc_date(when)) - 1
        return self._packs[max(index, 0)]
