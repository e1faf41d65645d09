"""Findings as replay writes them: the canonical ``findings.jsonl`` line of one broken commitment.

An :class:`Outcome` is what the engine decided for one event: a rule, the deciding
row, and what the finding should say (detail, approval, related party). :func:`emit`
turns an outcome and the event it was decided for into the sort key and line the
findings spool takes - the bytes :func:`audit.report.findings.encode_finding` gives for
the same :class:`~audit.models.Finding` (a test holds them equal), without building
one. Both replay paths emit through here: the engine for the events it judges, the
fast path for events whose outcomes it replays from a cached plan. It decides
nothing and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from audit.canonical import plain_canonical_bytes
from audit.models import Finding, finding_id
from audit.policy import Decision
from audit.replay.rules import FindingContext, Rule
from audit.replay.rules.base import EventView
from audit.report.findings import EncodedFinding

Position = tuple[str, int]
"""Where an event sits in a sealed log: segment name and 1-based line (a :class:`~audit.models.LogPosition`)."""


@dataclass(frozen=True)
class Outcome:
    """One commitment an event broke, as the engine decided it, and what its finding says."""

    rule: Rule
    decision: Decision
    detail: str
    approval_id: str | None = None
    related: str | None = None

    def fields(self) -> dict[str, Any]:
        """The finding's JSON fields that do not depend on the event."""
        meta, row = self.rule.metadata, self.decision.row
        fields: dict[str, Any] = {
            "approval_ids": [self.approval_id] if self.approval_id else [],
            "commitment": self.decision.commitment,
            "remediation": meta.remediation,
            "rule_id": meta.id,
            "severity": meta.severity,
            "title": meta.title,
        }
        if row is not None:
            fields["policy_row"] = row.ref().model_dump(mode="json")
        return fields


def stamps(when: datetime, text: str | None = None) -> tuple[str, str]:
    """The times a finding of an event at ``when`` (timezone-aware) carries: its sort key's and its JSON time.

    The sort key's is UTC to the microsecond, fixed width, ``+00:00``; the JSON time is
    pydantic's form of the same instant (``Z``, a fraction only if there is one).
    ``text``, if given, is the RFC 3339 text ``when`` was parsed from by the fast path's
    :func:`~audit.replay.fast.event_time`; when it is the plain UTC form
    (``YYYY-MM-DDTHH:MM:SSZ``) both are cut from it instead of formatted.
    """
    if text is not None and len(text) == 20 and text[19] == "Z":  # event_time took it: no fraction, UTC
        return text[:19] + ".000000+00:00", text
    utc = when if when.tzinfo is UTC else when.astimezone(UTC)
    stamp = utc.isoformat(timespec="microseconds")
    return stamp, stamp[:19] + "Z" if not utc.microsecond else stamp[:26] + "Z"


def emit(
    fields: dict[str, Any], message: str, event: EventView, times: tuple[str, str], at: Position | None
) -> EncodedFinding:
    """The sort key and canonical line of the finding ``fields`` (:meth:`Outcome.fields`) make for ``event``.

    ``times`` are the event's :func:`stamps`; ``message`` the rule's explanation.
    """
    stamp, time = times
    event_id, rule_id = event.event_id, fields["rule_id"]
    actor, resource = event.actor, event.resource
    value = {
        **fields,
        "actor_id": actor.id,
        "event_ids": [event_id],
        "id": finding_id(rule_id, fields["commitment"], (event_id,)),
        "message": message,
        "region": resource.region,
        "store": resource.store,
        "time": time,
    }
    country = actor.physical_country or actor.office_country
    if country is not None:
        value["actor_country"] = country
    if at is not None:
        value["position"] = {"line": at[1], "segment": at[0]}
    if not message:
        Finding.model_validate(value)  # raises the model's own error: a finding's message is never empty
    return (stamp, (event_id,), rule_id), plain_canonical_bytes(value) + b"\n"


@dataclass(frozen=True)
class Judgement:
    """What the engine decided for one event: the actor's class, the pack's name for home, the commitments broken."""

    actor_class: str
    home: str
    outcomes: tuple[Outcome, ...]

    def context(self, event: EventView, outcome: Outcome, related: str | None) -> FindingContext:
        """What ``outcome``'s rule explains its finding for ``event`` from."""
        return FindingContext(
            event, outcome.decision, self.actor_class, outcome.detail, outcome.approval_id, related, self.home
        )


def decoded(found: list[EncodedFinding]) -> list[Finding]:
    """The findings of emitted lines, validated as a report reader validates them (their stated ids included)."""
    return [Finding.model_validate(orjson.loads(line)) for _, line in found]
