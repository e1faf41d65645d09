"""Residency rules: one module per check, each exporting ``RULE``.

A rule is validated metadata (id, title, severity, commitment, status,
remediation) plus a function that lists what it flags on one store. Rules only
read stores; the scanner collects and links them (:mod:`audit.residency.scanner`).
"""

from __future__ import annotations

import importlib
import pkgutil

from audit.residency.rules.base import Hit, ResidencyRule, ResidencyRuleMetadata, StoreContext

__all__ = ["Hit", "ResidencyRule", "ResidencyRuleMetadata", "StoreContext", "load_rules"]


def load_rules() -> tuple[ResidencyRule, ...]:
    """Every rule shipped in this package, ordered by module name (ids are unique)."""
    rules: dict[str, ResidencyRule] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        rule = module.RULE
        if not isinstance(rule, ResidencyRule):
            raise TypeError(f"{module.__name__}.RULE is not a ResidencyRule")
        if rule.id in rules:
            raise ValueError(f"duplicate residency rule id {rule.id!r} in {module.__name__}")
        rules[rule.id] = rule
    return tuple(rules.values())
