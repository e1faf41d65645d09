"""Rule oci-outside-us: US user data on OCI in a region outside the US (C3)."""

from collections.abc import Iterator

from audit.residency.models import DataStore
from audit.residency.places import holds_us_data, store_in_us
from audit.residency.rules.base import (
    Hit,
    ResidencyRule,
    ResidencyRuleMetadata,
    StoreContext,
    describe,
    offshore_copy,
    store_hit,
)


def _check(store: DataStore, ctx: StoreContext) -> Iterator[Hit]:
    if store.provider != "oci" or not holds_us_data(store, ctx.settings) or store_in_us(store, ctx.settings):
        return
    if offshore_copy(store, ctx):  # reported once, as a copy outside the US
        return
    yield store_hit(store, f"{describe(store)} holds US user data on OCI outside the US")


RULE = ResidencyRule(
    metadata=ResidencyRuleMetadata(
        id="oci-outside-us",
        title="US user data on OCI outside the US",
        severity="high",
        commitment="C3",
        status="violation",
        description="An OCI store in a non-US region holds US user data.",
        remediation="Move the data to an OCI US region (us-ashburn-1, us-phoenix-1, ...) and delete this store.",
    ),
    check=_check,
)
