"""Rule store-not-approved-provider: home user data on a provider no approved store set names.

A transitional store set's provider is judged by its deadline instead
(store-after-deadline); a copy away from home is reported once, as copy-outside-home.
"""

from collections.abc import Iterator

from audit.residency.models import DataStore
from audit.residency.places import approved_providers, holds_home_data, transitional_providers
from audit.residency.rules.base import Hit, ResidencyRule, ResidencyRuleMetadata, StoreContext, offshore_copy, store_hit


def _check(store: DataStore, ctx: StoreContext) -> Iterator[Hit]:
    approved = approved_providers(ctx.settings)
    if approved is None or store.provider in approved or store.provider in transitional_providers(ctx.settings):
        return
    if not holds_home_data(store, ctx.settings) or offshore_copy(store, ctx):
        return
    yield store_hit(store, ctx)


RULE = ResidencyRule(
    metadata=ResidencyRuleMetadata(
        id="store-not-approved-provider",
        title="User data of $home on a provider no approved store uses",
        severity="high",
        status="violation",
        description="A store on a provider that no approved store set of the pack names holds user data of $home.",
        remediation="Migrate the data to an approved store, delete this store, and confirm with a fresh scan.",
    ),
    check=_check,
    message="$store holds user data of $home on a provider no approved store uses",
    copy_message="$store holds user data of $home on a provider no approved store uses",
)
