"""Time and size budgets for evaluating a policy pack: CI must end, whatever a pull request holds.

A :class:`Budget` is a wall-clock deadline checked between enforcer calls (never a
thread left running: a single call is bounded by the matcher allow-list and RE2,
:mod:`audit.policy.matcher`). :data:`MAX_DOMAIN_REQUESTS` caps a declared request
domain before anything is enumerated. Exceeding either is a
:class:`BudgetExceeded` (exit 2). This module decides nothing about policies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from audit.errors import PolicyError

__all__ = ["DEFAULT_TIMEOUT", "MAX_DOMAIN_REQUESTS", "Budget", "BudgetExceeded"]

DEFAULT_TIMEOUT = 60.0
"""Seconds the CLI gives lint, test, prove and diff to evaluate a pack (``--timeout``)."""

MAX_DOMAIN_REQUESTS = 1_000_000
"""A declared request domain has at most this many requests (the shipped pack's has about 9 000)."""


class BudgetExceeded(PolicyError):
    """Evaluating a pack took longer than its time budget, or its domain is too large (exit 2)."""


@dataclass(frozen=True)
class Budget:
    """A wall-clock budget of ``seconds`` (``None``: unlimited) from the moment it is made."""

    seconds: float | None = DEFAULT_TIMEOUT
    started: float = field(default_factory=time.monotonic)

    def check(self, path: str | Path | None = None) -> None:
        """Raise :class:`BudgetExceeded` once the budget is spent."""
        if self.seconds is not None and time.monotonic() - self.started > self.seconds:
            raise BudgetExceeded(
                f"policy evaluation exceeded its budget of {self.seconds:g} s",
                path=path,
                hint="simplify the pack or its declared domain, or raise --timeout",
            )


UNLIMITED = Budget(None)
"""No time limit (library callers that bound time themselves)."""
