"""Signed reports: an in-toto Statement v1 in a DSSE envelope, and its verification.

The statement's subjects pin what the findings were computed from (the log's Merkle
root, each policy file, the approvals source) and the report's own files (the
findings, one per line in ``findings.jsonl``, and ``report.md``); the predicate
carries what was checked and the counts. Verification checks the signature
first, then the signed time (not in the future beyond a small clock skew, not before
the newest checkpoint of the log when it is at hand), then the signing key's validity
at that time, then the subjects against local files. Rendering to other formats lives in sibling modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from audit.canonical import canonical_bytes
from audit.errors import InputError, IntegrityError, SignatureError
from audit.logs.approvals import ApprovalSet
from audit.logs.checkpoint import format_time
from audit.models import UtcDatetime
from audit.policy import PolicyHistory
from audit.reading import read_bytes
from audit.records import describe_validation_error, open_input, sha256_file
from audit.report.claims import CommitmentVerdict, Period, Signer
from audit.report.residency import ResidencySection
from audit.report.waivers import WaiverStatus
from audit.signing.dsse import Envelope, parse_envelope, sign_envelope, verify_envelope
from audit.signing.keys import KeyPurpose, Keyring, KeyStatus, SigningKey

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://residency-audit.dev/report/v2"
"""v2: findings live in ``findings.jsonl`` (a subject), no longer in the predicate."""
CLOCK_SKEW = timedelta(minutes=5)
"""How far a report's ``generated_at`` may lie ahead of the verifier's clock (clocks differ a little)."""
LOG_SUBJECT_PREFIX = "log:"
RESIDENCY_SUBJECT = "residency-inventory.json"
"""Subject (and file beside the report) pinning the stores a residency section was judged on."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Subject(_Strict):
    """An in-toto subject: a name and its SHA-256 digest."""

    name: str
    digest: dict[str, str]


class LogSummary(_Strict):
    """What the log verification established."""

    origin: str | None = None
    record_type: str | None = None
    tree_size: int
    root: str
    segments: int
    completeness: str  # "proven" (checked against a pin) or "unproven" (tail could be missing)
    completeness_detail: str
    last_checkpoint_sha256: str | None = None


class ApprovalsSummary(_Strict):
    """Where approvals came from and whether their signatures were checked."""

    source: str
    kind: str  # "jsonl" or "sealed-log"
    signature_verified: bool
    count: int
    digest: str


class PolicySummary(_Strict):
    """Which policy versions were in force and where they came from."""

    directory: str
    versions: tuple[str, ...]
    git_revision: str | None = None


class Summary(_Strict):
    """Counts for a reader in a hurry."""

    events: int
    findings: int
    cases: int | None = None
    waived: int | None = None
    by_commitment: dict[str, int]
    by_rule: dict[str, int]


class Predicate(_Strict):
    """The report predicate (``PREDICATE_TYPE``)."""

    tool: dict[str, str]
    generated_at: UtcDatetime  # a time without a zone is refused, never compared naively
    log: LogSummary
    approvals: ApprovalsSummary
    policy: PolicySummary
    summary: Summary
    commitments: dict[str, str]
    residency: ResidencySection | None = None  # added by ``residency scan --into-report``
    period: Period | None = None
    signer: Signer | None = None
    verdicts: tuple[CommitmentVerdict, ...] = ()
    waivers: tuple[WaiverStatus, ...] = ()


