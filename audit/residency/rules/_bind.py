"""A pack's residency rule book: the engine's residency rules in the pack's words.

A pack's ``rules.yaml`` rule with ``scope: residency`` reports an engine rule (its
``kind``) with the pack's id, commitment, severity, texts and message templates
(``message`` for a store, ``copy_message`` for a copy; ``$name`` placeholders from
:data:`~audit.residency.rules.base.VARIABLES`, checked and filled by
:mod:`audit.policy.wording`, never evaluated). ``stores``
limits it to hits about some store classes; a rule naming the hit's class is
preferred to one without ``stores``.

A finding must cite a commitment, and engine rules carry none. So every engine
rule whose hits carry no commitment of their own needs a pack rule for every store
class (one without ``stores`` does); otherwise the scan is refused with an input
error naming ``rules.yaml``. Hits of store-after-deadline carry their transitional
store set's commitment: without a pack rule they are reported in the engine's
words (``$home`` filled in) under the engine's id.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.errors import InputError
from audit.models import Severity
from audit.policy import PackRule
from audit.policy.wording import PackTemplate, fill_home
from audit.report.residency import ResidencyFinding
from audit.residency.models import DataStore, ResidencySettings
from audit.residency.rules.base import MAY_BE_EMPTY, VARIABLES, Hit, ResidencyRule, StoreContext


@dataclass(frozen=True)
class Words:
    """How one rule reports a hit: id, commitment, texts and message templates."""

    id: str
    title: str
    severity: Severity
    commitment: str | None
    remediation: str
    message: PackTemplate
    copy_message: PackTemplate
    stores: frozenset[str] = frozenset()


@dataclass(frozen=True)
class BoundRule:
    """An engine rule with the words of every pack rule reporting it (and its own, last)."""

    engine: ResidencyRule
    words: tuple[Words, ...]

    def _words(self, hit: Hit) -> Words:
        specific = [w for w in self.words if hit.store_class in w.stores]
        return specific[0] if specific else next(w for w in self.words if not w.stores)

    def findings(self, store: DataStore, ctx: StoreContext) -> list[ResidencyFinding]:
        """The findings for one store (none if the rule does not apply)."""
        found = []
        for hit in self.engine.check(store, ctx):
            words = self._words(hit)
            commitment = words.commitment or hit.commitment
            if commitment is None:  # excluded by residency_book
                raise InputError(f"no commitment for residency rule {words.id}", path=ctx.settings.rules_file)
            template = words.copy_message if hit.is_copy else words.message
            found.append(
                ResidencyFinding(
                    rule_id=words.id,
                    commitment=commitment,
                    severity=words.severity,
                    status=self.engine.metadata.status,
                    title=words.title,
                    message=template.fill(hit.values),
                    remediation=words.remediation,
                    provider=store.provider,
                    account=store.account,
                    region=hit.region,
                    resource=hit.resource,
                    kind=hit.kind,
                    store=store.resource,
                )
            )
        return found


def _engine_words(rule: ResidencyRule, home: str) -> Words:
    meta = rule.metadata
    return Words(
        id=meta.id,
        title=fill_home(meta.title, home),
        severity=meta.severity,
        commitment=meta.commitment,
        remediation=fill_home(meta.remediation, home),
        message=PackTemplate(rule.message, VARIABLES),
        copy_message=PackTemplate(rule.copy_message, VARIABLES),
    )


def _pack_words(rule: PackRule, engine: ResidencyRule, own: Words, settings: ResidencySettings) -> Words:
    """``rule``'s words for hits of ``engine``, whose ``own`` words fill in the messages it does not give."""
    pack = settings.pack
    if engine.id == "store-after-deadline":
        classes = frozenset(s.store_class for s in pack.transitional_stores)
    else:
        classes = pack.named_store_classes()
    unknown = sorted(set(rule.stores) - classes)
    if unknown:
        raise rule.refusal(
            f"stores: {unknown[0]!r} is not a store class {engine.id} reports", settings.rules_file, "stores"
        )
    message = rule.template("message", VARIABLES, settings.rules_file, MAY_BE_EMPTY)
    copy_message = rule.template("copy_message", VARIABLES, settings.rules_file, MAY_BE_EMPTY) or message
    return Words(
        id=rule.id,
        title=rule.title,
        severity=rule.severity,
        commitment=rule.commitment,
        remediation=rule.remediation,
        message=message or own.message,
        copy_message=copy_message or own.copy_message,
        stores=frozenset(rule.stores),
    )


def _covers_every_class(words: list[Words], settings: ResidencySettings) -> bool:
    if any(not w.stores for w in words):
        return True
    covered = frozenset().union(*(w.stores for w in words))
    return settings.pack.named_store_classes() <= covered


def _bind(rule: ResidencyRule, settings: ResidencySettings) -> BoundRule:
    own = _engine_words(rule, settings.home)
    words = [
        _pack_words(pack_rule, rule, own, settings)
        for pack_rule in settings.rules
        if pack_rule.scope == "residency" and pack_rule.kind == rule.id
    ]
    if not rule.own_commitments and rule.metadata.commitment is None and not _covers_every_class(words, settings):
        raise InputError(
            f"residency rule {rule.id!r} cites no commitment: add a rule with scope: residency and "
            f"kind: {rule.id} (without stores:) naming the commitment it implements",
            path=settings.rules_file,
        )
    return BoundRule(rule, (*words, own))


def residency_book(engine: tuple[ResidencyRule, ...], settings: ResidencySettings) -> tuple[BoundRule, ...]:
    """Every engine rule bound to the pack's words; an ``InputError`` at ``rules.yaml`` if one cannot be."""
    kinds = {rule.id for rule in engine}
    for pack_rule in settings.rules:
        if pack_rule.scope == "residency" and pack_rule.kind not in kinds:
            raise pack_rule.refusal(
                f"kind {pack_rule.kind!r} is not a residency engine rule (known: {', '.join(sorted(kinds))})",
                settings.rules_file,
                "kind",
            )
    return tuple(_bind(rule, settings) for rule in engine)
