"""The residency section of a signed report: findings about stores, their counts, what was scanned.

These are the models a report's predicate carries once ``residency scan
--into-report`` folds a scan into it (:class:`ResidencySection`). They live in the
report layer so that reading and verifying a report never needs the scanner; the
scanner (:mod:`audit.residency`) builds them. Shape only: nothing is judged here.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

from audit.models import CommitmentId, NonEmpty, Provider, Severity

FindingStatus = Literal["violation", "unknown"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ResidencyFinding(_Frozen):
    """A store (or one of its copies) that breaks a commitment, or cannot be judged."""

    rule_id: NonEmpty
    commitment: CommitmentId
    severity: Severity
    status: FindingStatus
    title: NonEmpty
    message: NonEmpty
    remediation: NonEmpty
    provider: Provider
    account: NonEmpty
    region: str | None
    resource: NonEmpty
    kind: NonEmpty
    store: NonEmpty


class ResidencySummary(_Frozen):
    """Counts for a reader in a hurry."""

    stores: int
    stores_with_home_data: int
    """Stores classified as holding user data of the pack's home."""
    unclassified: int
    findings: int
    violations: int
    unknown: int
    by_commitment: dict[str, int]
    by_rule: dict[str, int]


class ScanScope(_Frozen):
    """What one provider scan covered (``provider``: aws, oci or inventory)."""

    provider: NonEmpty
    account: str
    regions: tuple[str, ...]
    source: str


class ResidencySection(_Frozen):
    """The residency part of a signed report's predicate."""

    as_of: date
    home: NonEmpty
    """How the pack names its home jurisdiction (``pack.yaml`` ``home.name``)."""
    deadlines: dict[str, date]
    """Each transitional store class's deadline the scan judged with (the pack's or ``--deadline``)."""
    scopes: tuple[ScanScope, ...]
    inventory_sha256: str
    summary: ResidencySummary
    findings: tuple[ResidencyFinding, ...]
