"""Pydantic v2 models for the records the toolkit reads and writes.

Input models are frozen and reject unknown fields (``extra="forbid"``): a typo in a
log or an approval file is an input error, never silently ignored. Timestamps must
carry a timezone and are normalised to UTC. This module validates shape only; what
a record *means* for a commitment is decided by the policy pack and replay rules.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol, TypeVar

import iso3166
import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StrictBool,
    StrictInt,
    StringConstraints,
    computed_field,
    model_validator,
)

from audit.enums import RecordType as RecordType


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone (RFC 3339, e.g. 2021-09-14T03:12:00Z)")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00: the UTC instant is past year 9999
        raise ValueError("timestamp is outside years 1 to 9999 in UTC") from None


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]

ISO_ALPHA2 = frozenset(iso3166.countries_by_alpha2)
"""Every ISO 3166-1 alpha-2 country code (from the maintained ``iso3166`` package)."""
RESERVED_REGION_ALPHA2 = frozenset({"EU"})
"""Two-letter codes ISO 3166 reserves for regions, accepted as region codes (they locate no one)."""


def country_or_region(value: str) -> str:
    """An ISO 3166-1 alpha-2 country code, or an upper-case region code such as NAM or APAC.

    ASCII only and never case-folded: ``"u\\u017f".upper() == "US"`` in Python, so a
    code is compared exactly as written. Two letters must be a real ISO 3166-1
    code (or a reserved region code such as EU); three to eight letters are a
    region code, which never proves where someone is.
    """
    if not (value.isascii() and value.isalpha() and value.isupper() and 2 <= len(value) <= 8):
        raise ValueError("must be an upper-case ASCII ISO 3166-1 alpha-2 code (US) or a region code (NAM, APAC)")
    if len(value) == 2 and value not in ISO_ALPHA2 and value not in RESERVED_REGION_ALPHA2:
        raise ValueError(f"{value} is not an ISO 3166-1 alpha-2 country code")
    return value


CountryOrRegion = Annotated[str, AfterValidator(country_or_region)]
NonEmpty = Annotated[str, StringConstraints(min_length=1, strip_whitespace=False)]
CommitmentId = Annotated[str, StringConstraints(pattern=r"^C[0-9]+$")]

ActorKind = Literal["employee", "contractor", "vendor", "advertiser", "service"]
Action = Literal["read", "query", "export", "copy", "download", "write", "delete", "disclose", "unknown"]
"""``unknown``: a vendor data-plane operation whose effect the importer cannot tell (judged, never dropped)."""
Provider = Literal["oci", "aws", "gcp", "azure", "own_dc", "other"]
StoreKind = Literal["primary", "replica", "backup", "cache"]
RecipientKind = Literal["employee", "law_enforcement", "government", "vendor", "advertiser"]
LegalBasisKind = Literal[
    "subpoena",
    "court_order",
    "search_warrant",
    "exigent",
    "international_agreement",
    "adequacy_decision",
    "standard_contractual_clauses",
    "binding_corporate_rules",
    "derogation",
]
"""Legal process (``subpoena`` ... ``exigent``; ``international_agreement``: a mutual legal assistance
treaty or other agreement, GDPR Art. 48) or a ground for a transfer to a third country
(``adequacy_decision`` GDPR Art. 45, ``standard_contractual_clauses`` / ``binding_corporate_rules``
Art. 46-47, ``derogation`` Art. 49). Which kinds allow what is the policy pack's decision."""
Severity = Literal["critical", "high", "medium", "low"]


class Record(BaseModel):
    """Base for input records: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Actor(Record):
    """Who performed an access. Countries are ISO 3166 alpha-2 or a region code."""

    id: NonEmpty
    kind: ActorKind = "employee"
    employer: str | None = None
    office_country: CountryOrRegion | None = None
    physical_country: CountryOrRegion | None = None
    team: str | None = None
    role: str | None = None


class Resource(Record):
    """What was touched: a dataset's record set in a store at a region."""

    id: NonEmpty
    dataset: NonEmpty
    category: NonEmpty
    store: NonEmpty
    provider: Provider
    region: NonEmpty
    store_kind: StoreKind = "primary"


class Recipient(Record):
    """Who received data when it left the actor's hands (export, copy, disclose)."""

    kind: RecipientKind
    id: NonEmpty
    country: CountryOrRegion | None = None


class LegalBasis(Record):
    """The recorded basis for handing data over: legal process or exigency for an authority, or a
    third-country transfer ground (adequacy decision, contractual clauses, binding corporate rules,
    derogation) for a recipient abroad; ``reference`` names the document."""

    kind: LegalBasisKind
    reference: NonEmpty


