"""``pack.yaml``: what a pack's facts are computed with, for any company and jurisdiction.

The engine knows no country, provider region or company: a pack says which countries
are *home* (and what its policy rows call staff located there), which security teams
may approve access from outside home, which stores are approved, which stores are
transitional (allowed until a deadline) and which region names mean which country,
and whether data handed to a recipient outside home is also judged as a *transfer*
(``transfers``: the ``transfer`` facet, for rules such as GDPR Chapter V).
:mod:`audit.replay.facts` and :mod:`audit.residency` derive facts only from this.

Store sets are matched in order - every transitional store, then every approved
store, then every other named store - and the first that matches an event's
resource names its *store class*; a resource no set matches gets
``default_store_class``. A transitional store's class gains the suffix
:data:`EXPIRED_SUFFIX` on and after its deadline (compared with the event's UTC date).

This module validates and matches; it reads no file (:mod:`audit.policy.load` does).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import date
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints, model_validator

from audit.errors import InputError
from audit.models import CommitmentId, NonEmpty, Severity
from audit.policy.wording import PackTemplate, TemplateError

EXPIRED_SUFFIX = "_expired"
"""Appended to a transitional store's class from its deadline on (``backup`` -> ``backup_expired``)."""

_NAME = r"^[a-z][a-z0-9_]{0,62}$"
ClassName = Annotated[str, StringConstraints(pattern=_NAME)]
"""A class name as policy rows use it: lower case, digits and ``_``."""

_RULE_ID = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
PackRuleId = Annotated[str, StringConstraints(pattern=_RULE_ID, max_length=80)]


