"""Violation rules: one module per violation type, each exporting ``RULE``.

A rule is metadata (validated by pydantic: id, title, severity, description,
remediation) plus a function that explains one finding in a sentence. Engine rules
name no company, place or commitment; a pack reports them in its own words, under
its own ids and commitments, through ``rules.yaml`` (:mod:`._bind`). Rules do not
decide anything: the policy pack's deciding row names the rule id; the rule turns
that decision into a readable :class:`~audit.models.Finding`.
"""

from __future__ import annotations

from collections.abc import Mapping

from audit.plugins import load_rule_modules
from audit.policy.wording import TemplateScope
from audit.replay.rules._bind import MAY_BE_EMPTY, VARIABLES, MessageTemplate, rule_book
from audit.replay.rules.base import FindingContext, Rule, RuleMetadata

__all__ = [
    "VARIABLES",
    "FindingContext",
    "MessageTemplate",
    "Rule",
    "RuleMetadata",
    "load_rules",
    "rule_book",
    "rule_commitments",
    "template_scope",
]


def load_rules() -> Mapping[str, Rule]:
    """Every rule shipped in this package, by id (ids are unique)."""
    return load_rule_modules(__name__, __path__, Rule)


def rule_commitments() -> dict[str, str | None]:
    """Engine rule id -> its commitment (``None``: the row says), the catalogue ``policy lint`` starts from.

    ``policy lint`` adds each pack's own rules (``rules.yaml``), which do name a commitment.
    """
    return {rule_id: rule.metadata.commitment for rule_id, rule in load_rules().items()}


def template_scope() -> TemplateScope:
    """What a replay pack rule's ``kind`` and ``message`` may say, for ``policy lint``."""
    return TemplateScope(frozenset(VARIABLES), MAY_BE_EMPTY, frozenset(load_rules()))
