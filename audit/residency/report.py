"""Folding a residency scan into an existing signed report, and re-signing it.

The report must verify first; its findings file is copied and checked against the
signed digest before anything is built on it. The scanned stores become
``residency-inventory.json`` (a subject), the predicate gains its ``residency``
section and ``report.md`` a Residency section, and the directory is republished
whole (:mod:`audit.report.publish`). Scanning is :mod:`audit.residency.scanner`.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from audit.errors import InputError, IntegrityError
from audit.report.bundle import write_derived
from audit.report.cases import CaseBook
from audit.report.findings import iter_findings
from audit.report.publish import FINDINGS_FILE, REPORT_FILE, WAIVERS_FILE, guard_write, report_staging, write_files
from audit.report.statement import (
    RESIDENCY_SUBJECT,
    Statement,
    Subject,
    build_statement,
    load_signed_statement,
    sign_statement,
)
from audit.report.verify import check_report_file
from audit.residency.models import ScanResult
from audit.residency.render import residency_markdown
from audit.residency.scanner import inventory_document, residency_section
from audit.signing.dsse import envelope_bytes
from audit.signing.keys import KeyPurpose, Keyring, SigningKey, require_signing_key_valid


def add_residency_to_report(
    outdir: Path,
    keyring: Keyring,
    report_key: SigningKey,
    result: ScanResult,
    *,
    store_rules: frozenset[str],
    now: datetime | None = None,
) -> Statement:
    """Fold a residency scan into the signed report in ``outdir`` and re-sign it.

    The existing report must verify against ``keyring`` first, and is re-signed no
    earlier than it was generated (so never before its log's newest checkpoint). The scanned stores
    are written to ``residency-inventory.json`` and pinned as a subject; the
    predicate gains (or replaces) its ``residency`` section; ``report.md`` gains a
    Residency section. The directory is republished all at once. The report's cases
    are rebuilt from its findings, those of ``store_rules`` grouped by store
    (:func:`audit.pipeline.store_rule_ids` of the policy the report was made with).
    """
    report_path = outdir / REPORT_FILE
    statement, _ = load_signed_statement(report_path, keyring, now=now)
    generated_at = now or datetime.now(UTC)
    previous = statement.predicate.generated_at
    if generated_at < previous:  # the report was signed no earlier than its log's newest checkpoint
        raise InputError(
            f"refusing to re-sign the report at {generated_at.isoformat()}, earlier than it was generated "
            f"({previous.isoformat()}); check the clock",
            path=report_path,
        )
    require_signing_key_valid(keyring, report_key, generated_at, KeyPurpose.report)
    inventory = inventory_document(result)
    section = residency_section(result)
    predicate = statement.predicate.model_copy(update={"residency": section, "generated_at": generated_at})
    with report_staging(outdir) as staging:
        original, findings = outdir / FINDINGS_FILE, staging / FINDINGS_FILE
        if original.is_file():  # copied first, then checked and read from the copy
            guard_write(partial(shutil.copyfile, original, findings), outdir, path=findings)
        check = check_report_file(statement, FINDINGS_FILE, findings)
        if not check.ok:
            raise IntegrityError(f"{FINDINGS_FILE} of the report does not verify: {check.detail}", path=original)
        _carry_waivers(statement, outdir, staging)
        with CaseBook(store_rules, scratch=staging) as cases:
            cases.build(iter_findings(findings))
            derived = write_derived(staging, predicate, cases, outdir, extra_markdown=residency_markdown(section))
        derived.append(Subject(name=RESIDENCY_SUBJECT, digest={"sha256": hashlib.sha256(inventory).hexdigest()}))
        replaced = {subject.name for subject in derived}
        subjects = [s for s in statement.subject if s.name not in replaced] + derived
        signed = build_statement(subjects, predicate)
        envelope = envelope_bytes(sign_statement(signed, report_key))
        write_files(staging, {RESIDENCY_SUBJECT: inventory, REPORT_FILE: envelope}, outdir)
    return signed


def _carry_waivers(statement: Statement, outdir: Path, staging: Path) -> None:
    """Copy the report's signed ``waivers.yaml`` into the new report (checked against its subject)."""
    if not any(subject.name == WAIVERS_FILE for subject in statement.subject):
        return
    copy = staging / WAIVERS_FILE
    if (outdir / WAIVERS_FILE).is_file():
        guard_write(partial(shutil.copyfile, outdir / WAIVERS_FILE, copy), outdir, path=copy)
    check = check_report_file(statement, WAIVERS_FILE, copy)
    if not check.ok:
        raise IntegrityError(f"{WAIVERS_FILE} of the report does not verify: {check.detail}", path=outdir)
