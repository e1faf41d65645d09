"""The general pack format decides exactly as the US-specific engine did for the US pack.

Until issue 19 the engine itself knew Singapore backups, own data centres and "OCI in
a US region"; now ``pack.yaml`` says so. The reference functions below are that
engine's code, kept verbatim (with its constants from the old ``pack.yaml``), and
the config-driven facts must agree with them on every combination of provider,
region, store kind, country and date around each deadline.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

from audit.models import Resource
from audit.policy import load_pack
from audit.replay.facts import location_class, store_class
from tests.conftest import POLICIES

_SINGAPORE_REGIONS = ("ap-singapore-1", "ap-southeast-1", "asia-southeast1", "singapore")
_SINGAPORE_DEADLINE = date(2021, 12, 1)
_OWN_DC_PHASE_OUT = date(2022, 1, 15)
_MULTI = ("NAM", "ANY", "EU", "APAC", "LATAM", "EMEA", "GLOBAL")


def _is_us_region(region: str) -> bool:
    return region.lower().startswith("us-") or region.lower() in {"us", "usa"}


def _old_store_class(resource: Resource, at: datetime) -> str:
    region = resource.region.lower()
    if region in _SINGAPORE_REGIONS and resource.store_kind == "backup":
        expired = at.date() >= _SINGAPORE_DEADLINE
        return "singapore_backup_expired" if expired else "singapore_backup"
    if resource.provider == "own_dc":
        return "own_dc_expired" if at.date() >= _OWN_DC_PHASE_OUT else "own_dc"
    if resource.provider == "oci":
        return "oci_us" if _is_us_region(region) else "oci_foreign"
    return "other_cloud"


def _old_location_class(country: str | None) -> str:
    if country is None:
        return "unlocated_staff"
    code = country.strip().upper() if country.isascii() else country
    if code in _MULTI or len(code) != 2 or not (code.isascii() and code.isalpha()):
        return "unlocated_staff"
    return "us_staff" if code == "US" else "foreign_staff"


REGIONS = (
    *_SINGAPORE_REGIONS,
    "AP-Singapore-1",
    "us-ashburn-1",
    "US-East-1",
    "us-gov-west-1",
    "us",
    "USA",
    "usa-1",
    "u-s",
    "eu-frankfurt-1",
    "ap-tokyo-1",
    "us-virginia",
    "singapore-2",
)
PROVIDERS = ("oci", "aws", "gcp", "azure", "own_dc", "other")
KINDS = ("primary", "replica", "backup", "cache")


def _moments() -> list[datetime]:
    days = [date(2020, 1, 1), date(2030, 1, 1)]
    for deadline in (_SINGAPORE_DEADLINE, _OWN_DC_PHASE_OUT):
        days += [deadline - timedelta(days=1), deadline, deadline + timedelta(days=1)]
    instants = [datetime.combine(d, datetime.min.time(), UTC) for d in days]
    return instants + [t - timedelta(microseconds=1) for t in instants]


def test_store_classes_agree_with_the_old_engine_everywhere() -> None:
    config = load_pack(POLICIES).config
    checked = 0
    for provider, region, kind, at in itertools.product(PROVIDERS, REGIONS, KINDS, _moments()):
        resource = Resource(
            id="r", dataset="d", category="contact", store="s", provider=provider, region=region, store_kind=kind
        )
        assert store_class(resource, at, config) == _old_store_class(resource, at), (provider, region, kind, at)
        checked += 1
    assert checked == len(PROVIDERS) * len(REGIONS) * len(KINDS) * 16


def test_location_classes_agree_with_the_old_engine() -> None:
    config = load_pack(POLICIES).config
    for code in (None, "US", "us", "CN", "SG", "NAM", "any", "USA", "", "u\u017f", "ZZ", "GB"):
        assert location_class(code, config) == _old_location_class(code), code
