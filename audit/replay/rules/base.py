"""The shape of a replay rule and of the context it explains a finding from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from audit.models import AccessEvent, CommitmentId, Finding, LogPosition, NonEmpty, Severity
from audit.policy import Decision

RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")]


class RuleMetadata(BaseModel):
    """Validated metadata every rule file declares."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: RuleId
    title: NonEmpty
    severity: Severity
    commitment: CommitmentId | None = None
    """The commitment this rule implements; ``None`` for engine rules (the deciding row says)."""
    description: NonEmpty
    remediation: NonEmpty


@dataclass(frozen=True)
class FindingContext:
    """What a rule may use to explain a finding."""

    event: AccessEvent
    decision: Decision
    actor_class: str
    detail: str
    approval_id: str | None = None
    related_actor: str | None = None
    home: str = "home"
    """How the pack names its home jurisdiction (``pack.yaml`` ``home.name``)."""


@dataclass(frozen=True)
class Rule:
    """A violation type: metadata plus a one-sentence explanation of an instance."""

    metadata: RuleMetadata
    explain: Callable[[FindingContext], str]
    kind: str | None = None
    """The engine rule that finds it, for a pack's own rule (``None``: this is an engine rule)."""

    @property
    def id(self) -> str:
        return self.metadata.id

    @property
    def engine_id(self) -> str:
        """The engine rule behind this one: its own id for an engine rule."""
        return self.kind or self.metadata.id

    def finding(self, ctx: FindingContext, position: LogPosition | None) -> Finding:
        """Build the finding; the commitment is the deciding row's (it must agree)."""
        row = ctx.decision.row
        return Finding(
            rule_id=self.metadata.id,
            commitment=ctx.decision.commitment,
            severity=self.metadata.severity,
            title=self.metadata.title,
            message=self.explain(ctx),
            remediation=self.metadata.remediation,
            event_ids=(ctx.event.event_id,),
            approval_ids=(ctx.approval_id,) if ctx.approval_id else (),
            time=ctx.event.time,
            actor_id=ctx.event.actor.id,
            policy_row=row.ref() if row is not None else None,
            position=position,
            store=ctx.event.resource.store,
            region=ctx.event.resource.region,
            actor_country=ctx.event.actor.physical_country or ctx.event.actor.office_country,
        )


def who(ctx: FindingContext) -> str:
    """``actor-id (class)`` for messages."""
    return f"{ctx.event.actor.id} ({ctx.actor_class})"


def what(ctx: FindingContext) -> str:
    """``action category from dataset@store/region`` for messages."""
    res = ctx.event.resource
    return f"{ctx.event.action} {res.category} data in {res.dataset} ({res.store}, {res.region})"
