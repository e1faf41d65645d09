"""Enrichment for imported events: a people directory and a data catalogue.

Vendor logs name a principal (an ARN, a user name, an OCID) and a resource (a bucket
and key, a table, an OCID); they rarely say where a person works or what data a
resource holds. The *people directory* (CSV or JSON) maps principals to a person:
employer, office and usual physical country, team, role, kind, US-security-team
membership. The *data catalogue* (YAML) maps resource patterns (shell-style globs,
first match wins) to dataset, category, store, provider, region and store kind, or
marks them as not user data. Both are validated with pydantic; every error names the
file and line.

A principal or resource that cannot be resolved is not an error: the importer keeps
the event, marks it in ``source_record.unresolved``, and builds an actor with no
location (replay reports ``actor-location-unknown`` and judges it as foreign) or a
resource with category ``unclassified`` (replay reports ``unclassified-resource``).
This module never reads vendor logs.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase, translate
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audit.errors import InputError
from audit.models import Actor, ActorKind, NonEmpty, Provider, Resource, StoreKind, country_or_region
from audit.reading import read_text
from audit.records import MAX_YAML_BYTES, describe_validation_error, open_input, yaml_node, yaml_value

UNCATALOGUED = "uncatalogued"
UNCLASSIFIED = "unclassified"
UNKNOWN_REGION = "unknown"
CarriesIdentity = Literal["session-name", "source-identity"]


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Person(_Input):
    """One directory entry: a principal and the person behind it."""

    principal: NonEmpty
    person_id: NonEmpty | None = None
    kind: ActorKind = "employee"
    employer: str | None = None
    office_country: str | None = None
    physical_country: str | None = None
    team: str | None = None
    role: str | None = None
    security_team: bool = False
    carries_identity: CarriesIdentity | None = None
    """For an AWS IAM role: how its sessions name the person (``session-name``: the role session
    name is set by an identity provider, as IAM Identity Center and SAML federation do;
    ``source-identity``: ``sessionContext.sourceIdentity``). Empty: the session name is chosen by
    the caller and never identifies anyone; the role itself is the actor."""

    @field_validator("office_country", "physical_country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return country_or_region(value) if value is not None else None

    @model_validator(mode="after")
    def _security_team_is_placed(self) -> Person:
        if self.security_team and (not self.team or not self.office_country):
            raise ValueError("a security-team member needs a team and an office_country")
        return self

    @property
    def actor_id(self) -> str:
        return self.person_id or self.principal


class CatalogueEntry(_Input):
    """One catalogue rule: resources matching ``match`` hold this data (or no user data)."""

    match: NonEmpty
    user_data: bool = True
    dataset: NonEmpty | None = None
    category: NonEmpty | None = None
    store: NonEmpty | None = None
    provider: Provider | None = None
    region: NonEmpty | None = None
    store_kind: StoreKind = "primary"

    @model_validator(mode="after")
    def _complete(self) -> CatalogueEntry:
        described = {
            "dataset": self.dataset,
            "category": self.category,
            "store": self.store,
            "provider": self.provider,
            "region": self.region,
        }
        if self.user_data:
            missing = [name for name, value in described.items() if value is None]
            if missing:
                raise ValueError(f"user data entry needs {', '.join(missing)}")
        elif any(value is not None for value in described.values()):
            raise ValueError("an entry with user_data: false describes no dataset, category, store or region")
        return self

    def resource(self, resource_id: str) -> Resource:
        assert self.dataset and self.category and self.store and self.provider and self.region
        return Resource(
            id=resource_id,
            dataset=self.dataset,
            category=self.category,
            store=self.store,
            provider=self.provider,
            region=self.region,
            store_kind=self.store_kind,
        )


class _CatalogueFile(_Input):
    resources: tuple[Any, ...] = Field(min_length=1)


# ------------------------------------------------------------------ loading

_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False, "": False}


def _csv_people(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("not UTF-8", path=path) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise InputError("empty directory: no header row", path=path, line=1)
    rows: list[tuple[int, dict[str, Any]]] = []
    for row in reader:
        if None in row:
            raise InputError("more cells than header columns", path=path, line=reader.line_num)
        value: dict[str, Any] = {k.strip(): (v.strip() or None) for k, v in row.items() if k is not None}
        flag = str(value.get("security_team") or "").lower()
        if flag not in _BOOLS:
            raise InputError(f"security_team: {flag!r} is not true/false", path=path, line=reader.line_num)
        value["security_team"] = _BOOLS[flag]
        if not any(v for k, v in value.items() if k != "security_team"):
            continue
        rows.append((reader.line_num, value))
    return rows


def _json_people(path: Path) -> list[tuple[int | None, Any]]:
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc}", path=path) from None
    people = doc.get("people") if isinstance(doc, dict) else doc
    if not isinstance(people, list):
        raise InputError('expected a JSON list of people or {"people": [...]}', path=path)
    return [(None, entry) for entry in people]


@dataclass(frozen=True)
class Directory:
    """People by principal."""

    by_principal: dict[str, Person]
    source: Path

    def find(self, candidates: Sequence[str]) -> Person | None:
        """The first candidate principal the directory knows."""
        for candidate in candidates:
            person = self.by_principal.get(candidate)
            if person is not None:
                return person
        return None


def load_directory(path: Path) -> Directory:
    """Load a people directory (``.csv``, or ``.json``: a list or ``{"people": [...]}``)."""
    path = open_input(path)
    rows: Sequence[tuple[int | None, Any]] = _json_people(path) if path.suffix.lower() == ".json" else _csv_people(path)
    people: dict[str, Person] = {}
    for number, (line, value) in enumerate(rows, start=1):
        where = "" if line is not None else f"people[{number - 1}]: "
        try:
            person = Person.model_validate(value)
        except ValidationError as exc:
            raise InputError(where + describe_validation_error(exc), path=path, line=line) from None
        if person.principal in people:
            raise InputError(f"{where}duplicate principal {person.principal!r}", path=path, line=line)
        people[person.principal] = person
    if not people:
        raise InputError("the directory lists nobody", path=path)
    return Directory(people, path)


@dataclass(frozen=True)
class Catalogue:
    """Catalogue entries in file order (first match wins)."""

    entries: tuple[CatalogueEntry, ...]
    source: Path

    def find(self, candidates: Sequence[str]) -> CatalogueEntry | None:
        """The first entry matching a candidate, trying candidates in order (:meth:`find_each`, in one regex)."""
        if not self.entries:
            return None
        pattern, entry_of = self._globs
        for candidate in candidates:
            found = pattern.match(candidate)
            if found is not None:
                return entry_of[found.lastindex or 0]
        return None

    def find_each(self, candidates: Sequence[str]) -> CatalogueEntry | None:
        """What :meth:`find` gives: each entry's glob tried in turn on each candidate (``fnmatchcase``)."""
        for candidate in candidates:
            for entry in self.entries:
                if fnmatchcase(candidate, entry.match):
                    return entry
        return None

    @cached_property
    def _globs(self) -> tuple[re.Pattern[str], dict[int, CatalogueEntry]]:
        """Every entry's glob as ``fnmatchcase`` compiles it (``fnmatch.translate``, anchored at the end), each in a
        group, as alternatives in file order: the regex tries them in that order and the first that matches the
        whole candidate wins, so the outermost group that closed last names the entry ``find_each`` finds."""
        parts, entry_of, group = [], {}, 1
        for entry in self.entries:
            glob = translate(entry.match)
            parts.append(f"({glob})")
            entry_of[group] = entry
            group += 1 + re.compile(glob).groups
        return re.compile("|".join(parts)), entry_of


