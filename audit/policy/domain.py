"""The finite request domain of a pack and its invariants, read from ``invariants.yaml``.

The replay engine asks a pack only requests built from small vocabularies (actor
classes, data categories, actions, approval states, store classes, legal bases).
``invariants.yaml`` declares those vocabularies (``domain``), which vocabulary fills
each request field of each facet, and the invariants that must hold for every
request of the domain. :func:`load_invariants` validates the file with file:line
diagnostics; :meth:`Domain.requests` enumerates requests; :func:`undeclared_values`
finds values a pack names that the domain lacks.

It does not decide requests (:mod:`audit.policy.pack`) or check invariants
(:mod:`audit.policy.prove`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from audit.errors import InputError
from audit.policy.budget import MAX_DOMAIN_REQUESTS, BudgetExceeded
from audit.policy.diagnostics import quote
from audit.policy.files import load_pack_yaml
from audit.policy.pack import PolicyRow, Request
from audit.records import describe_validation_error

INVARIANTS_FILE = "invariants.yaml"
WILDCARD = "*"
_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_ROLE_FUNCTION = re.compile(r"g[0-9]*")
_SIMPLE_TOKENS = re.compile(r"""\s+|&&|\|\||==|\(|\)|,|"\*"|'\*'|\b[rp][0-9]*[._][A-Za-z_][A-Za-z0-9_]*|\bg[0-9]*\b""")

ValueKind = Literal["role", "category", "action", "other"]


class ValueSet(BaseModel):
    """A named vocabulary; ``kind`` says what an undeclared value of it is called by lint."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ValueKind
    values: tuple[str, ...] = Field(min_length=1)


def _condition(value: Any) -> Any:
    if isinstance(value, str):
        return {"in": [value]}
    if isinstance(value, list):
        return {"in": value}
    return value


class Condition(BaseModel):
    """Which values a request field may take: ``in`` and/or ``not_in``.

    Each is a value-set name or a list of values; a plain string or list in YAML is
    short for ``in``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    in_: str | tuple[str, ...] | None = Field(default=None, alias="in")
    not_in: str | tuple[str, ...] | None = None


FieldConditions = Mapping[str, Annotated[Condition, BeforeValidator(_condition)]]


class Invariant(BaseModel):
    """A statement about every request ``when`` selects.

    ``expect: deny`` (or ``allow``) fixes the decision; ``allow_only_if`` lists
    alternatives (each a set of field conditions) one of which an allowed request
    must meet.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
    commitment: str
    title: str
    when: FieldConditions
    expect: Literal["allow", "deny"] | None = None
    allow_only_if: tuple[FieldConditions, ...] | None = None

    @model_validator(mode="after")
    def _one_requirement(self) -> Invariant:
        if (self.expect is None) == (self.allow_only_if is None):
            raise ValueError("give exactly one of expect and allow_only_if")
        if "facet" not in self.when:
            raise ValueError("when must name a facet")
        return self


