"""Rule unclassified-store: a store whose data is not classified, so residency cannot be judged."""

from collections.abc import Iterator

from audit.residency.models import DataStore
from audit.residency.rules.base import Hit, ResidencyRule, ResidencyRuleMetadata, StoreContext, store_hit


def _check(store: DataStore, ctx: StoreContext) -> Iterator[Hit]:
    if store.classification is None:
        yield store_hit(store, ctx)


_MESSAGE = "$store has no $region_tag classification: whether it holds user data of $home is unknown"

RULE = ResidencyRule(
    metadata=ResidencyRuleMetadata(
        id="unclassified-store",
        title="Unclassified store (residency unknown)",
        severity="medium",
        status="unknown",
        description="A store carries no data classification, so it cannot be shown to respect the pack's "
        "residency commitments.",
        remediation="Tag the store with its data-subject region and category (or declare it in the inventory).",
    ),
    check=_check,
    message=_MESSAGE,
    copy_message=_MESSAGE,
)
