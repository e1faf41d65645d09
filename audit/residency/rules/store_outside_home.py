"""Rule store-outside-home: home user data on an approved store's provider, but away from home.

A copy away from home is reported once, as copy-outside-home.
"""

from collections.abc import Iterator

from audit.residency.models import DataStore
from audit.residency.places import approved_providers, holds_home_data, store_at_home
from audit.residency.rules.base import Hit, ResidencyRule, ResidencyRuleMetadata, StoreContext, offshore_copy, store_hit


def _check(store: DataStore, ctx: StoreContext) -> Iterator[Hit]:
    approved = approved_providers(ctx.settings)
    if approved is not None and store.provider not in approved:
        return
    if not holds_home_data(store, ctx.settings) or store_at_home(store, ctx.settings) or offshore_copy(store, ctx):
        return
    yield store_hit(store, ctx)


RULE = ResidencyRule(
    metadata=ResidencyRuleMetadata(
        id="store-outside-home",
        title="User data of $home on an approved provider outside $home",
        severity="high",
        status="violation",
        description="A store on an approved store's provider, in a place outside $home, holds user data of $home.",
        remediation="Move the data to an approved store in $home and delete this store.",
    ),
    check=_check,
    message="$store holds user data of $home outside $home",
    copy_message="$store holds user data of $home outside $home",
)
