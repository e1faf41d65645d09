"""The replay engine: judge each access event at its own time, emit findings.

For every event the engine picks the policy version in force at the event's time,
derives fact requests (:mod:`audit.replay.facts`, :mod:`audit.replay.approvals`),
asks the pack to decide each one, and turns every deny into a finding through the
rule the deciding row names. It keeps only what cross-event rules need (who is where,
and proxy events whose colleague has not been seen yet), so memory does not grow
with the log. It does not read or verify logs: callers feed it verified events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from audit.errors import InputError
from audit.models import AccessEvent, Finding, LogPosition
from audit.policy import PolicyHistory, PolicyPack, Request
from audit.replay.approvals import ApprovalSet, approval_states
from audit.replay.facts import NONE, UNLOCATED, actor_class, base_facts, category_fact, recipient_class
from audit.replay.rules import FindingContext, Rule


@dataclass(frozen=True)
class _Pending:
    event: AccessEvent
    position: LogPosition | None
    actor_class: str


@dataclass
class ReplayStats:
    """Counts for the report summary."""

    events: int = 0
    findings: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)
    by_commitment: Counter[str] = field(default_factory=Counter)
    policy_versions: set[str] = field(default_factory=set)


def check_rules_cover_pack(policy: PolicyHistory, rules: Mapping[str, Rule]) -> None:
    """Every rule id a pack row names must exist, with the same commitment."""
    for pack in policy.packs:
        for row in pack.rows:
            decision_rule = row.rule_id
            if decision_rule is None:
                continue
            rule = rules.get(decision_rule)
            if rule is None:
                raise InputError(f"row names unknown rule {decision_rule!r}", path=row.file, line=row.line)
            if rule.metadata.commitment != row.commitment:
                raise InputError(
                    f"row cites {row.commitment} but rule {decision_rule} implements "
                    f"{rule.metadata.commitment}",
                    path=row.file,
                    line=row.line,
                )


class _Judge(Protocol):
    def __call__(
        self, request: Request, detail: str, approval_id: str | None = None, related: str | None = None
    ) -> None: ...


class ReplayEngine:
    """Stateful evaluator of a stream of events in log order."""

    def __init__(self, policy: PolicyHistory, approvals: ApprovalSet, rules: Mapping[str, Rule]):
        check_rules_cover_pack(policy, rules)
        self._policy = policy
        self._approvals = approvals
        self._rules = rules
        self._actors: dict[str, str] = {}
        self._pending: list[_Pending] = []
        self.stats = ReplayStats()

    def evaluate(self, event: AccessEvent, position: LogPosition | None = None) -> list[Finding]:
        """Findings for one event (proxy findings may be deferred to :meth:`finish`)."""
        pack = self._policy.at(event.time)
        self.stats.events += 1
        self.stats.policy_versions.add(pack.config.name)
        actor = actor_class(event.actor, pack.config)
        self._actors[event.actor.id] = actor
        findings: dict[str, Finding] = {}

        def judge(request: Request, detail: str, approval_id: str | None = None, related: str | None = None) -> None:
            decision = pack.decide(request)
            if decision.allowed:
                return
            rule_id = decision.rule_id or "policy-default-deny"
            if rule_id in findings:
                return
            ctx = FindingContext(event, decision, actor, detail, approval_id, related)
            findings[rule_id] = self._rules[rule_id].finding(ctx, position)

        for fact in base_facts(event, pack, actor):
            judge(fact.request, fact.detail, related=fact.related)
        category = category_fact(event.resource.category, pack)
        for state in approval_states(event, self._approvals, pack.config):
            judge(("access", actor, category, event.action, state.state), state.detail, state.approval_id)
        self._proxy_requests(event, position, actor, pack, judge)
        return self._record(list(findings.values()))

    def _proxy_requests(
        self,
        event: AccessEvent,
        position: LogPosition | None,
        actor: str,
        pack: PolicyPack,
        judge: _Judge,
    ) -> None:
        recipient = event.recipient
        if recipient is not None and recipient.kind == "employee":
            colleague = recipient_class(recipient, pack.config)
            if recipient.country is None and recipient.id in self._actors:
                colleague = self._actors[recipient.id]
            judge(("proxy", actor, colleague, event.action, NONE), f"handed to {colleague}", related=recipient.id)
        principal = event.on_behalf_of
        if principal is None:
            return
        if principal in self._actors:
            colleague = self._actors[principal]
            judge(("proxy", actor, colleague, event.action, NONE), f"on behalf of {colleague}", related=principal)
        else:
            self._pending.append(_Pending(event, position, actor))

    def finish(self) -> list[Finding]:
        """Resolve proxy events whose colleague appeared later in the log (or never)."""
        out: list[Finding] = []
        for pending in self._pending:
            event = pending.event
            principal = event.on_behalf_of
            assert principal is not None  # only proxy events are pending
            colleague = self._actors.get(principal, UNLOCATED)
            pack = self._policy.at(event.time)
            decision = pack.decide(("proxy", pending.actor_class, colleague, event.action, NONE))
            if decision.allowed:
                continue
            rule = self._rules[decision.rule_id or "policy-default-deny"]
            seen = "never seen in the log" if principal not in self._actors else colleague
            ctx = FindingContext(event, decision, pending.actor_class, f"on behalf of {seen}", None, principal)
            out.append(rule.finding(ctx, pending.position))
        self._pending.clear()
        return self._record(out)

    def _record(self, findings: list[Finding]) -> list[Finding]:
        for finding in findings:
            self.stats.findings += 1
            self.stats.by_rule[finding.rule_id] += 1
            self.stats.by_commitment[finding.commitment] += 1
        return findings

    def replay(self, events: Iterator[tuple[AccessEvent, LogPosition | None]]) -> Iterator[Finding]:
        """Evaluate a whole stream, then resolve deferred findings."""
        for event, position in events:
            yield from self.evaluate(event, position)
        yield from self.finish()