def _country_code(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        raise ValueError(f"{value!r} is not an ISO 3166 alpha-2 country code")
    return code


def _upper(value: str) -> str:
    return value.strip().upper()


def _region_pattern(value: str) -> str:
    pattern = value.strip().lower()
    if len(pattern) > 64 or not re.fullmatch(r"[a-z0-9*?._-]+", pattern) or pattern.count("*") > 2:
        raise ValueError(f"{value!r} is not a region name or pattern (letters, digits, . _ - and at most two *)")
    return pattern


CountryCode = Annotated[NonEmpty, AfterValidator(_country_code)]
RegionCode = Annotated[NonEmpty, AfterValidator(_upper)]
RegionPattern = Annotated[NonEmpty, AfterValidator(_region_pattern)]
"""A cloud region name, or a pattern with ``*`` / ``?`` (``us-*``), matched case-insensitively."""


def region_matches(region: str, patterns: tuple[str, ...]) -> bool:
    """Whether a region name matches one of the (lower-case) patterns."""
    name = region.strip().lower()
    return any(fnmatchcase(name, pattern) for pattern in patterns)


class Home(BaseModel):
    """The jurisdiction whose data and staff the commitments protect."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: NonEmpty = Field(max_length=80)
    """How messages name it ("the US", "the EU/EEA")."""
    countries: tuple[CountryCode, ...] = Field(min_length=1)
    """Countries that place a person, a store or data subjects at home."""
    staff_class: ClassName
    """What policy rows call staff located at home (``home_staff``, ``eea_staff``)."""


class StoreSet(BaseModel):
    """A named set of stores: every criterion given must match (an omitted one matches anything)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store_class: ClassName = Field(alias="class")
    description: NonEmpty = Field(max_length=200)
    providers: tuple[NonEmpty, ...] = ()
    regions: tuple[RegionPattern, ...] = ()
    countries: tuple[CountryCode, ...] = ()
    """Declared countries (residency inventories); replay events carry regions only."""
    store_kinds: tuple[NonEmpty, ...] = ()
    """Replay's store kinds (``backup``...); residency inventories ignore this criterion."""

    def matches(self, provider: str, region: str, country: str | None, store_kind: str | None) -> bool:
        """Whether a store with these properties is in this set (``None`` = not known: no criterion on it)."""
        if self.providers and provider not in self.providers:
            return False
        if self.store_kinds and store_kind is not None and store_kind not in self.store_kinds:
            return False
        by_region = bool(self.regions) and region_matches(region, self.regions)
        by_country = bool(self.countries) and country is not None and country.upper() in self.countries
        return by_region or by_country or (not self.regions and not self.countries)


class TransitionalStore(StoreSet):
    """Stores allowed until a deadline (a backup to delete, a data centre to phase out)."""

    deadline: date
    """From this UTC date on the class is ``<class>_expired``."""
    deadline_label: NonEmpty = Field(default="deadline", max_length=40)
    """How findings name the date ("deadline 2021-12-01", "phase-out 2022-01-15")."""
    commitment: CommitmentId
    """The commitment the deadline answers to."""
    covers_all_data: bool = False
    """Residency: flag any store in this set after the deadline, not only those holding home data."""

    @property
    def expired_class(self) -> str:
        return self.store_class + EXPIRED_SUFFIX


class PackConfig(BaseModel):
    """``pack.yaml``: home, approvers, stores and codes a pack's facts are computed with.

    Country and multi-region codes are normalised to upper case and region patterns
    to lower case, so the fact layer compares them case-insensitively.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: NonEmpty
    effective_from: date
    home: Home
    security_teams: tuple[NonEmpty, ...] = Field(min_length=1)
    """Approvals count only when every approver is in one of these teams and located at home."""
    multi_region_codes: tuple[RegionCode, ...] = ()
    """Location codes that are never proof of presence anywhere (``NAM``, ``ANY``): unlocated."""
    region_countries: dict[RegionPattern, CountryCode] = Field(default_factory=dict, max_length=500)
    """Region name (or pattern) -> the country it is in; the first matching pattern wins."""
    approved_stores: tuple[StoreSet, ...] = Field(min_length=1)
    transitional_stores: tuple[TransitionalStore, ...] = ()
    other_stores: tuple[StoreSet, ...] = ()
    """Named stores that are neither approved nor transitional (so rows can name them)."""
    default_store_class: ClassName = "other_store"
    transfers: bool = False
    """Ask the ``transfer`` facet when data goes to a recipient outside home (off: never asked)."""
    require_signed_approvals: bool = False  # replay refuses a plain JSON Lines approvals file

    @model_validator(mode="after")
    def _classes_unique(self) -> PackConfig:
        names = [s.store_class for s in self.store_sets()] + [s.expired_class for s in self.transitional_stores]
        names.append(self.default_store_class)
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"store classes must be unique, repeated: {', '.join(dupes)}")
        return self

    def store_sets(self) -> tuple[StoreSet, ...]:
        """Every store set in matching order: transitional, approved, other."""
        return (*self.transitional_stores, *self.approved_stores, *self.other_stores)

    def named_store_classes(self) -> frozenset[str]:
        """Every store set's class and the default class, without the ``_expired`` ones."""
        return frozenset(s.store_class for s in self.store_sets()) | {self.default_store_class}

    def store_classes(self) -> tuple[str, ...]:
        """Every store class a fact can name, including expired ones and the default."""
        names = [s.store_class for s in self.store_sets()] + [s.expired_class for s in self.transitional_stores]
        return (*names, self.default_store_class)

    def country_of_region(self, region: str) -> str | None:
        """The country a region is in, by ``region_countries`` (``None`` if no pattern matches)."""
        name = region.strip().lower()
        for pattern, country in self.region_countries.items():
            if fnmatchcase(name, pattern):
                return country
        return None

    def is_home(self, country: str | None) -> bool:
        """Whether a (normalised) country code is a home country."""
        return country is not None and country in self.home.countries


class PackRule(BaseModel):
    """One entry of ``rules.yaml``: a finding type in the pack's own words, reported by an engine rule.

    ``kind`` names the engine rule that finds it (``store-not-approved``...); the
    pack gives the id its policy rows name, the commitment it implements, and the
    words. ``message`` is a template with ``$name`` placeholders filled from the
    engine rule's variables (``$$`` is a dollar sign, any other ``$`` is refused;
    checked when the engine rule is bound, never evaluated); title, description and
    remediation are plain text. ``stores`` limits a residency rule to some store
    classes, and ``copy_message`` words a residency finding on a copy differently
    from one on a store.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: PackRuleId
    kind: PackRuleId
    scope: Literal["replay", "residency"] = "replay"
    title: NonEmpty = Field(max_length=200)
    severity: Severity
    commitment: CommitmentId
    description: NonEmpty = Field(max_length=1000)
    remediation: NonEmpty = Field(max_length=1000)
    message: str | None = Field(default=None, min_length=1, max_length=500)
    copy_message: str | None = Field(default=None, min_length=1, max_length=500)
    """Residency: the template for a copy of a store (default ``message``)."""
    stores: tuple[ClassName, ...] = ()
    _lines: dict[str, int] = PrivateAttr(default_factory=dict)

    def located(self, lines: Mapping[str, int]) -> PackRule:
        """This rule, knowing the file lines of its keys (``""``: the line its entry starts on).

        The loader locates every rule it reads, so errors about one (:meth:`refusal`,
        :meth:`template`) name the file and the line.
        """
        rule = self.model_copy()
        rule._lines = dict(lines)
        return rule

    def line(self, key: str = "") -> int | None:
        """The line of ``key`` (else of the entry) in the file the rule was read from; ``None`` if not read."""
        return self._lines.get(key, self._lines.get(""))

    def refusal(self, reason: str, path: Path | None, key: str = "") -> InputError:
        """An input error about this rule at ``path`` (its ``rules.yaml``), on the line of ``key``."""
        return InputError(f"rule {self.id!r}: {reason}", path=path, line=self.line(key))

    def template(
        self,
        key: Literal["message", "copy_message"],
        known: Collection[str],
        path: Path | None,
        may_be_empty: Collection[str] = (),
    ) -> PackTemplate | None:
        """The template at ``key`` checked against the ``known`` names (``None`` if not given).

        ``may_be_empty``: the names whose value can be empty. An input error at ``path``
        and the key's line if it does not check (:class:`PackTemplate`).
        """
        text = getattr(self, key)
        if text is None:
            return None
        try:
            return PackTemplate(text, known, may_be_empty)
        except TemplateError as exc:
            raise self.refusal(f"{key}: {exc}", path, key) from None


class RulesFile(BaseModel):
    """``rules.yaml``: the pack's own rules (optional file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: tuple[PackRule, ...] = Field(default=(), max_length=200)

    @model_validator(mode="after")
    def _ids_unique(self) -> RulesFile:
        ids = [(r.scope, r.id) for r in self.rules]
        dupes = sorted({f"{s}:{i}" for s, i in ids if ids.count((s, i)) > 1})
        if dupes:
            raise ValueError(f"rule ids must be unique per scope, repeated: {', '.join(dupes)}")
        return self
