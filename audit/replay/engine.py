"""The replay engine: judge each access event at its own time, emit findings.

For every event the engine picks the policy version in force at the event's time,
derives fact requests (:mod:`audit.replay.facts`, :mod:`audit.replay.approvals`),
asks the pack which commitments each one breaks (:meth:`~audit.policy.PolicyPack.broken`:
one deny per commitment, so a foreign read of sensitive data without approval breaks
C1 and C2), and turns every such deny into a finding through the rule its row names.
It keeps only what cross-event rules need (who is where,
and proxy events whose colleague has not been seen yet - spilled to a temporary file
beyond a limit), so memory does not grow with the log. It does not read or verify logs: callers feed it verified events.
"""

from __future__ import annotations

import tempfile
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import orjson

from audit.errors import InputError
from audit.logs.approvals import ApprovalSet
from audit.models import AccessEvent, Finding, LogPosition
from audit.policy import PolicyHistory, PolicyPack, Request
from audit.replay.approvals import approval_states
from audit.replay.emit import Judgement, Outcome, Position, decoded, emit, stamps
from audit.replay.facts import NONE, UNLOCATED, actor_class, base_facts, category_fact, proxy_handoffs
from audit.replay.rules import Rule, rule_book
from audit.replay.rules.base import EventView
from audit.report.findings import EncodedFinding


@dataclass(frozen=True)
class _Pending:
    """A proxy event waiting for the end of the stream to learn where its colleague was.

    Kept compact (the event as its JSON bytes, rebuilt only if it yields a finding):
    a log can hold many proxy events, and they cross process boundaries.
    """

    event_json: bytes
    time: datetime
    action: str
    position: LogPosition | None
    actor_class: str
    colleague: str
    how: str  # "on behalf of" or "handed to"
    stated_class: str | None = None  # the colleague's class when the event names their country

    @classmethod
    def of(
        cls,
        event: AccessEvent,
        position: LogPosition | None,
        actor_class: str,
        colleague: str,
        how: str,
        stated_class: str | None = None,
    ) -> _Pending:
        return cls(
            event.model_dump_json(exclude_none=True).encode(),
            event.time,
            event.action,
            position,
            actor_class,
            colleague,
            how,
            stated_class,
        )

    def to_line(self) -> bytes:
        """One JSON line for :class:`PendingStore`'s spill file."""
        pos = self.position
        return (
            orjson.dumps(
                [
                    self.event_json.decode(),
                    self.time.isoformat(),
                    self.action,
                    pos.segment if pos else None,
                    pos.line if pos else None,
                    self.actor_class,
                    self.colleague,
                    self.how,
                    self.stated_class,
                ]
            )
            + b"\n"
        )

    @classmethod
    def from_line(cls, line: bytes) -> _Pending:
        """Inverse of :meth:`to_line`."""
        event, when, action, segment, number, actor_class, colleague, how, stated = orjson.loads(line)
        position = LogPosition(segment=segment, line=number) if segment is not None else None
        return cls(event.encode(), datetime.fromisoformat(when), action, position, actor_class, colleague, how, stated)


PENDING_IN_MEMORY = 2_000
"""Proxy events held in memory before the rest spill to a temporary file."""


class PendingStore:
    """Proxy events waiting for the end of the stream, in arrival order.

    The first :data:`PENDING_IN_MEMORY` stay in memory; the rest go to an unnamed
    temporary file (gone when closed, or if the process dies), so memory stays flat
    however many proxy events a log holds.
    """

    def __init__(self, in_memory: int | None = None) -> None:
        self._limit = PENDING_IN_MEMORY if in_memory is None else in_memory
        self._memory: list[_Pending] = []
        self._spill: IO[bytes] | None = None
        self.count = 0

    def add(self, pending: _Pending) -> None:
        """Keep one more, in memory or spilled."""
        self.count += 1
        if len(self._memory) < self._limit:
            self._memory.append(pending)
            return
        if self._spill is None:
            self._spill = tempfile.TemporaryFile()  # noqa: SIM115 - closed by clear()
        self._spill.write(pending.to_line())

    def __iter__(self) -> Iterator[_Pending]:
        yield from self._memory
        if self._spill is not None:
            self._spill.flush()
            self._spill.seek(0)
            for line in self._spill:
                yield _Pending.from_line(line)

    def clear(self) -> None:
        """Forget everything (closing the spill file)."""
        self._memory = []
        if self._spill is not None:
            self._spill.close()
            self._spill = None
        self.count = 0


