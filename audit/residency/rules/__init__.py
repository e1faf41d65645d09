"""Residency rules: one module per check, each exporting ``RULE``.

A rule is validated metadata (id, title, severity, commitment, status,
remediation) plus a function that lists what it flags on one store. Rules only
read stores; the scanner collects and links them (:mod:`audit.residency.scanner`).
"""

from __future__ import annotations

from audit.plugins import load_rule_modules
from audit.residency.rules.base import Hit, ResidencyRule, ResidencyRuleMetadata, StoreContext

__all__ = ["Hit", "ResidencyRule", "ResidencyRuleMetadata", "StoreContext", "load_rules"]


def load_rules() -> tuple[ResidencyRule, ...]:
    """Every rule shipped in this package, ordered by module name (ids are unique)."""
    return tuple(load_rule_modules(__name__, __path__, ResidencyRule).values())
