"""Where a store is and whose data it holds: region-to-country and tag classification.

Cloud regions named ``us-*`` (AWS ``us-east-1``, ``us-gov-west-1``; OCI
``us-ashburn-1``; GCP ``us-central1``) are in the US; the pack's Singapore regions
are in Singapore; every other cloud region is outside the US. An unknown place is
never taken to be the US. Does not judge anything: rules do.
"""

from __future__ import annotations

from collections.abc import Mapping

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
    """ISO country of a place: the declared country, else derived from a cloud region name."""
    if country:
        return _code(country)
    if region is None:
        return None
    name = region.strip().lower()
    if name.startswith("us-"):
        return "US"
    if name in settings.singapore_regions:
        return "SG"
    return None


def store_in_us(store: DataStore, settings: ResidencySettings) -> bool:
    """Whether the store itself is in the US."""
    return country_of(store.region, store.country, settings) in settings.us_country_codes


def copy_in_us(copy: StoreCopy, settings: ResidencySettings) -> bool:
    """Whether a copy's destination is known to be in the US."""
    return country_of(copy.region, copy.country, settings) in settings.us_country_codes


def in_singapore(region: str | None, country: str | None, settings: ResidencySettings) -> bool:
    """Whether a place is one of the pack's Singapore regions (or declared SG)."""
    if country is not None and _code(country) == "SG":
        return True
    return region is not None and region.strip().lower() in settings.singapore_regions


def holds_us_data(store: DataStore, settings: ResidencySettings) -> bool:
    """Whether the store is classified as holding US user data."""
    cls = store.classification
    return cls is not None and any(r in settings.us_country_codes for r in cls.subject_regions)