class Whereabouts:
    """Each actor's location class over time, kept as change points only.

    Memory grows with the number of distinct actors and of their moves, not with the
    log. Events need not arrive in time order.
    """

    def __init__(self) -> None:
        self._points: dict[str, list[tuple[datetime, str]]] = {}

    def record(self, actor_id: str, at: datetime, cls: str) -> None:
        """Note that ``actor_id`` was of class ``cls`` at ``at``."""
        points = self._points.get(actor_id)
        if points is None:
            self._points[actor_id] = [(at, cls)]
            return
        if at >= points[-1][0]:  # the usual case: a log in time order
            if points[-1][1] != cls:
                points.append((at, cls))
            return
        i = bisect_right(points, at, key=lambda p: p[0])
        if i > 0 and points[i - 1][1] == cls:
            return
        points.insert(i, (at, cls))

    def merge(self, other: Whereabouts) -> None:
        """Add every sighting recorded by another instance (e.g. a worker's)."""
        for actor_id, points in other._points.items():
            for at, cls in points:
                self.record(actor_id, at, cls)

    def at(self, actor_id: str, when: datetime) -> str | None:
        """Class at ``when``: the latest sighting before it, else the first one after."""
        points = self._points.get(actor_id)
        if not points:
            return None
        i = bisect_right(points, when, key=lambda p: p[0])
        return points[i - 1][1] if i > 0 else points[0][1]


@dataclass
class ReplayStats:
    """Counts for the report summary, and the times of the first and last event judged (the audit period)."""

    events: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)
    by_commitment: Counter[str] = field(default_factory=Counter)
    policy_versions: set[str] = field(default_factory=set)
    first_event: datetime | None = None
    last_event: datetime | None = None

    def note_times(self, first: datetime | None, last: datetime | None) -> None:
        """Widen the period to include ``first`` and ``last`` (timezone-aware; None adds nothing)."""
        if first is not None and (self.first_event is None or first < self.first_event):
            self.first_event = first
        if last is not None and (self.last_event is None or last > self.last_event):
            self.last_event = last

    def merge(self, other: ReplayStats) -> None:
        """Add another run's counts (e.g. a worker's)."""
        self.events += other.events
        self.by_rule.update(other.by_rule)
        self.by_commitment.update(other.by_commitment)
        self.policy_versions |= other.policy_versions
        self.note_times(other.first_event, other.last_event)


@dataclass
class Partial:
    """What one worker's share of a log leaves for the merge: the cross-event state."""

    stats: ReplayStats
    whereabouts: Whereabouts
    pending: list[_Pending]


def rule_books(policy: PolicyHistory, rules: Mapping[str, Rule]) -> dict[int, dict[str, Rule]]:
    """Each pack's rule book (by ``id(pack)``), checked to cover the rule ids its rows name.

    A row must name a rule of its pack's book; a rule that implements a commitment
    (a pack's own rule) must implement the row's.
    """
    books: dict[int, dict[str, Rule]] = {}
    for pack in policy.packs:
        book = books[id(pack)] = rule_book(pack, rules)
        for row in pack.rows:
            decision_rule = row.rule_id
            if decision_rule is None:
                continue
            rule = book.get(decision_rule)
            if rule is None:
                raise InputError(f"row names unknown rule {decision_rule!r}", path=row.file, line=row.line)
            if rule.metadata.commitment is not None and rule.metadata.commitment != row.commitment:
                raise InputError(
                    f"row cites {row.commitment} but rule {decision_rule} implements {rule.metadata.commitment}",
                    path=row.file,
                    line=row.line,
                )
    return books


