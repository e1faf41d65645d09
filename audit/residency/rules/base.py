"""The shape of a residency rule and the context it judges a store in."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from audit.models import CommitmentId, NonEmpty, Severity
from audit.replay.rules.base import RuleId
from audit.report.residency import FindingStatus, ResidencyFinding
from audit.residency.models import DataStore, ResidencySettings
from audit.residency.places import holds_us_data, store_in_us


class ResidencyRuleMetadata(BaseModel):
    """Validated metadata every residency rule file declares."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: RuleId
    title: NonEmpty
    severity: Severity
    commitment: CommitmentId
    status: FindingStatus
    description: NonEmpty
    remediation: NonEmpty


@dataclass(frozen=True)
class StoreContext:
    """Everything a rule may look at: the settings and every store by resource id."""

    settings: ResidencySettings
    stores: Mapping[str, DataStore]


@dataclass(frozen=True)
class Hit:
    """One thing a rule flags: the resource (a store or a copy target) and why."""

    resource: str
    region: str | None
    kind: str
    message: str


@dataclass(frozen=True)
class ResidencyRule:
    """A residency check: metadata plus a function listing what it flags on one store."""

    metadata: ResidencyRuleMetadata
    check: Callable[[DataStore, StoreContext], Iterable[Hit]]

    @property
    def id(self) -> str:
        return self.metadata.id

    def findings(self, store: DataStore, ctx: StoreContext) -> list[ResidencyFinding]:
        """The findings for one store (none if the rule does not apply)."""
        meta = self.metadata
        return [
            ResidencyFinding(
                rule_id=meta.id,
                commitment=meta.commitment,
                severity=meta.severity,
                status=meta.status,
                title=meta.title,
                message=hit.message,
                remediation=meta.remediation,
                provider=store.provider,
                account=store.account,
                region=hit.region,
                resource=hit.resource,
                kind=hit.kind,
                store=store.resource,
            )
            for hit in self.check(store, ctx)
        ]


def describe(store: DataStore) -> str:
    """``kind name (provider region)`` for messages."""
    return f"{store.kind} {store.name} ({store.provider} {store.region})"


def store_hit(store: DataStore, message: str) -> Hit:
    """A hit on the store itself."""
    return Hit(resource=store.resource, region=store.region, kind=store.kind, message=message)


def offshore_copy(store: DataStore, ctx: StoreContext) -> bool:
    """Whether ``store`` is a copy of US user data outside the US (rule copy-outside-us reports it)."""
    source = ctx.stores.get(store.copy_of) if store.copy_of is not None else None
    return source is not None and holds_us_data(source, ctx.settings) and not store_in_us(store, ctx.settings)
