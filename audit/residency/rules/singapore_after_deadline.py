"""Rule singapore-after-deadline: anything stored in Singapore after the deletion deadline (C4)."""

from collections.abc import Iterator

from audit.residency.models import DataStore
from audit.residency.places import in_singapore
from audit.residency.rules.base import Hit, ResidencyRule, ResidencyRuleMetadata, StoreContext, describe, store_hit


def _check(store: DataStore, ctx: StoreContext) -> Iterator[Hit]:
    settings = ctx.settings
    if settings.as_of < settings.singapore_deadline:
        return
    when = f"on {settings.as_of.isoformat()} (deadline {settings.singapore_deadline.isoformat()})"
    if in_singapore(store.region, store.country, settings):
        yield store_hit(store, f"{describe(store)} still exists in Singapore {when}")
    for copy in store.copies:
        if copy.target not in ctx.stores and in_singapore(copy.region, copy.country, settings):
            yield Hit(
                resource=copy.target,
                region=copy.region,
                kind=copy.kind,
                message=f"{copy.kind} of {describe(store)} is still made to Singapore ({copy.target}) {when}",
            )


RULE = ResidencyRule(
    metadata=ResidencyRuleMetadata(
        id="singapore-after-deadline",
        title="Data in Singapore after the deletion deadline",
        severity="high",
        commitment="C4",
        status="violation",
        description="A store or copy is in Singapore on or after the Singapore backup deletion deadline.",
        remediation="Delete the Singapore stores and copies, remove copy jobs targeting Singapore, and rescan.",
    ),
    check=_check,
)
