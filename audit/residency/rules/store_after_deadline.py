"""Rule store-after-deadline: a store or copy still in a transitional store set on or after its deadline.

For every transitional set (``pack.yaml``) whose deadline (or ``--deadline``
override) is on or before the scan date: each store in the set, and each copy made
into it that is not itself a listed store, is flagged - when it holds user data of
home, or whatever it holds if the set ``covers_all_data``. A store in two such sets
is flagged once for each. A hit carries its set's commitment.
"""

from collections.abc import Iterator
from dataclasses import replace

from audit.policy import TransitionalStore
from audit.residency.models import DataStore
from audit.residency.places import holds_home_data, in_set
from audit.residency.rules.base import Hit, ResidencyRule, ResidencyRuleMetadata, StoreContext, copy_hit, store_hit


def _hits(store: DataStore, store_set: TransitionalStore, ctx: StoreContext) -> Iterator[Hit]:
    deadline = ctx.settings.deadlines.get(store_set.store_class, store_set.deadline)
    if ctx.settings.as_of < deadline or not (store_set.covers_all_data or holds_home_data(store, ctx.settings)):
        return
    words = {
        "store_class": store_set.store_class,
        "deadline": deadline.isoformat(),
        "deadline_label": store_set.deadline_label,
        "set": store_set.description,
    }
    if in_set(store_set, store.provider, store.region, store.country):
        yield replace(store_hit(store, ctx, **words), commitment=store_set.commitment)
    for copy in store.copies:
        if copy.target not in ctx.stores and in_set(store_set, copy.provider, copy.region, copy.country):
            yield replace(copy_hit(store, copy, ctx, **words), commitment=store_set.commitment)


def _check(store: DataStore, ctx: StoreContext) -> Iterator[Hit]:
    for store_set in ctx.settings.pack.transitional_stores:
        yield from _hits(store, store_set, ctx)


RULE = ResidencyRule(
    metadata=ResidencyRuleMetadata(
        id="store-after-deadline",
        title="Data in a transitional store after its deadline",
        severity="high",
        status="violation",
        description="A store or copy is still in a transitional store set on or after the set's deadline.",
        remediation="Delete the stores and copies in the set (after moving data of $home to an approved store), "
        "remove copy jobs targeting it, and rescan.",
    ),
    check=_check,
    message="$store is still in $set on $as_of ($deadline_label $deadline)",
    copy_message="$copy_kind of $store is still made to $set ($target) on $as_of ($deadline_label $deadline)",
    own_commitments=True,
)
