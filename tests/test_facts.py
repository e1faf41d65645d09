"""Fact derivation: locations, store classes and categories."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from audit.models import Actor, Resource
from audit.policy import PackConfig, PolicyPack, load_pack
from audit.replay.facts import actor_class, category_fact, location_class, store_class
from tests.conftest import POLICIES


@pytest.fixture(scope="module")
def pack() -> PolicyPack:
    return load_pack(POLICIES)


@pytest.mark.parametrize(
    ("country", "expected"),
    [
        ("US", "us_staff"),
        ("us", "us_staff"),
        ("CN", "foreign_staff"),
        ("SG", "foreign_staff"),
        (None, "unlocated_staff"),
        ("", "unlocated_staff"),
        ("NAM", "unlocated_staff"),
        ("ANY", "unlocated_staff"),
        ("U5", "unlocated_staff"),
    ],
)
def test_location_class(pack: PolicyPack, country: str | None, expected: str) -> None:
    assert location_class(country, pack.config) == expected


def test_physical_country_beats_office(pack: PolicyPack) -> None:
    travelling = Actor(id="a", office_country="US", physical_country="CN")
    assert actor_class(travelling, pack.config) == "foreign_staff"
    office_only = Actor(id="a", office_country="US")
    assert actor_class(office_only, pack.config) == "us_staff"
    assert actor_class(Actor(id="v", kind="vendor", physical_country="US"), pack.config) == "vendor"
    assert actor_class(Actor(id="ad", kind="advertiser"), pack.config) == "advertiser"


def _res(**over: Any) -> Resource:
    base: dict[str, Any] = {
        "id": "r",
        "dataset": "d",
        "category": "public_video",
        "store": "s",
        "provider": "oci",
        "region": "us-ashburn-1",
    }
    base.update(over)
    return Resource.model_validate(base)


def test_store_classes(pack: PolicyPack) -> None:
    cfg: PackConfig = pack.config
    dates = {store.store_class: store.deadline for store in cfg.transitional_stores}
    deadline = datetime.combine(dates["singapore_backup"], datetime.min.time(), UTC)
    phase_out = datetime.combine(dates["own_dc"], datetime.min.time(), UTC)
    before = datetime(2021, 9, 1, tzinfo=UTC)
    assert store_class(_res(), before, cfg) == "oci_us"
    assert store_class(_res(region="ap-tokyo-1"), before, cfg) == "oci_foreign"
    assert store_class(_res(provider="aws", region="us-east-1"), before, cfg) == "other_cloud"
    sg = _res(provider="own_dc", region="singapore", store_kind="backup")
    assert store_class(sg, before, cfg) == "singapore_backup"
    assert store_class(sg, deadline, cfg) == "singapore_backup_expired"
    assert store_class(_res(provider="oci", region="ap-singapore-1", store_kind="backup"), deadline, cfg) == (
        "singapore_backup_expired"
    )
    dc = _res(provider="own_dc", region="us-virginia")
    assert store_class(dc, before, cfg) == "own_dc"
    assert store_class(dc, phase_out, cfg) == "own_dc_expired"


def test_unknown_category_is_unclassified(pack: PolicyPack) -> None:
    assert category_fact("precise_location", pack) == "precise_location"
    assert category_fact("shoe_size", pack) == "unclassified"
    assert pack.decide(("access", "foreign_staff", "unclassified", "read", "valid")).allowed is False
