"""Every broken commitment per event (ADR 0007): one finding per commitment a request breaks.

Regressions: a foreign engineer reading precise location without approval broke C1
and C2 but was reported for C2 only; a read from a Singapore backup after its
deletion deadline broke C3 and C4 but was reported for C4 only.
"""

from __future__ import annotations

import itertools

import pytest

from audit.logs.approvals import load_approvals
from audit.models import AccessEvent
from audit.policy import PolicyPack, load_pack, load_policy
from audit.policy.pack import CASBIN_LOCK, DEFAULT_RULE, Decision, Request
from audit.replay.engine import ReplayEngine
from audit.replay.rules import load_rules
from tests.conftest import FIXTURES, POLICIES

ACTORS = ("us_staff", "foreign_staff", "unlocated_staff", "vendor", "advertiser", "law_enforcement")
STATES = ("none", "valid", "expired", "unknown_id", "self_approved", "scope_exceeded")
STORES = ("oci_us", "singapore_backup", "singapore_backup_expired", "own_dc", "own_dc_expired", "aws_us", "other")
ACTIONS = ("read", "export", "delete", "disclose")


@pytest.fixture(scope="module")
def pack() -> PolicyPack:
    return load_pack(POLICIES)


def _event(**overrides: object) -> AccessEvent:
    base: dict[str, object] = {
        "event_id": "evt-regression",
        "time": "2022-03-01T10:00:00Z",
        "actor": {"id": "cn-eng-99", "office_country": "CN", "physical_country": "CN"},
        "action": "read",
        "resource": {
            "id": "r1",
            "dataset": "us-location",
            "category": "precise_location",
            "store": "oci-us-1",
            "provider": "oci",
            "region": "us-ashburn-1",
        },
    }
    base.update(overrides)
    return AccessEvent.model_validate(base)


def _rules_of(event: AccessEvent) -> dict[str, str]:
    engine = ReplayEngine(load_policy(POLICIES), load_approvals(FIXTURES / "approvals.jsonl", None), load_rules())
    return {f.rule_id: f.commitment for f in engine.evaluate(event)}


def test_foreign_read_of_precise_location_without_approval_breaks_c1_and_c2() -> None:
    assert _rules_of(_event()) == {"foreign-sensitive-access": "C2", "foreign-access-without-approval": "C1"}


def test_read_from_a_singapore_backup_after_its_deadline_breaks_c3_and_c4() -> None:
    event = _event(
        actor={"id": "us-eng-01", "office_country": "US", "physical_country": "US"},
        resource={
            "id": "r2",
            "dataset": "us-videos",
            "category": "public_video",
            "store": "sg-backup-1",
            "provider": "oci",
            "region": "ap-singapore-1",
            "store_kind": "backup",
        },
        time="2022-06-29T10:00:00Z",
    )
    assert _rules_of(event) == {"singapore-backup-after-deadline": "C4", "store-outside-oci-us": "C3"}


def _domain(pack: PolicyPack) -> list[Request]:
    categories = sorted(pack.categories)
    access = [("access", a, c, act, s) for a, c, act, s in itertools.product(ACTORS, categories, ACTIONS, STATES)]
    storage = [("storage", a, st, act, "-") for a, st, act in itertools.product(ACTORS[:2], STORES, ACTIONS)]
    return access + storage


def _matching_rows_one_by_one(pack: PolicyPack, request: Request) -> list[Decision]:
    """Oracle: ask pycasbin about each p row alone, in priority order, until an allow row matches."""
    assertion = pack._enforcer.model["p"]["p"]
    everything = list(assertion.policy)
    found: list[Decision] = []
    with CASBIN_LOCK:
        try:
            for fields in everything:
                assertion.policy = [fields]
                allowed, explain = pack._enforcer.enforce_ex(*request)
                if not explain:
                    continue
                row = next(r for r in pack.rows if r.ptype == "p" and list(r.fields) == list(fields))
                if allowed:
                    break
                found.append(Decision(False, row.commitment, row.rule_id, row))
        finally:
            assertion.policy = everything
    return found


def test_broken_agrees_with_first_match_and_with_a_row_by_row_oracle(pack: PolicyPack) -> None:
    for request in _domain(pack):
        first, broken = pack.decide(request), pack.broken(request)
        assert (broken == ()) == first.allowed, request
        if broken:
            assert broken[0] == first, request
        assert len({d.commitment for d in broken}) == len(broken), request  # one per commitment
        oracle = _matching_rows_one_by_one(pack, request)
        specific = [d for d in oracle if d.rule_id != DEFAULT_RULE] or oracle[:1]
        expected: dict[str, Decision] = {}
        for decision in specific:
            expected.setdefault(decision.commitment, decision)
        if not first.allowed and first.row is not None:
            assert broken == tuple(expected.values()), request
        assert pack.decide(request) is first  # the first-match cache is untouched by broken()


def test_default_deny_row_is_reported_only_when_nothing_else_denied(pack: PolicyPack) -> None:
    vendor_sensitive = ("access", "vendor", "precise_location", "read", "none")
    assert [d.rule_id for d in pack.broken(vendor_sensitive)] == ["third-party-sensitive-data"]
    nothing_matches = ("disclosure", "us_staff", "public_video", "disclose", "none")
    assert [d.rule_id for d in pack.broken(nothing_matches)] == [DEFAULT_RULE]
