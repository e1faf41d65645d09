"""Residency rules: one module per engine rule, each exporting ``RULE``.

An engine rule is validated metadata (id, title, severity, status, description,
remediation; no commitment), message templates and a function that lists what it
flags on one store. :func:`residency_book` binds them to a pack's words and
commitments (``rules.yaml``, ``scope: residency``). Rules only read stores; the
scanner collects and links them (:mod:`audit.residency.scanner`).
"""

from __future__ import annotations

from audit.plugins import load_rule_modules
from audit.policy.wording import TemplateScope
from audit.residency.rules._bind import BoundRule, residency_book
from audit.residency.rules.base import MAY_BE_EMPTY, VARIABLES, Hit, ResidencyRule, ResidencyRuleMetadata, StoreContext

__all__ = [
    "BoundRule",
    "Hit",
    "ResidencyRule",
    "ResidencyRuleMetadata",
    "StoreContext",
    "load_rules",
    "residency_book",
    "template_scope",
]


def load_rules() -> tuple[ResidencyRule, ...]:
    """Every engine rule shipped in this package, ordered by module name (ids are unique)."""
    return tuple(load_rule_modules(__name__, __path__, ResidencyRule).values())


def template_scope() -> TemplateScope:
    """What a residency pack rule's ``kind``, ``message`` and ``copy_message`` may say, for ``policy lint``."""
    return TemplateScope(frozenset(VARIABLES), MAY_BE_EMPTY, frozenset(rule.metadata.id for rule in load_rules()))
