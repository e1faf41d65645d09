"""Judging one use of one approval at the event's own time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from audit.logs.approvals import ApprovalSet
from audit.models import AccessEvent, Approval
from audit.policy import PackConfig, load_pack
from audit.replay.approvals import approval_states
from tests.conftest import POLICIES


@pytest.fixture(scope="module")
def config() -> PackConfig:
    return load_pack(POLICIES).config


def _approval(**over: Any) -> Approval:
    base: dict[str, Any] = {
        "approval_id": "A1",
        "requester": "cn-eng-01",
        "approvers": [
            {"id": "sec-01", "team": "us-data-security", "country": "US", "approved_at": "2021-10-01T00:00:00Z"}
        ],
        "scope": {"datasets": ["us-videos"], "categories": ["public_video"], "actions": ["read"]},
        "not_before": "2021-10-01T00:00:00Z",
        "not_after": "2021-10-31T23:59:59Z",
    }
    base.update(over)
    return Approval.model_validate(base)


def _event(time: str = "2021-10-10T10:00:00Z", **over: Any) -> AccessEvent:
    base: dict[str, Any] = {
        "event_id": "e1",
        "time": time,
        "actor": {"id": "cn-eng-01", "office_country": "CN", "physical_country": "CN"},
        "action": "read",
        "approval_ids": ["A1"],
        "resource": {
            "id": "r1",
            "dataset": "us-videos",
            "category": "public_video",
            "store": "oci",
            "provider": "oci",
            "region": "us-ashburn-1",
        },
    }
    base.update(over)
    return AccessEvent.model_validate(base)


def _states(event: AccessEvent, *approvals: Approval, config: PackConfig) -> list[str]:
    found = ApprovalSet({a.approval_id: a for a in approvals}, Path("a.jsonl"), False, "0" * 64)
    return [s.state for s in approval_states(event, found, config)]


def test_valid_approval(config: PackConfig) -> None:
    assert _states(_event(), _approval(), config=config) == ["valid"]


def test_no_approval_cited(config: PackConfig) -> None:
    assert _states(_event(approval_ids=[]), _approval(), config=config) == ["none"]


def test_unknown_approval(config: PackConfig) -> None:
    assert _states(_event(approval_ids=["A9"]), _approval(), config=config) == ["unknown_id"]


@pytest.mark.parametrize(
    ("time", "over", "state"),
    [
        ("2021-11-01T00:00:00Z", {}, "expired"),
        ("2021-09-30T23:59:59Z", {}, "not_yet_valid"),
        ("2021-10-20T00:00:00Z", {"revoked_at": "2021-10-15T00:00:00Z"}, "revoked"),
    ],
)
def test_window_is_judged_at_event_time(config: PackConfig, time: str, over: dict[str, Any], state: str) -> None:
    assert _states(_event(time), _approval(**over), config=config) == [state]


def test_boundaries_are_inclusive(config: PackConfig) -> None:
    assert _states(_event("2021-10-31T23:59:59Z"), _approval(), config=config) == ["valid"]
    assert _states(_event("2021-10-01T00:00:00Z"), _approval(), config=config) == ["valid"]


def test_revocation_after_use_does_not_matter(config: PackConfig) -> None:
    assert _states(_event(), _approval(revoked_at="2021-10-20T00:00:00Z"), config=config) == ["valid"]


@pytest.mark.parametrize(
    "over",
    [
        {"action": "export"},
        {
            "resource": {
                "id": "r1",
                "dataset": "us-comments",
                "category": "public_video",
                "store": "oci",
                "provider": "oci",
                "region": "us-ashburn-1",
            }
        },
        {
            "resource": {
                "id": "r1",
                "dataset": "us-videos",
                "category": "public_comment",
                "store": "oci",
                "provider": "oci",
                "region": "us-ashburn-1",
            }
        },
    ],
)
def test_scope_exceeded(config: PackConfig, over: dict[str, Any]) -> None:
    assert _states(_event(**over), _approval(), config=config) == ["scope_exceeded"]


def test_wildcard_scope(config: PackConfig) -> None:
    approval = _approval(scope={"datasets": ["*"], "categories": ["*"], "actions": ["*"]})
    assert _states(_event(action="export"), approval, config=config) == ["valid"]


def test_self_approval_and_foreign_approver(config: PackConfig) -> None:
    approval = _approval(
        approvers=[{"id": "cn-eng-01", "team": "cn-eng", "country": "CN", "approved_at": "2021-10-01T00:00:00Z"}]
    )
    assert _states(_event(), approval, config=config) == ["self_approved", "approver_not_security_team"]


def test_us_approver_outside_security_team(config: PackConfig) -> None:
    approval = _approval(
        approvers=[{"id": "mgr", "team": "us-product", "country": "US", "approved_at": "2021-10-01T00:00:00Z"}]
    )
    assert _states(_event(), approval, config=config) == ["approver_not_security_team"]


def test_security_team_member_outside_the_us(config: PackConfig) -> None:
    approval = _approval(
        approvers=[{"id": "sec-9", "team": "us-data-security", "country": "SG", "approved_at": "2021-10-01T00:00:00Z"}]
    )
    assert _states(_event(), approval, config=config) == ["approver_not_security_team"]


def test_threshold_counts_distinct_approvers_before_use(config: PackConfig) -> None:
    two = [
        {"id": "sec-01", "team": "us-data-security", "country": "US", "approved_at": "2021-10-01T00:00:00Z"},
        {"id": "sec-02", "team": "us-data-security", "country": "US", "approved_at": "2021-10-12T00:00:00Z"},
    ]
    approval = _approval(approvers=two, threshold=2)
    assert _states(_event("2021-10-10T00:00:00Z"), approval, config=config) == ["threshold_not_met"]
    assert _states(_event("2021-10-13T00:00:00Z"), approval, config=config) == ["valid"]


def test_wrong_requester(config: PackConfig) -> None:
    event = _event(actor={"id": "cn-eng-02", "office_country": "CN", "physical_country": "CN"})
    assert _states(event, _approval(), config=config) == ["wrong_requester"]


def test_break_glass_needs_justification_and_review(config: PackConfig) -> None:
    approval = _approval(break_glass=True)
    assert _states(_event(), approval, config=config) == ["break_glass_unjustified", "break_glass_unreviewed"]
    reviewed = _approval(
        break_glass=True,
        review={"reviewer": "sec-02", "team": "us-data-security", "reviewed_at": "2021-11-01T00:00:00Z"},
    )
    assert _states(_event(justification="INC-1"), reviewed, config=config) == ["valid"]


def test_naive_timestamps_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone"):
        _event("2021-10-10T10:00:00")


def test_times_are_normalised_to_utc() -> None:
    assert _event("2021-10-10T12:00:00+02:00").time == datetime(2021, 10, 10, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("review", "counts"),
    [
        ({"reviewer": "cn-eng-01", "team": "us-data-security", "reviewed_at": "2021-11-01T00:00:00Z"}, False),
        ({"reviewer": "mgr-7", "team": "cn-eng-mgmt", "reviewed_at": "2021-11-01T00:00:00Z"}, False),
        ({"reviewer": "sec-02", "team": "us-data-security", "reviewed_at": "2021-11-01T00:00:00Z"}, True),
    ],
)
def test_break_glass_review_must_come_from_us_security_and_not_the_requester(
    config: PackConfig, review: dict[str, str], counts: bool
) -> None:
    states = _states(_event(justification="INC-9"), _approval(break_glass=True, review=review), config=config)
    assert states == (["valid"] if counts else ["break_glass_unreviewed"])


def test_approval_window_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="not_after is before not_before"):
        _approval(not_before="2021-10-31T00:00:00Z", not_after="2021-10-01T00:00:00Z")


def test_disclosure_must_name_its_recipient() -> None:
    with pytest.raises(ValueError, match="disclose event must name its recipient"):
        _event(action="disclose")


@pytest.mark.parametrize("value", [1, 0, "true", "yes", "on", "1", 1.0])
def test_break_glass_is_a_json_boolean_not_anything_pydantic_would_coerce(value: object) -> None:
    """Regression: pydantic's lax mode read ``"yes"``, ``1`` or ``"on"`` as ``true``; the
    record formats say boolean, and msgspec's fast decoder already refused them."""
    with pytest.raises(ValueError, match="valid boolean"):
        _approval(break_glass=value)
    with pytest.raises(ValueError, match="valid boolean"):
        _event(break_glass=value)


@pytest.mark.parametrize("value", ["2", 2.0, True])
def test_approval_threshold_is_a_json_integer(value: object) -> None:
    with pytest.raises(ValueError, match="valid integer"):
        _approval(threshold=value)