class ReplayEngine:
    """Stateful evaluator of a stream of events in log order."""

    def __init__(self, policy: PolicyHistory, approvals: ApprovalSet, rules: Mapping[str, Rule]):
        self._books = rule_books(policy, rules)
        self._policy = policy
        self._approvals = approvals
        self._whereabouts = Whereabouts()
        self._pending = PendingStore()
        self.stats = ReplayStats()

    def evaluate(self, event: AccessEvent, position: LogPosition | None = None) -> list[Finding]:
        """Findings for one event; proxy findings come from :meth:`finish`."""
        return decoded(self.evaluate_encoded(event, position)[0])

    def evaluate_encoded(
        self, event: AccessEvent, position: LogPosition | None = None
    ) -> tuple[list[EncodedFinding], Judgement]:
        """:meth:`evaluate`'s findings as the spool takes them, and what decided them."""
        pack = self._policy.at(event.time)
        actor = actor_class(event.actor, pack.config)
        self.note_event(pack.config.name, event.actor.id, event.time, actor)
        outcomes: dict[str, Outcome] = {}
        for fact in base_facts(event, pack, actor):
            self._judge(outcomes, pack, fact.request, fact.detail, related=fact.related)
        category = category_fact(event.resource.category, pack)
        for state in approval_states(event, self._approvals, pack.config):
            request = ("access", actor, category, event.action, state.state)
            self._judge(outcomes, pack, request, state.detail, approval=state.approval_id)
        recipient = event.recipient
        for how, to_recipient, stated in proxy_handoffs(recipient, event.on_behalf_of, pack.config):
            colleague = recipient.id if to_recipient and recipient is not None else event.on_behalf_of
            assert colleague is not None  # proxy_handoffs names one only when the event does
            self._pending.add(_Pending.of(event, position, actor, colleague, how, stated))
        judgement = Judgement(actor, pack.config.home.name, tuple(outcomes.values()))
        return self._emit(judgement, event, position), judgement

    def drain(self) -> Partial:
        """Hand over (and reset) the cross-event state, for a merge in another engine."""
        partial = Partial(self.stats, self._whereabouts, list(self._pending))
        self._pending.clear()
        self.stats, self._whereabouts = ReplayStats(), Whereabouts()
        return partial

    def absorb(self, partial: Partial) -> None:
        """Merge a worker's cross-event state; :meth:`finish` then judges its proxy events."""
        self.stats.merge(partial.stats)
        self._whereabouts.merge(partial.whereabouts)
        for pending in partial.pending:
            self._pending.add(pending)

    @property
    def whereabouts(self) -> Whereabouts:
        """Who was where; the fast path records the events it proves clean here (and counts them in ``stats``)."""
        return self._whereabouts

    def _judge(
        self,
        outcomes: dict[str, Outcome],
        pack: PolicyPack,
        request: Request,
        detail: str,
        *,
        approval: str | None = None,
        related: str | None = None,
    ) -> None:
        for decision in pack.broken(request):  # every commitment the request breaks (ADR 0007)
            rule_id = decision.rule_id or "policy-default-deny"
            if rule_id not in outcomes:
                outcomes[rule_id] = Outcome(self._books[id(pack)][rule_id], decision, detail, approval, related)

    def note_event(self, version: str, actor_id: str, at: datetime, actor: str) -> None:
        """Count one judged event: the policy version it was judged under, the period, and where its actor was."""
        self.stats.events += 1
        self.stats.policy_versions.add(version)
        self.stats.note_times(at, at)
        self._whereabouts.record(actor_id, at, actor)

    def defer_proxy(
        self,
        event_json: bytes,
        at: datetime,
        action: str,
        position: LogPosition,
        actor_class: str,
        colleague: str,
        how: str,
        stated_class: str | None,
    ) -> None:
        """Defer a proxy judgement to :meth:`finish_encoded`, as :meth:`evaluate_encoded` defers its own.

        ``event_json`` is the event as JSON its model reads back (the fast path passes its
        verified line), ``at`` its time in UTC.
        """
        self._pending.add(_Pending(event_json, at, action, position, actor_class, colleague, how, stated_class))

    def emit_outcomes(
        self,
        judgement: Judgement,
        event: EventView,
        at: datetime,
        position: Position | None,
        steps: Iterable[tuple[Outcome, dict[str, Any], str | None]],
        time_text: str | None = None,
    ) -> list[EncodedFinding]:
        """The findings of ``steps`` (an outcome, its finding fields, its related party) for ``event``, counted.

        The engine emits its own judgements through here, the fast path its plans (with
        the event's ``time_text``, see :func:`~audit.replay.emit.stamps`).
        """
        found = []
        by_rule, by_commitment = self.stats.by_rule, self.stats.by_commitment
        times = None
        for outcome, fields, related in steps:
            ctx = judgement.context(event, outcome, related)
            if times is None:
                times = stamps(at, time_text)
            found.append(emit(fields, outcome.rule.explain(ctx), event, times, position))
            by_rule[outcome.rule.id] += 1
            by_commitment[outcome.decision.commitment] += 1
        return found

    def _emit(self, judgement: Judgement, event: AccessEvent, position: LogPosition | None) -> list[EncodedFinding]:
        at = (position.segment, position.line) if position is not None else None
        steps = ((outcome, outcome.fields(), outcome.related) for outcome in judgement.outcomes)
        return self.emit_outcomes(judgement, event, event.time, at, steps)

    def finish(self) -> Iterator[Finding]:
        """Judge proxy events, now that every colleague's whereabouts are known (:meth:`finish_encoded`)."""
        for found in self.finish_encoded():
            yield from decoded([found])

    def finish_encoded(self) -> Iterator[EncodedFinding]:
        """Judge proxy events, now that every colleague's whereabouts are known; their findings as the spool takes them.

        A colleague's class is the one recorded nearest before the event (else the
        first after it); a colleague never seen in the log counts as unlocated, which
        the pack treats as foreign (fail closed). The proxy events of one event (handed
        to, on behalf of) are adjacent in the store and give one finding per rule; only
        the rules of that event are held, so memory does not grow with the proxy findings.
        """
        try:
            event_id: str | None = None
            emitted: set[str] = set()  # the current event's rules: the first finding of each wins
            for pending in self._pending:
                colleague = pending.stated_class or self._whereabouts.at(pending.colleague, pending.time)
                pack = self._policy.at(pending.time)
                request = ("proxy", pending.actor_class, colleague or UNLOCATED, pending.action, NONE)
                if pack.decide(request).allowed:
                    continue
                event = AccessEvent.model_validate_json(pending.event_json)
                if event.event_id != event_id:
                    event_id, emitted = event.event_id, set()
                detail = f"{pending.how} {colleague or 'someone never seen in the log'}"
                found: dict[str, Outcome] = {}
                self._judge(found, pack, request, detail, related=pending.colleague)
                fresh = tuple(outcome for rule_id, outcome in found.items() if rule_id not in emitted)
                emitted.update(found)
                judgement = Judgement(pending.actor_class, pack.config.home.name, fresh)
                yield from self._emit(judgement, event, pending.position)
        finally:
            self._pending.clear()

    def replay(self, events: Iterator[tuple[AccessEvent, LogPosition | None]]) -> Iterator[Finding]:
        """Evaluate a whole stream, then resolve deferred findings."""
        for event, position in events:
            yield from self.evaluate(event, position)
        yield from self.finish()
