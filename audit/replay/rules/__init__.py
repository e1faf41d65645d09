"""Violation rules: one module per violation type, each exporting ``RULE``.

A rule is metadata (validated by pydantic: id, title, severity, commitment,
remediation) plus a function that explains one finding in a sentence. Rules do not
decide anything: the policy pack's deciding row names the rule id; the rule turns
that decision into a readable :class:`~audit.models.Finding`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata

__all__ = ["FindingContext", "Rule", "RuleMetadata", "load_rules"]


def load_rules() -> Mapping[str, Rule]:
    """Every rule shipped in this package, by id (ids are unique)."""
    rules: dict[str, Rule] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        rule = module.RULE
        if not isinstance(rule, Rule):
            raise TypeError(f"{module.__name__}.RULE is not a Rule")
        if rule.id in rules:
            raise ValueError(f"duplicate rule id {rule.id!r} in {module.__name__}")
        rules[rule.id] = rule
    return rules
