"""Why was this flagged? The decision trace of one finding of a verified report.

:func:`explain` verifies the report (and, when given, the log, the policy files and
the approvals against the report's subjects), finds the finding by its stable id,
reads its event from the verified log, and replays the judgement of that one event:
the facts derived from it, every request sent to the policy, the row that decided
each request and the rows of higher priority in the same facet that did not match,
every commitment each request breaks, the approvals considered and why each failed,
and the commitment's text and seed quote.

It fails closed: nothing is explained from a report, log, policy or approvals file
that does not verify. It does not print (see :mod:`audit.cli.explain_cmd`), and it
does not re-judge the whole log: a proxy finding's colleague is placed by a pass
that only classifies each event's actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.errors import InputError, IntegrityError
from audit.logs.approvals import ApprovalSet, load_approvals
from audit.logs.record_types import ACCESS_RECORD_TYPE
from audit.logs.verify import LogVerifier, VerificationReport
from audit.models import AccessEvent, Commitment, Finding
from audit.policy import PolicyHistory, PolicyPack, load_policy
from audit.policy.pack import Decision, PolicyRow, Request
from audit.records import validate_lines
from audit.replay.approvals import ApprovalState, approval_states
from audit.replay.engine import Whereabouts
from audit.replay.facts import NONE, UNLOCATED, actor_class, base_facts, category_fact, recipient_class
from audit.report.findings import iter_findings
from audit.report.publish import FINDINGS_FILE, REPORT_FILE
from audit.report.statement import ReportVerification
from audit.report.verify import verify_report
from audit.signing.keys import Keyring

__all__ = ["Explanation", "RequestTrace", "explain"]


@dataclass(frozen=True)
class RequestTrace:
    """One request of the event and how the policy answered it."""

    request: Request
    detail: str
    decision: Decision
    broken: tuple[Decision, ...]
    not_matched: tuple[PolicyRow, ...]
    approval_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The trace as JSON: request fields by name, deciding row, broken commitments, rows passed over."""
        return {
            "request": dict(zip(("facet", "sub", "obj", "act", "ctx"), self.request, strict=False)),
            "detail": self.detail,
            "approval_id": self.approval_id,
            "allowed": self.decision.allowed,
            "decided_by": _row_json(self.decision.row),
            "broken": [
                {"commitment": d.commitment, "rule_id": d.rule_id, "row": _row_json(d.row)} for d in self.broken
            ],
            "higher_priority_rows_not_matching": [_row_json(row) for row in self.not_matched],
        }


@dataclass(frozen=True)
class Explanation:
    """Everything :func:`explain` found about one finding."""

    finding: Finding
    commitment: Commitment | None
    event: AccessEvent | None
    facts: dict[str, str]
    requests: tuple[RequestTrace, ...]
    approvals: tuple[ApprovalState, ...]
    approvals_verified: bool | None
    note: str | None = None

    @property
    def deciding(self) -> RequestTrace | None:
        """The request whose broken commitments include the finding's rule."""
        return next((t for t in self.requests if any(d.rule_id == self.finding.rule_id for d in t.broken)), None)

    def to_json(self) -> dict[str, Any]:
        """The whole explanation as JSON (``explain --format json``)."""
        commitment = self.commitment
        return {
            "finding": self.finding.model_dump(mode="json"),
            "commitment": None
            if commitment is None
            else {
                "id": commitment.id,
                "title": commitment.title,
                "text": commitment.text,
                "sources": [s.model_dump(mode="json") for s in commitment.sources],
            },
            "event": None if self.event is None else self.event.model_dump(mode="json", exclude_none=True),
            "facts": self.facts,
            "approvals_considered": [
                {"approval_id": a.approval_id, "state": a.state, "detail": a.detail} for a in self.approvals
            ],
            "approvals_signature_verified": self.approvals_verified,
            "requests": [t.to_json() for t in self.requests],
            "deciding_request": None if self.deciding is None else self.requests.index(self.deciding),
            "note": self.note,
        }


def _row_json(row: PolicyRow | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"file": row.file, "line": row.line, "fields": list(row.fields)}


def _not_matched(pack: PolicyPack, decision: Decision, facet: str) -> tuple[PolicyRow, ...]:
    """The ``p`` rows of ``facet`` read before the deciding row: each of them did not match."""
    rows = [row for row in pack.rows if row.ptype == "p" and row.fields[1] == facet]
    if decision.row is None:
        return tuple(rows)
    priority = int(decision.row.fields[0])
    return tuple(row for row in rows if int(row.fields[0]) < priority)


def _trace(pack: PolicyPack, request: Request, detail: str, approval: str | None = None) -> RequestTrace:
    decision = pack.decide(request)
    return RequestTrace(
        request, detail, decision, pack.broken(request), _not_matched(pack, decision, request[0]), approval
    )


