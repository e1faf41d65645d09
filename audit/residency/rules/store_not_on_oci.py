"""Rule store-not-on-oci: US user data held by a cloud provider other than OCI (C3)."""

from collections.abc import Iterator

from audit.residency.models import DataStore
from audit.residency.places import holds_us_data
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
    if store.provider in {"oci", "own_dc"} or not holds_us_data(store, ctx.settings):
        return
    if offshore_copy(store, ctx):  # reported once, as a copy outside the US
        return
    yield store_hit(store, f"{describe(store)} holds US user data outside Oracle Cloud Infrastructure")


RULE = ResidencyRule(
    metadata=ResidencyRuleMetadata(
        id="store-not-on-oci",
        title="US user data stored outside OCI",
        severity="high",
        commitment="C3",
        status="violation",
        description="A store on a cloud other than Oracle Cloud Infrastructure holds US user data.",
        remediation="Migrate the data to OCI US regions, delete this store, and confirm with a fresh scan.",
    ),
    check=_check,
)
