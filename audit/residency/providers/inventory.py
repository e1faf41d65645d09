"""Declared stores from an inventory file (YAML or JSON) for what no API can list.

The company's own data centres, a partner's archive, a store in an account the
auditor cannot reach: each is declared with its provider, region (and country),
classification and copies, and validated by pydantic. An error names the file, the
line of the offending value and the field, in one line. A store declared without a
``classification`` (or classifying tags) is unclassified: the scan reports it as
unknown, never as clean. Does not judge stores.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from audit.errors import InputError
from audit.models import NonEmpty, Provider
from audit.reading import read_text
from audit.records import MAX_YAML_BYTES, describe_validation_error, open_input, yaml_node, yaml_value
from audit.report.residency import ScanScope
from audit.residency.models import Classification, CopyKind, DataStore, ResidencySettings, StoreCopy
from audit.residency.places import classify

M = TypeVar("M", bound=BaseModel)


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeclaredClassification(_Input):
    """Whose data a declared store holds (``subject_regions: []`` for none)."""

    subject_regions: tuple[NonEmpty, ...]
    categories: tuple[NonEmpty, ...] = ()


class DeclaredCopy(_Input):
    """A copy of a declared store's data elsewhere."""

    kind: CopyKind
    target: NonEmpty
    provider: Provider
    region: NonEmpty | None = None
    country: NonEmpty | None = None


class DeclaredStore(_Input):
    """One declared store."""

    id: NonEmpty
    name: NonEmpty | None = None
    provider: Provider
    account: NonEmpty | None = None
    region: NonEmpty
    country: NonEmpty | None = None
    kind: NonEmpty
    classification: DeclaredClassification | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    copy_of: NonEmpty | None = None
    copies: tuple[DeclaredCopy, ...] = ()


class Inventory(_Input):
    """An inventory file."""

    version: int = Field(ge=1, le=1)
    account: NonEmpty
    description: str | None = None
    stores: tuple[DeclaredStore, ...] = Field(min_length=1)


def _line_of(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """1-based line of the deepest YAML node on ``loc`` that exists."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
            if child is None:  # an unknown key: point at the key itself
                child = next((k for k, _ in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def load_model_file(path: Path, model: type[M]) -> M:
    """Parse a YAML (or JSON) file and validate it as ``model``; errors name file and line."""
    p = open_input(path)
    text = read_text(p, max_bytes=MAX_YAML_BYTES)
    try:
        node = yaml_node(text)
        value = yaml_value(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise InputError(f"malformed YAML: {exc.problem}", path=p, line=line) from None
    except yaml.YAMLError as exc:
        raise InputError(f"malformed YAML: {exc}", path=p) from None
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise InputError(describe_validation_error(exc), path=p, line=_line_of(node, first["loc"])) from None


def load_inventory(path: Path) -> Inventory:
    """Load an inventory file; store ids must be unique."""
    inventory = load_model_file(path, Inventory)
    seen: dict[str, int] = {}
    for index, store in enumerate(inventory.stores):
        if store.id in seen:
            node = yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
            raise InputError(
                f"stores.{index}.id: duplicate store id {store.id!r} (first at stores.{seen[store.id]})",
                path=path,
                line=_line_of(node, ("stores", index, "id")),
            )
        seen[store.id] = index
    return inventory


def _classification(store: DeclaredStore, settings: ResidencySettings) -> Classification | None:
    if store.classification is not None:
        return Classification(
            subject_regions=tuple(sorted({r.upper() for r in store.classification.subject_regions})),
            categories=tuple(sorted(set(store.classification.categories))),
            source="inventory",
        )
    return classify(store.tags, settings)


@dataclass
class InventoryProvider:
    """Stores declared in one or more inventory files."""

    paths: tuple[Path, ...]
    _accounts: list[str] = field(default_factory=list, init=False)
    _regions: set[str] = field(default_factory=set, init=False)

    def scope(self) -> ScanScope:
        return ScanScope(
            provider="inventory",
            account=",".join(self._accounts) or "none",
            regions=tuple(sorted(self._regions)),
            source=",".join(str(p) for p in self.paths),
        )

    def scan(self, settings: ResidencySettings) -> Iterator[DataStore]:
        for path in self.paths:
            inventory = load_inventory(path)
            self._accounts.append(inventory.account)
            for store in inventory.stores:
                self._regions.add(store.region)
                yield DataStore(
                    provider=store.provider,
                    account=store.account or inventory.account,
                    region=store.region,
                    resource=store.id,
                    name=store.name or store.id,
                    kind=store.kind,
                    country=store.country,
                    tags=store.tags,
                    classification=_classification(store, settings),
                    copy_of=store.copy_of,
                    copies=tuple(StoreCopy(**c.model_dump()) for c in store.copies),
                    source=f"inventory:{path}",
                )