class Statement(BaseModel):
    """An in-toto Statement v1 carrying our predicate."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    type_: str = Field(alias="_type")
    subject: tuple[Subject, ...]
    predicateType: str
    predicate: Predicate


def file_subject(name: str, path: Path) -> Subject:
    """Subject for a local file."""
    return Subject(name=name, digest={"sha256": sha256_file(path)})


def log_subject(origin: str | None, tree_size: int, root: str) -> Subject:
    """Subject for a sealed log: its Merkle root at a tree size."""
    return Subject(name=f"{LOG_SUBJECT_PREFIX}{origin or 'unnamed'}@{tree_size}", digest={"sha256": root})


def approvals_subject(approvals: ApprovalSet) -> Subject:
    """Subject for the approvals source: a sealed log's root at its size, or a JSON Lines file's digest."""
    if approvals.signature_verified:
        return Subject(
            name=f"approvals-log:{approvals.origin or 'unnamed'}@{approvals.tree_size}",
            digest={"sha256": approvals.digest},
        )
    return Subject(name=f"approvals/{approvals.source.name}", digest={"sha256": approvals.digest})


def policy_subjects(policy: PolicyHistory, root: Path) -> dict[str, Path]:
    """Policy files by subject name (``policy/<path relative to the policy dir>``)."""
    files: dict[str, Path] = {}
    for pack in policy.packs:
        for path in pack.files:
            files[f"policy/{path.resolve().relative_to(root.resolve()).as_posix()}"] = path
    return files


def build_statement(subjects: Sequence[Subject], predicate: Predicate) -> Statement:
    """Assemble the statement."""
    return Statement(type_=STATEMENT_TYPE, subject=tuple(subjects), predicateType=PREDICATE_TYPE, predicate=predicate)


def statement_bytes(statement: Statement) -> bytes:
    """Canonical bytes of a statement (what gets signed)."""
    return canonical_bytes(statement.model_dump(mode="json", by_alias=True, exclude_none=True))


def sign_statement(statement: Statement, key: SigningKey) -> Envelope:
    """DSSE envelope over the canonical statement."""
    return sign_envelope(statement_bytes(statement), PAYLOAD_TYPE, key)


@dataclass(frozen=True)
class SubjectCheck:
    """Outcome of comparing one subject with local material."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class ReportVerification:
    """Result of ``report verify``: the signer and every subject check."""

    key_id: str
    statement: Statement
    checks: tuple[SubjectCheck, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


MAX_ENVELOPE_BYTES = 64 * 1024 * 1024
"""A report envelope (``report.intoto.json``) is at most this large: it holds digests and summaries."""


def read_signed_statement(path: Path, keyring: Keyring, *, raw: bytes | None = None) -> tuple[Statement, str]:
    """Verify the envelope's signature, then parse the statement; the signing key's id.

    ``raw``: the envelope's bytes already read from ``path`` (so that every check of
    one verification is made on the same bytes).

    Raises :class:`IntegrityError` for anything that does not verify; content is not
    parsed before the signature is checked. The key's validity window and purpose are
    not judged here (:func:`check_signed_time` does, once the signed time is checked).
    """
    if raw is None:
        raw = read_bytes(open_input(path), max_bytes=MAX_ENVELOPE_BYTES)  # bounded: a report may be hostile
    try:
        envelope = parse_envelope(raw, path=path)
    except InputError as exc:
        raise IntegrityError(exc.reason, path=path) from None
    verified = verify_envelope(envelope, keyring, expected_type=PAYLOAD_TYPE)
    try:
        statement = Statement.model_validate(orjson.loads(verified.payload))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        reason = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
        raise IntegrityError(f"signed payload is not a report statement: {reason}", path=path) from None
    if statement.type_ != STATEMENT_TYPE or statement.predicateType != PREDICATE_TYPE:
        raise IntegrityError("signed payload has an unexpected statement or predicate type", path=path)
    return statement, verified.key_id


def check_signed_time(
    statement: Statement,
    key_id: str,
    keyring: Keyring,
    path: Path,
    *,
    now: datetime | None = None,
    earliest: datetime | None = None,
    also_at: datetime | None = None,
) -> None:
    """Bound the signer-chosen ``generated_at``, then judge the signing key at it (and at ``also_at``).

    ``generated_at`` may not be later than ``now`` (default: the clock) plus
    :data:`CLOCK_SKEW`, nor earlier than ``earliest`` (the newest checkpoint time
    of the log the report names, when that log is at hand). Only then is the key's
    validity window and ``report`` purpose judged at ``generated_at``: an expired
    key cannot post-date past the clock, a not-yet-valid key cannot post-date at
    all, and with the log an expired key cannot backdate before the log's newest
    checkpoint. Raises :class:`SignatureError`.
    """
    generated_at = statement.predicate.generated_at
    latest = (now or datetime.now(UTC)) + CLOCK_SKEW
    if generated_at > latest:
        raise SignatureError(
            f"report generated_at {format_time(generated_at)} is in the future "
            f"(later than {format_time(latest)}, now plus {_minutes(CLOCK_SKEW)} of clock skew)",
            path=path,
        )
    if earliest is not None and generated_at < earliest:
        raise SignatureError(
            f"report generated_at {format_time(generated_at)} is earlier than the newest checkpoint "
            f"of its log ({format_time(earliest)}): a report cannot predate the log it judges",
            path=path,
        )
    for when in (generated_at, *(() if also_at is None else (also_at,))):
        status = keyring.status(key_id, at=when, purpose=KeyPurpose.report)
        if status is not KeyStatus.ok:
            raise SignatureError(
                f"report signed by key {key_id} which is {status.value} at {format_time(when)}", path=path
            )


def _minutes(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 60)} min"


def load_signed_statement(path: Path, keyring: Keyring, *, now: datetime | None = None) -> tuple[Statement, str]:
    """Verify the envelope's signature, parse the statement, bound its time and judge its key.

    :func:`read_signed_statement` then :func:`check_signed_time` (without a log, so
    only the upper bound applies). Raises :class:`IntegrityError` (a
    :class:`SignatureError` for the time and the key) for anything that does not verify.
    """
    statement, key_id = read_signed_statement(path, keyring)
    check_signed_time(statement, key_id, keyring, path, now=now)
    return statement, key_id


def subject_digests(statement: Statement) -> dict[str, str]:
    """Subjects by name."""
    return {s.name: s.digest.get("sha256", "") for s in statement.subject}


def check_file_subjects(statement: Statement, files: dict[str, Path]) -> list[SubjectCheck]:
    """Compare named subjects with local files (missing subject = failure)."""
    digests = subject_digests(statement)
    checks = []
    for name, path in files.items():
        expected = digests.get(name)
        if expected is None:
            checks.append(SubjectCheck(name, False, "not a subject of the report"))
            continue
        actual = sha256_file(open_input(path))
        ok = actual == expected
        checks.append(SubjectCheck(name, ok, "digest matches" if ok else f"digest {actual} != {expected}"))
    return checks
