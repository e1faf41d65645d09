"""Records of the residency scanner: data stores, their copies, settings and findings.

A :class:`DataStore` is one place that may hold user data (a bucket, a backup vault,
a snapshot, a data-centre store), as a provider reported it or an inventory file
declared it, with its classification and the copies that leave it; a
:class:`ScanResult` is everything one scan produced. The findings and the section a
signed report carries are report models (:mod:`audit.report.residency`). This module
validates shape only; the rules in :mod:`audit.residency.rules` decide what breaks what.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from audit.models import NonEmpty, Provider
from audit.policy import PackConfig, PackRule
from audit.report.residency import ResidencyFinding, ScanScope

CopyKind = Literal["replication", "backup-copy", "snapshot-copy"]
ClassificationSource = Literal["tags", "inventory", "inherited"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Classification(_Frozen):
    """Whose data a store holds and of which kind.

    ``subject_regions`` are ISO country codes of the data subjects (empty: no user
    data); ``source`` says where this came from, and ``inherited_from`` names the
    store a copy took its classification from.
    """

    subject_regions: tuple[str, ...]
    categories: tuple[str, ...] = ()
    source: ClassificationSource
    inherited_from: str | None = None


class StoreCopy(_Frozen):
    """A copy of a store's data elsewhere: replication target, backup or snapshot copy.

    ``region`` is ``None`` when the destination's location could not be determined;
    an unknown location is never treated as being at home.
    """

    kind: CopyKind
    target: NonEmpty
    provider: Provider
    region: str | None
    country: str | None = None


class DataStore(_Frozen):
    """One store that may hold user data, and where its copies go."""

    provider: Provider
    account: NonEmpty
    region: NonEmpty
    resource: NonEmpty
    name: NonEmpty
    kind: NonEmpty
    country: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    classification: Classification | None = None
    copies: tuple[StoreCopy, ...] = ()
    copy_of: str | None = None
    source: NonEmpty


@dataclass(frozen=True)
class ResidencySettings:
    """What the rules judge stores with: the pack's configuration and rules, the date, tag keys.

    Built from the policy pack (``pack.yaml``, ``rules.yaml``) and command-line
    overrides. ``deadlines`` holds every transitional store class's deadline (the
    pack's, or an override); ``rules`` are the pack's ``scope: residency`` rules and
    ``rules_file`` the file they came from (named in errors).
    """

    as_of: date
    pack: PackConfig
    deadlines: Mapping[str, date]
    rules: tuple[PackRule, ...] = ()
    rules_file: Path | None = None
    region_tag: str = "data-subject-region"
    category_tag: str = "data-category"

    @property
    def home(self) -> str:
        """How the pack names its home jurisdiction (``home.name``)."""
        return self.pack.home.name


@dataclass(frozen=True)
class ScanResult:
    """Everything one scan produced."""

    settings: ResidencySettings
    scopes: tuple[ScanScope, ...]
    stores: tuple[DataStore, ...]
    findings: tuple[ResidencyFinding, ...]
    generated_at: datetime
