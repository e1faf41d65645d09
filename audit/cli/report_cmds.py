"""``residency-audit report ...``: verify signed reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from audit.cli.console import out
from audit.errors import EXIT_CLEAN, EXIT_INTEGRITY
from audit.report.statement import ApprovalsSummary
from audit.report.verify import verify_report
from audit.signing.keys import load_keyring

report_app = typer.Typer(help="Verify signed reports.", no_args_is_help=True)


@report_app.command("verify")
def report_verify(
    report: Annotated[Path, typer.Argument(help="report.intoto.json (DSSE envelope).")],
    keyring_path: Annotated[Path, typer.Option("--keyring", help="Trusted public keys.")],
    log_dir: Annotated[Path | None, typer.Option("--log", help="Check the log subject against this log.")] = None,
    policy: Annotated[Path | None, typer.Option(help="Check policy subjects against this directory.")] = None,
    approvals: Annotated[Path | None, typer.Option(help="Check the approvals subject against this source.")] = None,
) -> int:
    """Verify a signed report's signature and its subjects against local files."""
    keyring = load_keyring(keyring_path)
    result = verify_report(report, keyring, log=log_dir, policy=policy, approvals=approvals)
    out.print(f"signature OK (key {result.key_id})", markup=False)
    out.print(approvals_line(result.statement.predicate.approvals), markup=False)
    for check in result.checks:
        out.print(f"{'OK  ' if check.ok else 'FAIL'} {check.name}: {check.detail}", markup=False)
    checked = {check.name for check in result.checks}
    for subject in result.statement.subject:
        if subject.name not in checked:
            out.print(f"NOT CHECKED {subject.name}: pass --log, --policy or --approvals to compare it", markup=False)
    return EXIT_CLEAN if result.ok else EXIT_INTEGRITY


def approvals_line(approvals: ApprovalsSummary) -> str:
    """Whether the report's approvals were signature-verified when it was made (from the signed predicate)."""
    if approvals.signature_verified:
        return f"approvals: signature-verified ({approvals.kind}, {approvals.count} approval(s))"
    return f"approvals: NOT signature-verified ({approvals.kind} file, {approvals.count} approval(s))"
