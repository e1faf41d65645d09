"""Signed reports: an in-toto Statement v1 in a DSSE envelope, and its verification.

The statement's subjects pin what the findings were computed from (the log's Merkle
root, each policy file, the approvals source) and the report's own files (the
findings, one per line in ``findings.jsonl``, and ``report.md``); the predicate
carries what was checked and the counts. Verification checks the signature
first, then the signing key's validity at the signed time, then the subjects against
local files. Rendering to other formats lives in sibling modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from audit.canonical import canonical_bytes
from audit.errors import InputError, IntegrityError
from audit.logs.approvals import ApprovalSet
from audit.policy import PolicyHistory
from audit.records import describe_validation_error, open_input, sha256_file
from audit.report.residency import ResidencySection
from audit.signing.dsse import Envelope, parse_envelope, sign_envelope, verify_envelope
from audit.signing.keys import KeyPurpose, Keyring, KeyStatus, SigningKey

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://residency-audit.dev/report/v2"
"""v2: findings live in ``findings.jsonl`` (a subject), no longer in the predicate."""
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
    by_commitment: dict[str, int]
    by_rule: dict[str, int]


class Predicate(_Strict):
    """The report predicate (``PREDICATE_TYPE``)."""

    tool: dict[str, str]
    generated_at: datetime
    log: LogSummary
    approvals: ApprovalsSummary
    policy: PolicySummary
    summary: Summary
    commitments: dict[str, str]
    residency: ResidencySection | None = None  # added by ``residency scan --into-report``


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
    return Statement(
        type_=STATEMENT_TYPE, subject=tuple(subjects), predicateType=PREDICATE_TYPE, predicate=predicate
    )


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


def load_signed_statement(path: Path, keyring: Keyring) -> tuple[Statement, str]:
    """Verify the envelope's signature and key validity, then parse the statement.

    Raises :class:`IntegrityError` for anything that does not verify; content is not
    parsed before the signature is checked.
    """
    raw = open_input(path).read_bytes()
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
    status = keyring.status(verified.key_id, at=statement.predicate.generated_at, purpose=KeyPurpose.report)
    if status is not KeyStatus.ok:
        raise IntegrityError(f"report signed by key {verified.key_id} which is {status.value}", path=path)
    return statement, verified.key_id


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
