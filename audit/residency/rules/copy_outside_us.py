"""Rule copy-outside-us: a replica, backup copy or snapshot copy of US user data outside the US (C3)."""

from collections.abc import Iterator

from audit.residency.models import DataStore
from audit.residency.places import copy_in_us, holds_us_data
from audit.residency.rules.base import Hit, ResidencyRule, ResidencyRuleMetadata, StoreContext, describe


def _check(store: DataStore, ctx: StoreContext) -> Iterator[Hit]:
    if not holds_us_data(store, ctx.settings):
        return
    for copy in store.copies:
        if copy_in_us(copy, ctx.settings):
            continue
        where = f"region {copy.region}" if copy.region else "an unknown region"
        yield Hit(
            resource=copy.target,
            region=copy.region,
            kind=copy.kind,
            message=f"{copy.kind} of {describe(store)} goes to {copy.target} in {where}, outside the US",
        )


RULE = ResidencyRule(
    metadata=ResidencyRuleMetadata(
        id="copy-outside-us",
        title="Copy of US user data outside the US",
        severity="high",
        commitment="C3",
        status="violation",
        description="A replication target, backup copy or snapshot copy of US user data is outside the US.",
        remediation="Stop the replication or copy job, delete the copies outside the US, and rescan.",
    ),
    check=_check,
)