def _find(report_dir: Path, finding_id: str) -> Finding:
    for finding in iter_findings(report_dir / FINDINGS_FILE):
        if finding.id == finding_id:
            return finding
    raise InputError(
        f"no finding {finding_id} in the report",
        path=report_dir / FINDINGS_FILE,
        hint="finding ids are in findings.jsonl, report.md and report.html",
    )


def _event_at(
    logdir: Path, keyring: Keyring, finding: Finding, history: PolicyHistory
) -> tuple[AccessEvent | None, Whereabouts, VerificationReport]:
    """One verifying pass over the log: the finding's event, everyone's whereabouts, the log's report.

    Whereabouts are recorded as replay records them (each event's actor class under
    the policy version in force at its time).

    Nothing read here is trusted until the caller has checked the returned report
    against the report's log subject.
    """
    if finding.position is None:
        raise InputError(f"finding {finding.id} records no log position", path=logdir)
    verifier = LogVerifier(logdir, keyring, record_type=ACCESS_RECORD_TYPE)
    target: AccessEvent | None = None
    whereabouts = Whereabouts()
    for segment in verifier.segments():
        for line, event in validate_lines(segment.records, AccessEvent, path=logdir / segment.name):
            whereabouts.record(event.actor.id, event.time, actor_class(event.actor, history.at(event.time).config))
            if segment.name == finding.position.segment and line == finding.position.line:
                target = event
    return target, whereabouts, verifier.report()


def _proxy_trace(pack: PolicyPack, event: AccessEvent, actor: str, whereabouts: Whereabouts) -> RequestTrace | None:
    """The proxy request of a hand-over or an on-behalf-of event, the colleague placed as replay places them."""
    recipient = event.recipient
    colleague_id = event.on_behalf_of or (
        recipient.id if recipient is not None and recipient.kind == "employee" else None
    )
    if colleague_id is None:
        return None
    if recipient is not None and recipient.id == colleague_id and recipient.country is not None:
        colleague, how = recipient_class(recipient, pack.config), "stated in the event"
    else:
        colleague = whereabouts.at(colleague_id, event.time) or UNLOCATED
        how = "where the log last placed them"
    request = ("proxy", actor, colleague, event.action, NONE)
    return _trace(pack, request, f"colleague {colleague_id} is {colleague} ({how})")


def _where(finding: Finding) -> str:
    position = finding.position
    return f"{position.segment}:{position.line}" if position is not None else "(no position)"


def _require_verified(result: ReportVerification, report_dir: Path) -> None:
    failed = [check for check in result.checks if not check.ok]
    if failed:
        raise IntegrityError(f"report does not verify: {failed[0].name}: {failed[0].detail}", path=report_dir)


def explain(
    finding_id: str,
    report_dir: Path,
    keyring: Keyring,
    *,
    log: Path | None = None,
    policy: Path | None = None,
    approvals: Path | None = None,
) -> Explanation:
    """Verify the report (and what is given against its subjects), then trace one finding's decision."""
    _require_verified(verify_report(report_dir / REPORT_FILE, keyring, policy=policy, approvals=approvals), report_dir)
    finding = _find(report_dir, finding_id)
    history = load_policy(policy) if policy is not None else None
    commitment = None
    if history is not None:
        commitment = history.at(finding.time).commitments.get(finding.commitment)
    if log is None or history is None:
        return Explanation(
            finding,
            commitment,
            None,
            {},
            (),
            (),
            None,
            note="pass --log and --policy (and --approvals) to replay the decision",
        )
    target, whereabouts, log_report = _event_at(log, keyring, finding, history)
    checked = verify_report(report_dir / REPORT_FILE, keyring, log=log, log_report=log_report)  # the log, and time
    _require_verified(checked, report_dir)
    if target is None or target.event_id not in finding.event_ids:
        raise IntegrityError(
            f"{_where(finding)} is not event {', '.join(finding.event_ids)} of the finding",
            path=log,
        )
    event = target
    pack = history.at(event.time)
    approval_set: ApprovalSet | None = load_approvals(approvals, keyring) if approvals is not None else None
    actor = actor_class(event.actor, pack.config)
    category = category_fact(event.resource.category, pack)
    facts = {"actor_class": actor, "category": category, "policy_version": pack.config.name}
    traces = [_trace(pack, fact.request, fact.detail) for fact in base_facts(event, pack, actor)]
    states: tuple[ApprovalState, ...] = ()
    if approval_set is not None:
        states = tuple(approval_states(event, approval_set, pack.config))
        traces += [
            _trace(pack, ("access", actor, category, event.action, s.state), s.detail, s.approval_id) for s in states
        ]
    proxy = _proxy_trace(pack, event, actor, whereabouts)
    if proxy is not None:
        traces.append(proxy)
    note = None if approval_set is not None else "pass --approvals to trace the access requests"
    verified = approval_set.signature_verified if approval_set is not None else None
    return Explanation(finding, commitment, event, facts, tuple(traces), states, verified, note)