def load_catalogue(path: Path) -> Catalogue:
    """Load a data catalogue: YAML ``resources:`` list of :class:`CatalogueEntry`."""
    path = open_input(path)
    try:
        text = read_text(path, max_bytes=MAX_YAML_BYTES)
        doc = yaml_value(text)
        node = yaml_node(text)
    except UnicodeDecodeError:
        raise InputError("not UTF-8", path=path) from None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise InputError(f"malformed YAML: {exc.problem}", path=path, line=line) from None
    try:
        top = _CatalogueFile.model_validate(doc)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc), path=path, line=1) from None
    lines = _item_lines(node, len(top.resources))
    entries: list[CatalogueEntry] = []
    for number, (raw, line) in enumerate(zip(top.resources, lines, strict=True)):
        try:
            entries.append(CatalogueEntry.model_validate(raw))
        except ValidationError as exc:
            raise InputError(f"resources[{number}]: {describe_validation_error(exc)}", path=path, line=line) from None
    return Catalogue(tuple(entries), path)


def _item_lines(node: yaml.Node | None, count: int) -> list[int | None]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "resources" and isinstance(value, yaml.SequenceNode):
                return [item.start_mark.line + 1 for item in value.value]
    return [None] * count


# ------------------------------------------------------------------ resolution


