"""A pack's rule book: the engine's rules in the pack's words, plus the pack's own rules.

Engine rules are generic: their texts say ``$home`` where a pack's home jurisdiction
goes. A pack's ``rules.yaml`` adds rules of its own - an id its policy rows name, the
commitment it implements, a title, description, remediation and optionally a message
template - each reported by an engine rule (its ``kind``). Templates are checked and
filled with :data:`VARIABLES` by name, never evaluated (:mod:`audit.policy.wording`);
a ``$`` that starts no placeholder, an unknown placeholder or an unknown kind is an
input error at the line of ``rules.yaml``. Does not decide anything and reads no file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from audit.policy import PackRule, PolicyPack
from audit.policy.parse import RULES_FILE
from audit.policy.wording import PackTemplate, fill_home
from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _location(ctx: FindingContext) -> str:
    actor = ctx.event.actor
    return actor.physical_country or actor.office_country or "unknown"


VARIABLES: Mapping[str, Callable[[FindingContext], str]] = {
    "who": who,
    "what": what,
    "detail": lambda ctx: ctx.detail,
    "approval": lambda ctx: ctx.approval_id or "",
    "related": lambda ctx: ctx.related_actor or "",
    "recipient": lambda ctx: ctx.related_actor or who(ctx),
    "location": _location,
    "home": lambda ctx: ctx.home,
    "actor": lambda ctx: ctx.event.actor.id,
    "action": lambda ctx: ctx.event.action,
    "category": lambda ctx: ctx.event.resource.category,
    "dataset": lambda ctx: ctx.event.resource.dataset,
    "resource": lambda ctx: ctx.event.resource.id,
    "store": lambda ctx: ctx.event.resource.store,
    "region": lambda ctx: ctx.event.resource.region,
}
"""What a message template may name, as ``$name`` or ``${name}``."""

MAY_BE_EMPTY = frozenset({"approval", "related"})
"""The names of :data:`VARIABLES` whose value is empty for some findings (no approval, no related party)."""


class MessageTemplate:
    """A message template over :data:`VARIABLES`, checked and compiled once (:class:`PackTemplate`).

    Raises :class:`~audit.policy.wording.TemplateError` (a ``ValueError``) for a ``$``
    that starts no placeholder or an unknown name.
    """

    def __init__(self, template: str | PackTemplate) -> None:
        self._template = template if isinstance(template, PackTemplate) else PackTemplate(template, VARIABLES)
        self._getters = tuple((name, VARIABLES[name]) for name in self._template.names)

    def __call__(self, ctx: FindingContext) -> str:
        return self._template.fill({name: get(ctx) for name, get in self._getters})


def _home_texts(metadata: RuleMetadata, home: str) -> RuleMetadata:
    """Engine metadata with ``$home`` filled in (the only placeholder engine texts use)."""
    fields = ("title", "description", "remediation")
    changed = {f: fill_home(getattr(metadata, f), home) for f in fields if "$" in getattr(metadata, f)}
    return metadata.model_copy(update=changed) if changed else metadata


def _pack_rule(rule: PackRule, engine: Mapping[str, Rule], pack: PolicyPack) -> Rule:
    where = pack.directory / RULES_FILE
    base = engine.get(rule.kind)
    if base is None:
        raise rule.refusal(f"kind {rule.kind!r} is not an engine rule", where, "kind")
    message = rule.template("message", VARIABLES, where, MAY_BE_EMPTY)
    explain = base.explain if message is None else MessageTemplate(message)
    metadata = RuleMetadata(
        id=rule.id,
        title=rule.title,
        severity=rule.severity,
        commitment=rule.commitment,
        description=rule.description,
        remediation=rule.remediation,
    )
    return Rule(metadata=metadata, explain=explain, kind=base.id)


def rule_book(pack: PolicyPack, engine: Mapping[str, Rule]) -> dict[str, Rule]:
    """Every rule a finding under ``pack`` can be reported with, by id.

    A pack rule with an engine rule's id replaces it for this pack.
    """
    home = pack.config.home.name
    book = {
        rule_id: Rule(_home_texts(rule.metadata, home), rule.explain, rule.kind) for rule_id, rule in engine.items()
    }
    for rule in pack.rules:
        if rule.scope == "replay":
            book[rule.id] = _pack_rule(rule, engine, pack)
    return book
