"""Approvals: judge one use of one (loading them is :mod:`audit.logs.approvals`).

:func:`approval_states` says, for an event at its own time, what is wrong with each
approval it cites (expired, revoked, out of scope, self-approved, ...) or that it is
``valid``. It does not decide whether the access was allowed: the policy pack does,
on the state this module reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from audit.logs.approvals import ApprovalSet
from audit.models import AccessEvent, Approval
from audit.policy import PackConfig


def _in_scope(values: tuple[str, ...], value: str) -> bool:
    return "*" in values or value in values


def _scope_problem(approval: Approval, event: AccessEvent) -> str | None:
    scope = approval.scope
    res = event.resource
    if not _in_scope(scope.datasets, res.dataset):
        return f"dataset {res.dataset!r} not in scope {list(scope.datasets)}"
    if not _in_scope(scope.categories, res.category):
        return f"category {res.category!r} not in scope {list(scope.categories)}"
    if not _in_scope(scope.actions, event.action):
        return f"action {event.action!r} not in scope {list(scope.actions)}"
    if scope.resource_ids and not _in_scope(scope.resource_ids, res.id):
        return f"resource {res.id!r} not in scope {list(scope.resource_ids)}"
    return None


StateName = Literal[
    "none",
    "valid",
    "unknown_id",
    "expired",
    "not_yet_valid",
    "revoked",
    "scope_exceeded",
    "self_approved",
    "approver_not_security_team",
    "threshold_not_met",
    "wrong_requester",
    "break_glass_unjustified",
    "break_glass_unreviewed",
]


@dataclass(frozen=True)
class ApprovalState:
    """One judgement of one cited approval at the event's time (``state`` is the pack's ctx)."""

    state: StateName
    approval_id: str | None
    detail: str


def _window_state(approval: Approval, at: datetime) -> ApprovalState | None:
    aid = approval.approval_id
    if approval.revoked_at is not None and at >= approval.revoked_at:
        return ApprovalState("revoked", aid, f"revoked at {approval.revoked_at.isoformat()}")
    if at < approval.not_before:
        return ApprovalState("not_yet_valid", aid, f"valid from {approval.not_before.isoformat()}")
    if at > approval.not_after:
        return ApprovalState("expired", aid, f"expired at {approval.not_after.isoformat()}")
    return None


def _approver_states(
    approval: Approval, at: datetime, config: PackConfig, *, judge_threshold: bool
) -> list[ApprovalState]:
    aid = approval.approval_id
    states: list[ApprovalState] = []
    if any(a.id == approval.requester for a in approval.approvers):
        states.append(ApprovalState("self_approved", aid, f"{approval.requester} approved own request"))
    outsiders = [
        a for a in approval.approvers if a.team not in config.security_teams or a.country not in config.home.countries
    ]
    if outsiders:
        who = ", ".join(f"{a.id} ({a.team}, {a.country})" for a in outsiders)
        states.append(ApprovalState("approver_not_security_team", aid, f"approved by {who}"))
    if judge_threshold and not states:
        qualifying = {a.id for a in approval.approvers if a.approved_at <= at}
        if len(qualifying) < approval.threshold:
            states.append(
                ApprovalState(
                    "threshold_not_met",
                    aid,
                    f"{len(qualifying)} of {approval.threshold} required approvals before use",
                )
            )
    return states


def _review_problem(approval: Approval, config: PackConfig) -> str | None:
    """Why a break-glass approval does not count as reviewed, or None if it does."""
    review = approval.review
    if review is None:
        return "break-glass approval never reviewed"
    if review.reviewer == approval.requester:
        return f"break-glass approval reviewed by its own requester {review.reviewer}"
    if review.team not in config.security_teams:
        return f"break-glass approval reviewed by {review.reviewer} ({review.team}), not the security team"
    return None


def approval_states(event: AccessEvent, approvals: ApprovalSet, config: PackConfig) -> list[ApprovalState]:
    """Judge every approval the event cites; ``none`` when it cites none."""
    if not event.approval_ids:
        return [ApprovalState("none", None, "no approval cited")]
    states: list[ApprovalState] = []
    for aid in dict.fromkeys(event.approval_ids):
        approval = approvals.get(aid)
        if approval is None:
            states.append(ApprovalState("unknown_id", aid, "no such approval in the approvals source"))
            continue
        found: list[ApprovalState] = []
        window = _window_state(approval, event.time)
        if window is not None:
            found.append(window)
        if approval.requester != event.actor.id:
            found.append(
                ApprovalState("wrong_requester", aid, f"requested by {approval.requester}, used by {event.actor.id}")
            )
        scope = _scope_problem(approval, event)
        if scope is not None:
            found.append(ApprovalState("scope_exceeded", aid, scope))
        # Sign-offs are counted only for an approval in force: one used outside its
        # window already fails, and counting would report the same use twice.
        found.extend(_approver_states(approval, event.time, config, judge_threshold=window is None))
        if approval.break_glass:
            if not (event.justification or "").strip():
                found.append(ApprovalState("break_glass_unjustified", aid, "break-glass use without justification"))
            review_problem = _review_problem(approval, config)
            if review_problem is not None:
                found.append(ApprovalState("break_glass_unreviewed", aid, review_problem))
        states.extend(found or [ApprovalState("valid", aid, "valid at event time")])
    return states