class SourceRecord(Record):
    """Where an imported event came from, so a finding can be traced to the vendor record.

    ``file`` is the vendor file's name, ``index`` the 1-based record number in it,
    ``vendor_event_id`` the vendor's own id. ``unresolved`` lists what the people
    directory or data catalogue could not resolve (the event is kept, judged fail-closed).
    """

    source: NonEmpty
    file: NonEmpty
    index: StrictInt = Field(ge=1)
    vendor_event_id: str | None = None
    unresolved: tuple[Literal["principal", "resource"], ...] = ()


class AccessEvent(Record):
    """One access to user data, as recorded by the producing system."""

    event_id: NonEmpty
    time: UtcDatetime
    actor: Actor
    action: Action
    resource: Resource
    approval_ids: tuple[NonEmpty, ...] = ()
    on_behalf_of: str | None = None
    recipient: Recipient | None = None
    legal_basis: LegalBasis | None = None
    justification: str | None = None
    break_glass: StrictBool = False
    """``true`` or ``false`` only (pydantic would also take ``1``, ``"yes"`` or ``"on"``)."""
    source_system: str | None = None
    source_record: SourceRecord | None = None

    @model_validator(mode="after")
    def _disclosure_names_its_recipient(self) -> AccessEvent:
        # Without a recipient a disclosure could not be judged against C5/C9 at all.
        if self.action == "disclose" and self.recipient is None:
            raise ValueError("a disclose event must name its recipient")
        return self


class Approver(Record):
    """One approver's sign-off on an approval."""

    id: NonEmpty
    team: NonEmpty
    country: CountryOrRegion
    approved_at: UtcDatetime


class ApprovalScope(Record):
    """What an approval covers; ``"*"`` in a list means any value."""

    datasets: tuple[NonEmpty, ...] = Field(min_length=1)
    categories: tuple[NonEmpty, ...] = Field(min_length=1)
    actions: tuple[NonEmpty, ...] = Field(min_length=1)
    resource_ids: tuple[NonEmpty, ...] = ()


class Review(Record):
    """After-the-fact review of a break-glass approval."""

    reviewer: NonEmpty
    team: NonEmpty
    reviewed_at: UtcDatetime


class Approval(Record):
    """An access approval, modelled on GCP Access Approval and Teleport requests."""

    approval_id: NonEmpty
    requester: NonEmpty
    approvers: tuple[Approver, ...] = ()
    scope: ApprovalScope
    not_before: UtcDatetime
    not_after: UtcDatetime
    revoked_at: UtcDatetime | None = None
    threshold: StrictInt = Field(default=1, ge=1)
    break_glass: StrictBool = False
    """``true`` or ``false`` only, as :attr:`AccessEvent.break_glass`."""
    review: Review | None = None
    reason: str | None = None

    @model_validator(mode="after")
    def _window_is_ordered(self) -> Approval:
        if self.not_after < self.not_before:
            raise ValueError("not_after is before not_before")
        return self


def _source_directory(value: str) -> str:
    parts = value.split("/")
    if len(value) > 200 or any(p in {".", ".."} or not re.fullmatch(r"[A-Za-z0-9_.-]+", p) for p in parts):
        raise ValueError(f"{value!r} is not a relative directory path (names of letters, digits, . _ -; no . or ..)")
    return value


SourceDirectory = Annotated[str, AfterValidator(_source_directory)]
"""A relative directory path without ``.`` or ``..`` parts (``sources``, ``docs/sources``)."""


class CommitmentSource(Record):
    """Where a commitment is stated: source file, 1-based line, and a phrase on that line."""

    file: NonEmpty
    line: int = Field(ge=1)
    quote: NonEmpty
    directory: SourceDirectory | None = None
    """The directory holding ``file``, relative to the pack directory (the register's
    ``source_directory``); ``None``: the ``seeds/`` directory beside the pack (the US register)."""

    @property
    def path(self) -> str:
        """``directory/file`` (``seeds/file`` without a directory), as reports and ``explain`` cite it."""
        return f"{self.directory or 'seeds'}/{self.file}"


class Commitment(Record):
    """One public commitment from the register (``policies/commitments.yaml``)."""

    id: CommitmentId
    title: NonEmpty
    text: NonEmpty
    sources: tuple[CommitmentSource, ...] = Field(min_length=1)


class PolicyRowRef(Record):
    """The policy row that decided a request: file, 1-based line and its fields."""

    file: NonEmpty
    line: int = Field(ge=1)
    fields: tuple[str, ...]


