"""The shape of a residency engine rule, the context it judges a store in, and what it flags.

Engine rules are generic: they know the pack's home, store sets and deadlines only
through :class:`~audit.residency.models.ResidencySettings`, carry no commitment, and
word their texts with ``$home`` and the other :data:`VARIABLES` of a hit. A pack's
``rules.yaml`` (``scope: residency``) reports them in its own words with its own ids
and commitments (:mod:`audit.residency.rules._bind`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from audit.models import CommitmentId, NonEmpty, Severity
from audit.replay.rules.base import RuleId
from audit.report.residency import FindingStatus
from audit.residency.models import DataStore, ResidencySettings, StoreCopy
from audit.residency.places import holds_home_data, store_at_home, store_class

VARIABLES = (
    "home",
    "store",
    "resource",
    "kind",
    "region",
    "where",
    "target",
    "copy_kind",
    "store_class",
    "as_of",
    "deadline",
    "deadline_label",
    "set",
    "region_tag",
)
"""What a residency message template may name (``$name``): every hit has each of them.

``store`` is ``kind name (provider region)`` of the judged store; ``resource``,
``kind`` and ``region`` are the flagged store's or copy's (``target`` and
``copy_kind`` the copy's, else the store's); ``where`` is ``region R`` or ``an
unknown region``; ``deadline``, ``deadline_label`` and ``set`` (its description)
are the transitional store set's, empty for other rules.
"""

MAY_BE_EMPTY = frozenset({"region", "deadline", "deadline_label", "set", "region_tag"})
"""The names of :data:`VARIABLES` whose value is empty for some hits."""


class ResidencyRuleMetadata(BaseModel):
    """Validated metadata every residency rule file declares (texts may say ``$home``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: RuleId
    title: NonEmpty
    severity: Severity
    commitment: CommitmentId | None = None
    """``None`` for engine rules: a pack's rule (or a hit, for deadlines) names the commitment."""
    status: FindingStatus
    description: NonEmpty
    remediation: NonEmpty


@dataclass(frozen=True)
class StoreContext:
    """Everything a rule may look at: the settings and every store by resource id."""

    settings: ResidencySettings
    stores: Mapping[str, DataStore]


@dataclass(frozen=True)
class Hit:
    """One thing a rule flags: the resource (a store or a copy target) and the words about it.

    ``store_class`` selects which of a pack's rules reports it (``stores:``);
    ``commitment`` is the hit's own (a transitional store's), used when no pack rule
    gives one; ``values`` fill the message template.
    """

    resource: str
    region: str | None
    kind: str
    is_copy: bool
    store_class: str
    values: Mapping[str, str] = field(default_factory=dict)
    commitment: str | None = None


@dataclass(frozen=True)
class ResidencyRule:
    """A residency engine rule: metadata, a function listing what it flags on one store, and messages.

    ``message`` words a hit on a store and ``copy_message`` a hit on a copy (templates
    over :data:`VARIABLES`). ``own_commitments``: its hits carry their commitment, so a
    pack need not map it.
    """

    metadata: ResidencyRuleMetadata
    check: Callable[[DataStore, StoreContext], Iterable[Hit]]
    message: str
    copy_message: str
    own_commitments: bool = False

    @property
    def id(self) -> str:
        return self.metadata.id


def describe(store: DataStore) -> str:
    """``kind name (provider region)`` for messages."""
    return f"{store.kind} {store.name} ({store.provider} {store.region})"


def _values(store: DataStore, ctx: StoreContext, resource: str, region: str | None, kind: str) -> dict[str, str]:
    settings = ctx.settings
    return {
        "home": settings.home,
        "store": describe(store),
        "resource": resource,
        "kind": kind,
        "region": region or "",
        "where": f"region {region}" if region else "an unknown region",
        "target": resource,
        "copy_kind": kind,
        "as_of": settings.as_of.isoformat(),
        "deadline": "",
        "deadline_label": "",
        "set": "",
        "region_tag": settings.region_tag,
    }


def store_hit(store: DataStore, ctx: StoreContext, **values: str) -> Hit:
    """A hit on the store itself (``values`` add to or override :data:`VARIABLES`)."""
    cls = values.get("store_class") or store_class(store.provider, store.region, store.country, ctx.settings)
    words = {**_values(store, ctx, store.resource, store.region, store.kind), "store_class": cls, **values}
    return Hit(store.resource, store.region, store.kind, False, cls, words)


def copy_hit(store: DataStore, copy: StoreCopy, ctx: StoreContext, **values: str) -> Hit:
    """A hit on one of the store's copies (``values`` add to or override :data:`VARIABLES`)."""
    cls = values.get("store_class") or store_class(copy.provider, copy.region, copy.country, ctx.settings)
    words = {**_values(store, ctx, copy.target, copy.region, copy.kind), "store_class": cls, **values}
    return Hit(copy.target, copy.region, copy.kind, True, cls, words)


def offshore_copy(store: DataStore, ctx: StoreContext) -> bool:
    """Whether ``store`` is a copy of home user data away from home (copy-outside-home reports it)."""
    source = ctx.stores.get(store.copy_of) if store.copy_of is not None else None
    return source is not None and holds_home_data(source, ctx.settings) and not store_at_home(store, ctx.settings)