MEMO_SIZE = 16_384
"""Answers a :class:`Memo` keeps before it starts over (object keys make resource candidates unbounded)."""
MEMO_BYTES = 8 << 20
"""About the bytes of keys a :class:`Memo` keeps before it starts over (one key may be megabytes)."""


class Memo(dict[Any, Any]):
    """Answers by key for one import, starting over at :data:`MEMO_SIZE` answers or :data:`MEMO_BYTES`.

    Keys come from untrusted records, so both the count and the bytes held are bounded.
    """

    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    def remember(self, key: Any, value: Any, size: int) -> None:
        """Keep ``value`` for ``key``; ``size``: about the bytes of both."""
        if len(self) >= MEMO_SIZE or self.size + size > MEMO_BYTES:
            self.clear()
            self.size = 0
        self[key] = value
        self.size += size


@dataclass(frozen=True)
class Enrichment:
    """The directory and catalogue an import resolves principals and resources with."""

    directory: Directory
    catalogue: Catalogue
    _actors: Memo = field(default_factory=Memo, init=False, repr=False, compare=False)
    _resources: Memo = field(default_factory=Memo, init=False, repr=False, compare=False)

    def actor(
        self, candidates: Sequence[str], observed: dict[str, Any] | None = None, defaults: dict[str, Any] | None = None
    ) -> tuple[Actor, bool]:
        """The actor for a principal and whether it was resolved (see :meth:`resolve_actor`), memoised.

        The answer depends only on the arguments and the immutable directory; actors are
        frozen, so one is shared by every event with the same arguments.
        """
        try:
            key = (tuple(candidates), _items(observed), _items(defaults))
            cached = self._actors.get(key)
        except TypeError:  # an unhashable value: not memoised
            return self.resolve_actor(candidates, observed, defaults)
        if cached is None:
            cached = self.resolve_actor(candidates, observed, defaults)
            self._actors.remember(key, cached, len(repr(key)))
        return cached

    def resolve_actor(
        self, candidates: Sequence[str], observed: dict[str, Any] | None = None, defaults: dict[str, Any] | None = None
    ) -> tuple[Actor, bool]:
        """The actor for a principal and whether it was resolved.

        ``observed`` holds what the vendor record itself says about the actor
        (location, employer, role); it wins over the directory, because it was
        recorded at access time. ``defaults`` apply when neither says otherwise. An
        actor neither the directory nor the record locates is unresolved and has no
        location.
        """
        seen = {k: v for k, v in (observed or {}).items() if v is not None}
        person = self.directory.find(candidates)
        if person is not None:
            known = person.model_dump(
                exclude={"principal", "person_id", "security_team", "carries_identity"}, exclude_none=True
            )
            return Actor.model_validate({**(defaults or {}), **known, **seen, "id": person.actor_id}), True
        located = "office_country" in seen or "physical_country" in seen
        return Actor.model_validate({**(defaults or {}), **seen, "id": candidates[0]}), located

    def resource(
        self, candidates: Sequence[str], *, provider: Provider, region: str | None
    ) -> tuple[Resource | None, bool]:
        """The resource for identifiers (see :meth:`resolve_resource`), memoised like :meth:`actor`."""
        key = (tuple(candidates), provider, region)
        cached = self._resources.get(key)
        if cached is None:
            cached = self.resolve_resource(candidates, provider=provider, region=region)
            self._resources.remember(key, cached, sum(map(len, candidates)) + len(region or ""))
        return cached

    def resolve_resource(
        self, candidates: Sequence[str], *, provider: Provider, region: str | None
    ) -> tuple[Resource | None, bool]:
        """The resource for identifiers, ``None`` if the catalogue says it holds no user data.

        An identifier no entry matches gives an uncatalogued resource of category
        ``unclassified`` at the record's region (``unknown`` if it names none).
        """
        entry = self.catalogue.find(candidates)
        if entry is None:
            return Resource(
                id=candidates[0],
                dataset=UNCATALOGUED,
                category=UNCLASSIFIED,
                store=UNCATALOGUED,
                provider=provider,
                region=region or UNKNOWN_REGION,
            ), False
        if not entry.user_data:
            return None, True
        return entry.resource(candidates[0]), True


def _items(value: dict[str, Any] | None) -> tuple[tuple[str, type, Any], ...] | None:
    """A memo key for a dict: its items with each value's type (``1 == True``, but they validate differently)."""
    return None if value is None else tuple((k, type(v), v) for k, v in value.items())


def load_enrichment(directory: Path, catalogue: Path) -> Enrichment:
    """Load and validate both enrichment files."""
    return Enrichment(load_directory(directory), load_catalogue(catalogue))
