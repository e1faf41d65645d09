"""Approvals: load them (plain JSONL or a sealed, signed log) and judge one use of one.

:func:`approval_states` says, for an event at its own time, what is wrong with each
approval it cites (expired, revoked, out of scope, self-approved, ...) or that it is
``valid``. It does not decide whether the access was allowed: the policy pack does,
on the state this module reports.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from audit.errors import InputError, IntegrityError
from audit.logs.verify import LogVerifier, describe_problems
from audit.models import AccessEvent, Approval, RecordType
from audit.policy import PackConfig
from audit.records import iter_jsonl, sha256_file, validate_lines
from audit.signing.keys import Keyring

APPROVAL_RECORD_TYPE: str = RecordType.approval.value


@dataclass(frozen=True)
class ApprovalSet:
    """Approvals by id, and how far they can be trusted."""

    by_id: Mapping[str, Approval]
    source: Path
    signature_verified: bool
    digest: str  # sha256 of the JSONL file, or the Merkle root of the sealed log
    tree_size: int | None = None
    origin: str | None = None  # the sealed log's origin

    def get(self, approval_id: str) -> Approval | None:
        return self.by_id.get(approval_id)


def _index(records: Iterator[tuple[str, int, Approval]]) -> dict[str, Approval]:
    by_id: dict[str, Approval] = {}
    for path, line, approval in records:
        if approval.approval_id in by_id:
            raise InputError(f"duplicate approval_id {approval.approval_id!r}", path=path, line=line)
        by_id[approval.approval_id] = approval
    return by_id


def load_approvals(path: Path, keyring: Keyring | None) -> ApprovalSet:
    """Load approvals from a JSONL file, or from a sealed log directory (verified first).

    A sealed log is verified against ``keyring`` before any record is read; a log
    that does not verify raises :class:`IntegrityError` listing its problems.
    """
    if path.is_dir():
        if keyring is None:
            raise InputError("a sealed approvals log needs a keyring", path=path)
        if not (path / "checkpoints").is_dir():
            raise InputError("not a sealed log directory (no checkpoints/)", path=path)
        return _load_sealed(path, keyring)
    records = ((str(path), line, approval) for line, approval in iter_jsonl(path, Approval))
    by_id = _index(records)
    return ApprovalSet(by_id, path, signature_verified=False, digest=sha256_file(path))


def _load_sealed(path: Path, keyring: Keyring) -> ApprovalSet:
    verifier = LogVerifier(path, keyring, record_type=APPROVAL_RECORD_TYPE)
    collected: list[tuple[str, int, Approval]] = []
    for segment in verifier.segments():
        seg_path = path / segment.name
        collected += [(str(seg_path), n, a) for n, a in validate_lines(segment.records, Approval, path=seg_path)]
    report = verifier.report()
    if not report.ok or report.root is None:
        raise IntegrityError(f"approvals log failed verification ({describe_problems(report.problems)})", path=path)
    return ApprovalSet(
        _index(iter(collected)),
        path,
        signature_verified=True,
        digest=report.root,
        tree_size=report.tree_size,
        origin=report.origin,
    )


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
    "none", "valid", "unknown_id", "expired", "not_yet_valid", "revoked", "scope_exceeded", "self_approved",
    "approver_not_us_security", "threshold_not_met", "wrong_requester", "break_glass_unjustified",
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
        a
        for a in approval.approvers
        if a.team not in config.us_security_teams or a.country.upper() not in config.us_country_codes
    ]
    if outsiders:
        who = ", ".join(f"{a.id} ({a.team}, {a.country})" for a in outsiders)
        states.append(ApprovalState("approver_not_us_security", aid, f"approved by {who}"))
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
    if review.team not in config.us_security_teams:
        return f"break-glass approval reviewed by {review.reviewer} ({review.team}), not the US security team"
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
