"""Where a store is and whose data it holds: region-to-country and tag classification.

A place's country is the one declared, else the one the pack's ``region_countries``
gives its cloud region; a place with neither is in no known country, and an unknown
place is never taken to be at home. Which store sets (``pack.yaml``) a place is in
is :func:`in_set` and :func:`store_class`. Does not judge anything: rules do.
"""

from __future__ import annotations

from collections.abc import Mapping

from audit.policy import StoreSet
from audit.residency.models import Classification, DataStore, ResidencySettings, StoreCopy

NO_USER_DATA = frozenset({"none", "no-user-data", "-"})
"""Values of the subject-region tag meaning "holds no user data"."""


def _split(value: str) -> tuple[str, ...]:
    parts = (p.strip() for p in value.replace(";", ",").replace(" ", ",").split(","))
    return tuple(sorted({p for p in parts if p}))


def classify(tags: Mapping[str, str], settings: ResidencySettings) -> Classification | None:
    """Classification from tags, or ``None`` when the subject-region tag is absent.

    The subject-region tag holds country codes separated by commas (``US`` or
    ``US,CA``), or ``none`` for a store without user data.
    """
    lowered = {k.strip().lower(): v for k, v in tags.items()}
    value = lowered.get(settings.region_tag.lower())
    if value is None or not value.strip():
        return None
    regions = () if value.strip().lower() in NO_USER_DATA else tuple(_code(r) for r in _split(value))
    categories = _split(lowered.get(settings.category_tag.lower(), ""))
    return Classification(subject_regions=regions, categories=categories, source="tags")


def _code(value: str) -> str:
    """A tag's country code in upper case, folded only when ASCII (``"u\\u017f".upper() == "US"`` in Python)."""
    value = value.strip()
    return value.upper() if value.isascii() else value


def country_of(region: str | None, country: str | None, settings: ResidencySettings) -> str | None:
    """ISO country of a place: the declared country, else the pack's country of its cloud region."""
    if country:
        return _code(country)
    if region is None:
        return None
    return settings.pack.country_of_region(region)


def at_home(region: str | None, country: str | None, settings: ResidencySettings) -> bool:
    """Whether a place is known to be in a home country."""
    return settings.pack.is_home(country_of(region, country, settings))


def store_at_home(store: DataStore, settings: ResidencySettings) -> bool:
    """Whether the store itself is at home."""
    return at_home(store.region, store.country, settings)


def copy_at_home(copy: StoreCopy, settings: ResidencySettings) -> bool:
    """Whether a copy's destination is known to be at home."""
    return at_home(copy.region, copy.country, settings)


def holds_home_data(store: DataStore, settings: ResidencySettings) -> bool:
    """Whether the store is classified as holding user data of home data subjects."""
    cls = store.classification
    return cls is not None and any(settings.pack.is_home(r) for r in cls.subject_regions)


def in_set(store_set: StoreSet, provider: str, region: str | None, country: str | None) -> bool:
    """Whether a place is in a store set; a declared country that is not ASCII never matches one."""
    declared = _code(country) if country else None
    if declared is not None and not declared.isascii():
        declared = None
    return store_set.matches(provider, region or "", declared, None)


def store_class(provider: str, region: str | None, country: str | None, settings: ResidencySettings) -> str:
    """The class of the first store set a place is in (transitional, approved, other), else the default."""
    for store_set in settings.pack.store_sets():
        if in_set(store_set, provider, region, country):
            return store_set.store_class
    return settings.pack.default_store_class


def approved_providers(settings: ResidencySettings) -> frozenset[str] | None:
    """Providers the approved store sets name (``None``: a set names none, so any provider may be approved)."""
    sets = settings.pack.approved_stores
    if any(not s.providers for s in sets):
        return None
    return frozenset(p for s in sets for p in s.providers)


def transitional_providers(settings: ResidencySettings) -> frozenset[str]:
    """Providers a transitional store set names (their stores are judged by their deadline)."""
    return frozenset(p for s in settings.pack.transitional_stores for p in s.providers)
