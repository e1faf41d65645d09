"""The shape of a replay rule and of the context it explains a finding from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, StringConstraints

from audit.models import CommitmentId, NonEmpty, Severity
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


class ActorView(Protocol):
    """What a rule may read of the acting party (an :class:`~audit.models.Actor` or the fast path's mirror)."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def office_country(self) -> str | None: ...
    @property
    def physical_country(self) -> str | None: ...


class ResourceView(Protocol):
    """What a rule may read of the resource touched (a :class:`~audit.models.Resource` or its mirror)."""

    @property
    def id(self) -> str: ...
    @property
    def dataset(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def store(self) -> str: ...
    @property
    def region(self) -> str: ...


class EventView(Protocol):
    """What a rule may read of an event: an :class:`~audit.models.AccessEvent`, or the
    fast path's validated mirror of one (equal field for field); not its time."""

    @property
    def event_id(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def actor(self) -> ActorView: ...
    @property
    def resource(self) -> ResourceView: ...


class FindingContext(NamedTuple):
    """What a rule may use to explain a finding.

    A named tuple, not a frozen dataclass: as immutable, and built for every finding
    (a frozen dataclass's ``__init__`` cost five times as much).
    """

    event: EventView
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


def who(ctx: FindingContext) -> str:
    """``actor-id (class)`` for messages."""
    return f"{ctx.event.actor.id} ({ctx.actor_class})"


def what(ctx: FindingContext) -> str:
    """``action category from dataset@store/region`` for messages."""
    res = ctx.event.resource
    return f"{ctx.event.action} {res.category} data in {res.dataset} ({res.store}, {res.region})"