class _File(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sets: Mapping[str, ValueSet]
    facets: Mapping[str, Mapping[str, str]] = Field(min_length=1)
    invariants: tuple[Invariant, ...] = ()


@dataclass(frozen=True)
class Domain:
    """Request vocabularies per facet, validated against a pack's request fields."""

    sets: Mapping[str, ValueSet]
    facets: Mapping[str, Mapping[str, str]]
    request_fields: tuple[str, ...]

    def values(self, facet: str, field: str) -> tuple[str, ...]:
        """Every value ``field`` takes in ``facet`` (just the facet name for the facet field)."""
        if field == self.request_fields[0]:
            return (facet,)
        return self.sets[self.facets[facet][field]].values

    def kind(self, facet: str, field: str) -> ValueKind:
        """What lint calls an undeclared value of this field."""
        if field == self.request_fields[0]:
            return "other"
        return self.sets[self.facets[facet][field]].kind

    def resolve(self, condition: Condition, universe: Sequence[str]) -> tuple[str, ...]:
        """The values of ``universe`` a condition admits, in ``universe`` order."""
        admitted = set(universe) if condition.in_ is None else set(self._named(condition.in_))
        if condition.not_in is not None:
            admitted -= set(self._named(condition.not_in))
        return tuple(value for value in universe if value in admitted)

    def _named(self, ref: str | tuple[str, ...]) -> tuple[str, ...]:
        return self.sets[ref].values if isinstance(ref, str) else ref

    def requests(self, when: FieldConditions | None = None) -> Iterator[Request]:
        """Every request of the domain that ``when`` admits (all of them without ``when``)."""
        facet_field = self.request_fields[0]
        facets = list(self.facets)
        if when is not None and facet_field in when:
            facets = list(self.resolve(when[facet_field], facets))
        for facet in facets:
            columns = []
            for field in self.request_fields[1:]:
                universe = self.values(facet, field)
                condition = when.get(field) if when is not None else None
                columns.append(self.resolve(condition, universe) if condition is not None else universe)
            for combo in itertools.product(*columns):
                yield (facet, *combo)  # type: ignore[misc]  # five fields, checked at load

    def every_value(self) -> tuple[str, ...]:
        """Every value some request of the domain holds in some field (the facets among them), once each."""
        found = dict.fromkeys(self.facets)
        for facet in self.facets:
            for field in self.request_fields[1:]:
                found.update(dict.fromkeys(self.values(facet, field)))
        return tuple(found)

    def size(self, when: FieldConditions | None = None) -> int:
        """How many requests :meth:`requests` yields, counted without enumerating them."""
        facet_field = self.request_fields[0]
        facets = list(self.facets)
        if when is not None and facet_field in when:
            facets = list(self.resolve(when[facet_field], facets))
        total = 0
        for facet in facets:
            count = 1
            for field in self.request_fields[1:]:
                universe = self.values(facet, field)
                condition = when.get(field) if when is not None else None
                count *= len(self.resolve(condition, universe)) if condition is not None else len(universe)
            total += count
        return total

    def admits(self, conditions: FieldConditions, request: Request) -> bool:
        """Whether ``request`` meets every condition (fields without one are free)."""
        for index, field in enumerate(self.request_fields):
            condition = conditions.get(field)
            if condition is not None and not self.resolve(condition, (request[index],)):
                return False
        return True

    def with_value(self, value: str) -> Domain:
        """This domain with ``value`` added to every field but the facet.

        For matchers built from ``==``, role functions and ``*``, every value a pack
        never names behaves the same; one such value stands for all of them.
        """
        sets = {name: ValueSet(kind=vs.kind, values=(*vs.values, value)) for name, vs in self.sets.items()}
        return Domain(sets, self.facets, self.request_fields)

    def union(self, other: Domain) -> Domain:
        """Both domains' values per facet field (sets renamed per facet and field)."""
        sets: dict[str, ValueSet] = {}
        facets: dict[str, dict[str, str]] = {}
        for facet in dict.fromkeys([*self.facets, *other.facets]):
            facets[facet] = {}
            for field in self.request_fields[1:]:
                values: dict[str, None] = {}
                kind: ValueKind = "other"
                for domain in (self, other):
                    if facet in domain.facets:
                        values.update(dict.fromkeys(domain.values(facet, field)))
                        kind = domain.kind(facet, field)
                name = f"{facet}.{field}"
                sets[name] = ValueSet(kind=kind, values=tuple(values))
                facets[facet][field] = name
        return Domain(sets, facets, self.request_fields)


@dataclass(frozen=True)
class InvariantSpec:
    """An invariant with the line of ``invariants.yaml`` it starts on."""

    invariant: Invariant
    line: int


@dataclass(frozen=True)
class Invariants:
    """A loaded ``invariants.yaml``."""

    path: Path
    domain: Domain
    invariants: tuple[InvariantSpec, ...]


def node_line(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the YAML node at pydantic location ``loc`` (or its nearest parent)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def compose(text: str) -> yaml.Node | None:
    """The YAML node tree of ``text`` for line numbers (``None`` if it does not parse)."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return None


_Fail = Callable[..., InputError]
"""Builds the ``InputError`` for a reason at a pydantic-style location in the file."""


def load_invariants(path: Path, request_fields: tuple[str, ...], root: Path | None = None) -> Invariants:
    """Load and validate ``invariants.yaml`` for a pack with these request fields.

    ``root`` is the pack directory the file must lie in (default: its own directory).
    """
    raw, text = load_pack_yaml(path, root)
    node = compose(text)
    try:
        parsed = _File.model_validate(raw)
    except ValidationError as exc:
        loc = exc.errors(include_url=False)[0]["loc"]
        raise InputError(describe_validation_error(exc), path=path, line=node_line(node, loc)) from None

    def fail(reason: str, *loc: int | str) -> InputError:
        return InputError(reason, path=path, line=node_line(node, loc))

    _check_facets(parsed, request_fields, fail)
    domain = Domain(parsed.sets, parsed.facets, request_fields)
    check_domain_size(domain, path, node_line(node, ("facets",)))
    specs: list[InvariantSpec] = []
    seen: set[str] = set()
    for index, invariant in enumerate(parsed.invariants):
        if invariant.id in seen:
            raise fail(f"duplicate invariant id {invariant.id}", "invariants", index, "id")
        seen.add(invariant.id)
        _check_conditions(parsed, request_fields, index, invariant, fail)
        specs.append(InvariantSpec(invariant, node_line(node, ("invariants", index)) or 1))
    return Invariants(path, domain, tuple(specs))


def check_domain_size(domain: Domain, path: Path, line: int | None = None) -> None:
    """Refuse a domain of more than :data:`~audit.policy.budget.MAX_DOMAIN_REQUESTS` requests before enumerating it."""
    size = domain.size()
    if size > MAX_DOMAIN_REQUESTS:
        raise BudgetExceeded(
            f"the declared domain has {size} requests, more than the limit of {MAX_DOMAIN_REQUESTS}: "
            "policy evaluation would exceed its budget",
            path=path,
            line=line,
        )


def _check_facets(parsed: _File, request_fields: tuple[str, ...], fail: _Fail) -> None:
    """Each facet maps every request field but the facet to a declared value set."""
    wanted = set(request_fields[1:])
    for facet, fields in parsed.facets.items():
        if set(fields) != wanted:
            raise fail(
                f"facet {facet} must map exactly the request fields {', '.join(request_fields[1:])}", "facets", facet
            )
        for field, set_name in fields.items():
            if set_name not in parsed.sets:
                raise fail(
                    f"facet {facet} field {field} names unknown value set {quote(set_name)}", "facets", facet, field
                )


def _check_conditions(
    parsed: _File, request_fields: tuple[str, ...], index: int, invariant: Invariant, fail: _Fail
) -> None:
    """An invariant's conditions name request fields and declared value sets (facets literally)."""
    checked = [("when", invariant.when), *(("allow_only_if", c) for c in invariant.allow_only_if or ())]
    for key, conditions in checked:
        for field, condition in conditions.items():
            if field not in request_fields:
                raise fail(f"{key} names {quote(field)}, not a request field", "invariants", index, key)
            for ref in (condition.in_, condition.not_in):
                if isinstance(ref, str) and (field == request_fields[0] or ref not in parsed.sets):
                    raise fail(
                        f"{key}.{field} names unknown value set {quote(ref)} (list facets literally)",
                        "invariants",
                        index,
                        key,
                    )


@dataclass(frozen=True)
class Undeclared:
    """A value a pack row names in a field that the domain does not declare."""

    row: PolicyRow
    index: int
    """Index of the value in ``row.fields``."""
    value: str
    kind: ValueKind


def undeclared_values(
    rows: Sequence[PolicyRow], definitions: Mapping[str, tuple[str, ...]], domain: Domain
) -> list[Undeclared]:
    """Values in p rows and grouping members that are neither declared nor group names.

    A p row's facet must be a declared facet; each other request field must hold
    ``*``, a value of that facet's field, or a group some grouping row defines. A
    grouping row's member must be a declared value or itself a group.
    """
    groups = {row.fields[1] for row in rows if row.ptype != "p" and len(row.fields) > 1}
    declared: dict[str, ValueKind] = {}
    for value_set in domain.sets.values():
        for value in value_set.values:
            declared.setdefault(value, value_set.kind)
    names = definitions.get("p", ())
    found: list[Undeclared] = []
    for row in rows:
        if row.ptype != "p":
            found.extend(_undeclared_member(row, declared, groups))
        else:
            found.extend(_undeclared_fields(row, names, domain, groups))
    return found


_MEMBER_KINDS: dict[str, ValueKind] = {"g": "role", "g2": "category", "g3": "action"}


def _undeclared_member(row: PolicyRow, declared: Mapping[str, ValueKind], groups: set[str]) -> list[Undeclared]:
    member = row.fields[0]
    if member in declared or member in groups:
        return []
    return [Undeclared(row, 0, member, _MEMBER_KINDS.get(row.ptype, "other"))]


def _undeclared_fields(row: PolicyRow, names: Sequence[str], domain: Domain, groups: set[str]) -> list[Undeclared]:
    facet_field = domain.request_fields[0]
    named = dict(zip(names, row.fields, strict=False))
    facet = named.get(facet_field)
    if facet is None or facet not in domain.facets:
        return [Undeclared(row, names.index(facet_field), facet or "", "other")]
    found: list[Undeclared] = []
    for field in domain.request_fields[1:]:
        given = named.get(field)
        if given is None or given == WILDCARD or given in groups:
            continue
        if given not in domain.values(facet, field):
            found.append(Undeclared(row, names.index(field), given, domain.kind(facet, field)))
    return found


def matcher_is_simple(matcher: str) -> bool:
    """Whether a matcher only combines ``==`` tests, role functions ``g…`` and ``"*"`` with ``&&``/``||``.

    For such matchers a request field can match a row's value only if it equals
    it, belongs to it through grouping rows, or the row holds ``*``; that is what
    :meth:`Domain.candidates` relies on.
    """
    if any(not _ROLE_FUNCTION.fullmatch(name) for name in _CALL.findall(matcher)):
        return False
    return _SIMPLE_TOKENS.sub("", matcher) == ""


def reach(grouping: Sequence[PolicyRow]) -> dict[str, set[str]]:
    """For each value, every group it belongs to through grouping rows of any type, transitively."""
    parents: dict[str, set[str]] = {}
    for row in grouping:
        parents.setdefault(row.fields[0], set()).add(row.fields[1])
    found: dict[str, set[str]] = {}
    for start in parents:
        seen: set[str] = set()
        stack = list(parents[start])
        while stack:
            group = stack.pop()
            if group not in seen:
                seen.add(group)
                stack.extend(parents.get(group, ()))
        found[start] = seen
    return found


def candidates(
    domain: Domain, row: PolicyRow, names: Sequence[str], groups: Mapping[str, set[str]]
) -> dict[str, Condition]:
    """Conditions admitting every request of ``domain`` a p row can match under a simple matcher.

    A field can match when the row holds ``*`` there, or the request value equals
    the row's value or belongs to it (``groups`` from :func:`reach`). This
    over-approximates; the enforcer decides which candidates really match.
    """
    when: dict[str, Condition] = {}
    for field_name in domain.request_fields:
        value = row.fields[names.index(field_name)] if field_name in names else WILDCARD
        if value == WILDCARD:
            continue
        if field_name == domain.request_fields[0]:
            universe: tuple[str, ...] = tuple(domain.facets)
        else:
            universe = tuple(dict.fromkeys(v for f in domain.facets for v in domain.values(f, field_name)))
        when[field_name] = Condition(in_=tuple(v for v in universe if v == value or value in groups.get(v, ())))
    return when
