"""Rule own-dc-not-phased-out: an own data centre still holds US user data after its phase-out date (C6)."""

from collections.abc import Iterator

from audit.residency.models import DataStore
from audit.residency.places import holds_us_data
from audit.residency.rules.base import Hit, ResidencyRule, ResidencyRuleMetadata, StoreContext, describe, store_hit


def _check(store: DataStore, ctx: StoreContext) -> Iterator[Hit]:
    settings = ctx.settings
    if store.provider != "own_dc" or not holds_us_data(store, settings) or settings.as_of < settings.own_dc_phase_out:
        return
    yield store_hit(
        store,
        f"{describe(store)} still holds US user data on {settings.as_of.isoformat()} "
        f"(phase-out {settings.own_dc_phase_out.isoformat()})",
    )


RULE = ResidencyRule(
    metadata=ResidencyRuleMetadata(
        id="own-dc-not-phased-out",
        title="Own data centre still holds US user data after phase-out",
        severity="high",
        commitment="C6",
        status="violation",
        description="A store in the company's own data centres holds US user data after the phase-out date.",
        remediation="Delete US user data from own data centres (after migrating it to OCI US) and rescan.",
    ),
    check=_check,
)
