"""Verifying a signed report: its signature, its own files, and the material it names.

:func:`verify_report` checks the DSSE signature, the signed time and the signing key
first (a report that fails raises :class:`~audit.errors.IntegrityError`), then compares subjects
with local files: the report's own files beside it always, and the access log,
policy directory and approvals source when given. Each comparison is one
:class:`~audit.report.statement.SubjectCheck`; nothing is printed or written.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from audit.logs.approvals import load_approvals
from audit.logs.record_types import ACCESS_RECORD_TYPE
from audit.logs.verify import VerificationReport, describe_problems, verify_log
from audit.policy import load_policy
from audit.reading import read_bytes
from audit.records import open_input
from audit.report.publish import FINDINGS_FILE, MARKDOWN_FILE, OWN_FILES, TIMESTAMP_FILE, WAIVERS_FILE
from audit.report.statement import (
    MAX_ENVELOPE_BYTES,
    RESIDENCY_SUBJECT,
    ReportVerification,
    Statement,
    SubjectCheck,
    approvals_subject,
    check_file_subjects,
    check_signed_time,
    log_subject,
    policy_subjects,
    read_signed_statement,
    subject_digests,
)
from audit.report.timestamp import TsaTrust, verify_report_timestamp
from audit.signing.keys import Keyring


def verify_report(
    report_path: Path,
    keyring: Keyring,
    *,
    log: Path | None = None,
    policy: Path | None = None,
    approvals: Path | None = None,
    now: datetime | None = None,
    require_complete: bool = False,
    require_signed_approvals: bool = False,
    tsa: TsaTrust | None = None,
    log_report: VerificationReport | None = None,
) -> ReportVerification:
    """Check the report's signature, its signed time and key, then each subject local material is given for.

    ``generated_at`` may not lie beyond ``now`` (default: the clock) plus
    :data:`~audit.report.statement.CLOCK_SKEW`; with ``log`` (when it verifies and
    its root is the reported one) not before the log's newest checkpoint either.
    The key is judged at that checked time. With ``tsa`` (the trusted chain of a
    time-stamp authority), the RFC 3161 token ``report.tsr`` beside the report must
    verify (:func:`~audit.report.timestamp.verify_report_timestamp`); its ``genTime``
    replaces the clock as the upper bound, and the key must also have been valid
    then: a signature that existed while the key was valid, whatever time it claims.
    ``log_report``: the caller's own verification of ``log`` (a caller that reads the
    log anyway passes it, so the log is verified once, not twice).
    ``require_complete`` and ``require_signed_approvals`` turn the report's claims
    (completeness proven, approvals signature-verified) into checks named
    ``completeness`` and ``approvals-trust``. The report's own files beside it
    (``findings.jsonl``, ``report.md`` and every other file of :data:`~audit.report.publish.OWN_FILES` the
    report names) are always checked: a missing or changed one fails.
    """
    raw = read_bytes(open_input(report_path), max_bytes=MAX_ENVELOPE_BYTES)  # one read for every check below
    statement, key_id = read_signed_statement(report_path, keyring, raw=raw)
    digests = subject_digests(statement)
    log_check: SubjectCheck | None = None
    earliest: datetime | None = None
    if log is not None:
        if log_report is None:
            log_report = verify_log(log, keyring, record_type=ACCESS_RECORD_TYPE)
        log_check = _check_log(digests, log_report)
        earliest = log_report.last_checkpoint_time if log_check.ok else None
    stamped = verify_report_timestamp(report_path, tsa, envelope=raw) if tsa is not None else None
    check_signed_time(statement, key_id, keyring, report_path, now=stamped or now, earliest=earliest, also_at=stamped)
    checks: list[SubjectCheck] = []
    if stamped is not None:
        checks.append(SubjectCheck(TIMESTAMP_FILE, True, f"report existed by {stamped.isoformat()} (RFC 3161 genTime)"))
    checks += _own_file_checks(statement, digests, report_path)
    if log_check is not None:
        checks.append(log_check)
    if policy is not None:
        checks += _policy_checks(statement, digests, policy)
    if approvals is not None:
        checks.append(_check_approvals(statement, approvals, keyring))
    checks += _claim_checks(statement, require_complete, require_signed_approvals)
    return ReportVerification(key_id, statement, tuple(checks))


def _own_file_checks(statement: Statement, digests: dict[str, str], report_path: Path) -> list[SubjectCheck]:
    """The report's own files beside it: findings and Markdown always, the others when the report names them."""
    residency = (RESIDENCY_SUBJECT,) if statement.predicate.residency is not None else ()
    own = [n for n in (*OWN_FILES, WAIVERS_FILE) if n in digests or n in (FINDINGS_FILE, MARKDOWN_FILE)]
    return [check_report_file(statement, name, report_path.parent / name) for name in (*own, *residency)]


def _policy_checks(statement: Statement, digests: dict[str, str], policy: Path) -> list[SubjectCheck]:
    """The policy files of the report against a local pack: changed, missing locally, or extra."""
    local = policy_subjects(load_policy(policy), policy)
    checks = check_file_subjects(statement, local)
    extra = sorted(n for n in digests if n.startswith("policy/") and n not in local)
    return [*checks, *(SubjectCheck(n, False, "policy file in the report is missing locally") for n in extra)]


def _claim_checks(statement: Statement, complete: bool, signed_approvals: bool) -> list[SubjectCheck]:
    pred = statement.predicate
    checks = []
    if complete:
        proven = pred.log.completeness == "proven"
        checks.append(SubjectCheck("completeness", proven, f"{pred.log.completeness}: {pred.log.completeness_detail}"))
    if signed_approvals:
        ok = pred.approvals.signature_verified
        detail = "approvals were a signature-verified sealed log" if ok else "approvals were a plain, unsigned file"
        checks.append(SubjectCheck("approvals-trust", ok, detail))
    return checks


def check_report_file(statement: Statement, name: str, path: Path) -> SubjectCheck:
    """One of the report's own files against its subject: absent subject, missing or changed file fails."""
    if name not in subject_digests(statement):
        return SubjectCheck(name, False, "not a subject of the report")
    if not path.is_file():
        return SubjectCheck(name, False, f"missing: {path}")
    return check_file_subjects(statement, {name: path})[0]


def _check_log(digests: dict[str, str], report: VerificationReport) -> SubjectCheck:
    name = next((n for n in digests if n.startswith("log:")), "log")
    if not report.ok or report.root is None:
        return SubjectCheck(name, False, f"log does not verify: {describe_problems(report.problems)}")
    expected = log_subject(report.origin, report.tree_size, report.root)
    if digests.get(expected.name) != report.root:
        return SubjectCheck(name, False, f"log root {report.root} at size {report.tree_size} is not the reported one")
    return SubjectCheck(name, True, "log verifies and its root matches")


def _check_approvals(statement: Statement, path: Path, keyring: Keyring) -> SubjectCheck:
    local = approvals_subject(load_approvals(path, keyring))
    reported = next((s for s in statement.subject if s.name.startswith("approvals")), None)
    if reported is None:
        return SubjectCheck(local.name, False, "report has no approvals subject")
    ok = reported.name == local.name and reported.digest == local.digest
    detail = "digest matches" if ok else f"{local.name} {local.digest['sha256']} != {reported.name}"
    return SubjectCheck(local.name, ok, detail)
