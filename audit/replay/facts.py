"""Derive the small fact vocabulary that the policy pack decides on.

Facts come from data (where an actor was, which store a resource lives in, whether
a deadline had passed at the event's time); decisions come from ``policies/``. This
module never decides whether something is allowed. Its vocabularies are the ones the
pack's ``model.conf``/``policy.csv`` are written against (see docs/policy.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

from audit.models import AccessEvent, Actor, Resource
from audit.policy import PackConfig, PolicyPack, Request

UNLOCATED = "unlocated_staff"
FOREIGN_STAFF = "foreign_staff"
UNCLASSIFIED = "unclassified"
NONE = "-"

_THIRD_PARTY_KINDS = {"vendor": "vendor", "advertiser": "advertiser"}
_AUTHORITY_KINDS = {"law_enforcement": "law_enforcement", "government": "government"}


def location_class(country: str | None, config: PackConfig) -> str:
    """The pack's home staff class, ``foreign_staff`` or ``unlocated_staff`` for one country code.

    Unknown, empty or multi-region codes (``NAM``, ``ANY``, ...) are never proof of
    presence at home: they are *unlocated*, which the pack treats as foreign.
    """
    if country is None:
        return UNLOCATED
    # ASCII case folding only: "u\u017f".upper() == "US" in Python, so non-ASCII is never folded.
    code = country.strip().upper() if country.isascii() else country
    if code in config.multi_region_codes or len(code) != 2 or not (code.isascii() and code.isalpha()):
        return UNLOCATED
    return config.home.staff_class if code in config.home.countries else FOREIGN_STAFF


def actor_class(actor: Actor, config: PackConfig) -> str:
    """Class of the acting party: third parties by kind, staff by physical location.

    Where the physical country is unknown the office country is used; where both are
    known and differ, the physical country decides (an engineer travelling abroad is
    abroad).
    """
    return location_or_kind_class(actor.kind, actor.physical_country, actor.office_country, config)


def location_or_kind_class(kind: str, physical: str | None, office: str | None, config: PackConfig) -> str:
    """:func:`actor_class` on plain fields (the replay fast path has no pydantic model)."""
    if kind in _THIRD_PARTY_KINDS:
        return _THIRD_PARTY_KINDS[kind]
    return location_class(physical if physical is not None else office, config)


class RecipientView(Protocol):
    """What :func:`recipient_class` reads: a :class:`~audit.models.Recipient` or the fast path's mirror of one."""

    @property
    def kind(self) -> str: ...
    @property
    def country(self) -> str | None: ...


def recipient_class(recipient: RecipientView, config: PackConfig) -> str:
    """Class of whoever received data: authorities, third parties, or staff by country."""
    if recipient.kind in _AUTHORITY_KINDS:
        return _AUTHORITY_KINDS[recipient.kind]
    if recipient.kind in _THIRD_PARTY_KINDS:
        return _THIRD_PARTY_KINDS[recipient.kind]
    return location_class(recipient.country, config)


Handoff = tuple[str, bool, str | None]
"""A proxy judgement deferred to the end of the log: how (``handed to``, ``on behalf of``),
whether the colleague is the event's recipient (else its ``on_behalf_of``), and the
colleague's class the event states (from an employee recipient's country)."""


def proxy_handoffs(
    recipient: RecipientView | None, on_behalf_of: str | None, config: PackConfig
) -> tuple[Handoff, ...]:
    """The proxy judgements an event defers, in order: data handed to an employee, then access on a colleague's behalf.

    The engine defers them for every event it judges; the fast path keeps them in a plan.
    """
    handoffs: list[Handoff] = []
    if recipient is not None and recipient.kind == "employee":
        stated = recipient_class(recipient, config) if recipient.country is not None else None
        handoffs.append(("handed to", True, stated))
    if on_behalf_of is not None:
        handoffs.append(("on behalf of", False, None))
    return tuple(handoffs)


def category_fact(category: str, pack: PolicyPack) -> str:
    """The category itself if the pack classifies it, else ``unclassified`` (fail closed)."""
    return category if category in pack.categories else UNCLASSIFIED


def store_class(resource: Resource, at: datetime, config: PackConfig) -> str:
    """Residency class of the store an event touched, at the event's time.

    The first store set of ``pack.yaml`` that matches (transitional, approved, other,
    in that order); a transitional store is ``<class>_expired`` on and after its
    deadline (the event's UTC date); no match is the pack's default class.
    """
    provider, region, kind = resource.provider, resource.region, resource.store_kind
    for store in config.transitional_stores:
        if store.matches(provider, region, None, kind):
            return store.expired_class if _utc_date(at) >= store.deadline else store.store_class
    for named in (*config.approved_stores, *config.other_stores):
        if named.matches(provider, region, None, kind):
            return named.store_class
    return config.default_store_class


def _utc_date(at: datetime) -> date:
    return at.astimezone(UTC).date() if at.utcoffset() else at.date()


def legal_basis_fact(event: AccessEvent) -> str:
    """Kind of legal process or exigency cited by a disclosure, or ``none``."""
    return event.legal_basis.kind if event.legal_basis is not None else "none"


@dataclass(frozen=True)
class Fact:
    """One request for the pack, with what a finding should say about it."""

    request: Request
    detail: str
    related: str | None = None


def _store_detail(store: str, config: PackConfig) -> str:
    """``<label> <date>`` for an expired transitional store, else the class itself."""
    for transitional in config.transitional_stores:
        if store == transitional.expired_class:
            return f"{transitional.deadline_label} {transitional.deadline.isoformat()}"
    return store


def base_facts(event: AccessEvent, pack: PolicyPack, actor: str) -> list[Fact]:
    """The requests every event gets: location, storage, classification, and any disclosure.

    A disclosure to a recipient outside home (located as staff are: an unknown or
    multi-region code is not home) is also a ``transfer`` request, with the same
    fields, when the pack asks for transfers (``pack.yaml`` ``transfers``).

    Access requests (one per approval state) and proxy requests (which may need a
    colleague seen later in the log) are built by the engine.
    """
    config = pack.config
    store = store_class(event.resource, event.time, config)
    facts = [
        Fact(("location", actor, NONE, NONE, NONE), "actor location"),
        Fact(("storage", actor, store, event.action, NONE), _store_detail(store, config)),
        Fact(
            ("classification", actor, category_fact(event.resource.category, pack), event.action, NONE),
            f"category {event.resource.category}",
        ),
    ]
    recipient = event.recipient
    if recipient is not None and recipient.kind != "employee":
        basis = legal_basis_fact(event)
        sub, obj = recipient_class(recipient, config), category_fact(event.resource.category, pack)
        facts.append(Fact(("disclosure", sub, obj, event.action, basis), f"legal basis: {basis}", recipient.id))
        if config.transfers and location_class(recipient.country, config) != config.home.staff_class:
            where = recipient.country or "an unknown country"
            request: Request = ("transfer", sub, obj, event.action, basis)
            facts.append(Fact(request, f"recipient in {where}; transfer basis: {basis}", recipient.id))
    return facts
