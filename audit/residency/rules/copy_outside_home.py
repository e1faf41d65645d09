"""Rule copy-outside-home: a replica, backup copy or snapshot copy of home user data away from home.

A copy whose destination is unknown is never taken to be at home.
"""

from collections.abc import Iterator

from audit.residency.models import DataStore
from audit.residency.places import copy_at_home, holds_home_data
from audit.residency.rules.base import Hit, ResidencyRule, ResidencyRuleMetadata, StoreContext, copy_hit


def _check(store: DataStore, ctx: StoreContext) -> Iterator[Hit]:
    if not holds_home_data(store, ctx.settings):
        return
    for copy in store.copies:
        if not copy_at_home(copy, ctx.settings):
            yield copy_hit(store, copy, ctx)


_MESSAGE = "$copy_kind of $store goes to $target in $where, outside $home"

RULE = ResidencyRule(
    metadata=ResidencyRuleMetadata(
        id="copy-outside-home",
        title="Copy of user data of $home outside $home",
        severity="high",
        status="violation",
        description="A replication target, backup copy or snapshot copy of user data of $home is outside $home.",
        remediation="Stop the replication or copy job, delete the copies outside $home, and rescan.",
    ),
    check=_check,
    message=_MESSAGE,
    copy_message=_MESSAGE,
)