class LogPosition(Record):
    """Where an event sits in a sealed log."""

    segment: NonEmpty
    line: int = Field(ge=1)


FINDING_ID_PREFIX = "F-"
FINDING_ID_HEX = 20
"""Hex digits of SHA-256 kept in a finding id (80 bits: no collision in any real report)."""


def finding_id(rule_id: str, commitment: str, event_ids: tuple[str, ...]) -> str:
    """The stable id of a finding: ``F-`` and the first 20 hex digits of SHA-256 over
    the JSON array ``[rule_id, commitment, [event_id, ...]]`` (compact, UTF-8).

    The same rule breaking the same commitment on the same events has the same id in
    every replay, every report and every execution mode (docs/report-format.md).
    """
    data = orjson.dumps([rule_id, commitment, list(event_ids)])
    return FINDING_ID_PREFIX + hashlib.sha256(data).hexdigest()[:FINDING_ID_HEX]


class Finding(Record):
    """One violation of a commitment found by replay.

    ``id`` is computed (:func:`finding_id`) and written with the finding; reading one
    back checks that a stated id is the one its rule, commitment and events give.
    ``store``, ``region`` and ``actor_country`` locate the access for grouping and
    charts; ``waiver`` names the waiver that accepted it (a waived finding is kept).
    """

    rule_id: NonEmpty
    commitment: CommitmentId
    severity: Severity
    title: NonEmpty
    message: NonEmpty
    remediation: NonEmpty
    event_ids: tuple[str, ...]
    approval_ids: tuple[str, ...] = ()
    time: UtcDatetime
    actor_id: str
    policy_row: PolicyRowRef | None = None
    position: LogPosition | None = None
    store: str | None = None
    region: str | None = None
    actor_country: str | None = None
    waiver: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def id(self) -> str:
        """The stable finding id (:func:`finding_id`), computed once per (frozen) finding."""
        known: str | None = self.__dict__.get("id")  # not a field: pydantic compares and dumps fields only
        if known is None:
            known = self.__dict__["id"] = finding_id(self.rule_id, self.commitment, self.event_ids)
        return known

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Finding:
        """A copy whose id is computed again from its own fields (the cached one may not be its id)."""
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("id", None)
        return copy

    @model_validator(mode="wrap")
    @classmethod
    def _stated_id_matches(cls, data: Any, handler: ModelWrapValidatorHandler[Finding]) -> Finding:
        stated = None
        if isinstance(data, dict) and "id" in data:
            data = dict(data)
            stated = data.pop("id")
        finding = handler(data)
        if stated is not None and stated != finding.id:
            raise ValueError(f"finding id {stated!r} is not the one its rule, commitment and events give")
        return finding


class PolicyRowView(Protocol):
    """A finding's policy row as its readers read it: :class:`PolicyRowRef`, or the replay's decode of one."""

    @property
    def file(self) -> str: ...
    @property
    def line(self) -> int: ...
    @property
    def fields(self) -> tuple[str, ...]: ...


class PositionView(Protocol):
    """A finding's log position as its readers read it: :class:`LogPosition`, or the replay's decode of one."""

    @property
    def segment(self) -> str: ...
    @property
    def line(self) -> int: ...


class FindingView(Protocol):
    """What the report's writers read of a finding: a validated :class:`Finding`, or the replay's
    typed decode of its own ``findings.jsonl`` lines as written (:mod:`audit.report.readback`), which skips
    building one. Read-only: the writers never change a finding.
    """

    @property
    def rule_id(self) -> str: ...
    @property
    def commitment(self) -> str: ...
    @property
    def severity(self) -> Severity: ...
    @property
    def title(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def remediation(self) -> str: ...
    @property
    def event_ids(self) -> tuple[str, ...]: ...
    @property
    def approval_ids(self) -> tuple[str, ...]: ...
    @property
    def time(self) -> datetime: ...
    @property
    def actor_id(self) -> str: ...
    @property
    def policy_row(self) -> PolicyRowView | None: ...
    @property
    def position(self) -> PositionView | None: ...
    @property
    def store(self) -> str | None: ...
    @property
    def region(self) -> str | None: ...
    @property
    def actor_country(self) -> str | None: ...
    @property
    def waiver(self) -> str | None: ...
    @property
    def id(self) -> str: ...


FindingT = TypeVar("FindingT", bound=FindingView)
"""A pass that hands each finding on unchanged keeps its type (a validated one stays a :class:`Finding`)."""
