"""Violation rules: one module per violation type, each exporting ``RULE``.

A rule is metadata (validated by pydantic: id, title, severity, commitment,
remediation) plus a function that explains one finding in a sentence. Rules do not
decide anything: the policy pack's deciding row names the rule id; the rule turns
that decision into a readable :class:`~audit.models.Finding`.
"""

from __future__ import annotations

from collections.abc import Mapping

from audit.plugins import load_rule_modules
from audit.replay.rules.base import FindingContext, Rule, RuleMetadata

__all__ = ["FindingContext", "Rule", "RuleMetadata", "load_rules", "rule_commitments"]


def load_rules() -> Mapping[str, Rule]:
    """Every rule shipped in this package, by id (ids are unique)."""
    return load_rule_modules(__name__, __path__, Rule)


def rule_commitments() -> dict[str, str]:
    """Rule id -> the commitment each shipped rule implements (the catalogue ``policy lint`` checks deny rows against)."""
    return {rule_id: rule.metadata.commitment for rule_id, rule in load_rules().items()}
