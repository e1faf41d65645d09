"""Run providers, link stores to their copies, and judge every store with the rules.

Linking: a store that names its source (``copy_of``) becomes one of the source's
copies, and a copy target that is itself a listed store learns its source. A copy
with no classification of its own inherits its source's (a copy of home user data
is home user data whatever its tags say). Then every rule, bound to the pack's words
(:func:`~audit.residency.rules.residency_book`), looks at every store. The result
carries the settings, what each provider covered, the linked stores and the
findings, sorted by commitment, rule and resource. Does not print or write files.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime

from audit.canonical import canonical_bytes
from audit.errors import InputError
from audit.policy import PolicyHistory
from audit.policy.parse import RULES_FILE
from audit.report.residency import ResidencyFinding, ResidencySection, ResidencySummary
from audit.residency.models import CopyKind, DataStore, ResidencySettings, ScanResult, StoreCopy
from audit.residency.places import holds_home_data
from audit.residency.providers import StoreProvider
from audit.residency.rules import StoreContext, load_rules, residency_book

_MAX_CHAIN = 16


def settings_from_policy(
    policy: PolicyHistory,
    *,
    as_of: date,
    deadlines: Mapping[str, date] | None = None,
    region_tag: str = "data-subject-region",
    category_tag: str = "data-category",
) -> ResidencySettings:
    """Settings from the pack in force at ``as_of``, with deadline overrides by transitional store class.

    An override for a class that is not one of the pack's transitional store sets,
    and a pack whose residency rules do not bind (:func:`residency_book`), are input errors.
    """
    pack = policy.at(datetime.combine(as_of, datetime.min.time(), UTC))
    config = pack.config
    dates = {store.store_class: store.deadline for store in config.transitional_stores}
    for name, when in (deadlines or {}).items():
        if name not in dates:
            known = ", ".join(sorted(dates)) or "none"
            raise InputError(f"--deadline: {name!r} is not a transitional store class of the pack (known: {known})")
        dates[name] = when
    settings = ResidencySettings(
        as_of=as_of,
        pack=config,
        deadlines=dates,
        rules=tuple(rule for rule in pack.rules if rule.scope == "residency"),
        rules_file=pack.directory / RULES_FILE,
        region_tag=region_tag,
        category_tag=category_tag,
    )
    residency_book(load_rules(), settings)  # refuse a pack whose residency rules do not bind, before scanning
    return settings


def _copy_kind(store: DataStore) -> CopyKind:
    if "snapshot" in store.kind:
        return "snapshot-copy"
    return "backup-copy" if "backup" in store.kind else "replication"


def link_copies(stores: Sequence[DataStore]) -> list[DataStore]:
    """Stores with copies linked both ways and classifications inherited along copies."""
    by_id = {s.resource: s for s in stores}
    _link_named_sources(stores, by_id)
    _link_listed_targets(by_id)
    for _ in range(_MAX_CHAIN):  # inherit classification along chains of copies
        if not _inherit_once(by_id):
            break
    return [by_id[s.resource] for s in stores]


def _link_named_sources(stores: Sequence[DataStore], by_id: dict[str, DataStore]) -> None:
    """A copy that names its source becomes one of the source's copies."""
    for store in stores:
        source = by_id.get(store.copy_of) if store.copy_of is not None else None
        if source is not None and all(c.target != store.resource for c in source.copies):
            copy = StoreCopy(
                kind=_copy_kind(store),
                target=store.resource,
                provider=store.provider,
                region=store.region,
                country=store.country,
            )
            by_id[source.resource] = source.model_copy(update={"copies": (*source.copies, copy)})


def _link_listed_targets(by_id: dict[str, DataStore]) -> None:
    """A listed copy target learns its source."""
    for source in list(by_id.values()):
        for copy in source.copies:
            target = by_id.get(copy.target)
            if target is not None and target.copy_of is None and target.resource != source.resource:
                by_id[target.resource] = target.model_copy(update={"copy_of": source.resource})


def _inherit_once(by_id: dict[str, DataStore]) -> bool:
    """One step of classification inheritance from source to copy; whether anything changed."""
    changed = False
    for store in list(by_id.values()):
        source = by_id.get(store.copy_of) if store.copy_of is not None else None
        if store.classification is None and source is not None and source.classification is not None:
            update = {"source": "inherited", "inherited_from": source.resource}
            inherited = source.classification.model_copy(update=update)
            by_id[store.resource] = store.model_copy(update={"classification": inherited})
            changed = True
    return changed


def judge(stores: Sequence[DataStore], settings: ResidencySettings) -> list[ResidencyFinding]:
    """Every rule's findings on every (linked) store, sorted."""
    ctx = StoreContext(settings=settings, stores={s.resource: s for s in stores})
    book = residency_book(load_rules(), settings)
    findings = [f for store in stores for rule in book for f in rule.findings(store, ctx)]
    findings.sort(key=lambda f: (int(f.commitment[1:]), f.rule_id, f.resource, f.store))
    return findings


def scan(providers: Iterable[StoreProvider], settings: ResidencySettings, *, now: datetime | None = None) -> ScanResult:
    """Scan with every provider, link, judge. Provider errors propagate (nothing is half-judged)."""
    stores: list[DataStore] = []
    seen: dict[str, str] = {}
    scopes = []
    for provider in providers:
        for store in provider.scan(settings):
            if store.resource in seen:
                raise InputError(f"store {store.resource} listed twice ({seen[store.resource]} and {store.source})")
            seen[store.resource] = store.source
            stores.append(store)
        scopes.append(provider.scope())
    linked = link_copies(stores)
    return ScanResult(
        settings=settings,
        scopes=tuple(scopes),
        stores=tuple(linked),
        findings=tuple(judge(linked, settings)),
        generated_at=now or datetime.now(UTC),
    )


def summarize(result: ScanResult) -> ResidencySummary:
    """Counts over a scan."""
    findings = result.findings
    return ResidencySummary(
        stores=len(result.stores),
        stores_with_home_data=sum(holds_home_data(s, result.settings) for s in result.stores),
        unclassified=sum(s.classification is None for s in result.stores),
        findings=len(findings),
        violations=sum(f.status == "violation" for f in findings),
        unknown=sum(f.status == "unknown" for f in findings),
        by_commitment=dict(sorted(Counter(f.commitment for f in findings if f.status == "violation").items())),
        by_rule=dict(sorted(Counter(f.rule_id for f in findings).items())),
    )


def inventory_document(result: ScanResult) -> bytes:
    """Canonical bytes of what was observed: scopes and every linked store (a report subject)."""
    return canonical_bytes(
        {
            "as_of": result.settings.as_of.isoformat(),
            "scopes": [s.model_dump(mode="json") for s in result.scopes],
            "stores": [s.model_dump(mode="json", exclude_none=True) for s in result.stores],
        }
    )


def residency_section(result: ScanResult) -> ResidencySection:
    """The report predicate section for a scan."""
    settings = result.settings
    return ResidencySection(
        as_of=settings.as_of,
        home=settings.home,
        deadlines=dict(sorted(settings.deadlines.items())),
        scopes=result.scopes,
        inventory_sha256=hashlib.sha256(inventory_document(result)).hexdigest(),
        summary=summarize(result),
        findings=result.findings,
    )
