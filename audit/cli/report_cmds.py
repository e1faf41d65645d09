"""``residency-audit report ...``: verify signed reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from audit.cli.console import show
from audit.errors import EXIT_CLEAN, EXIT_INTEGRITY
from audit.report.formats.choice import TextFormat
from audit.report.formats.signed_report import ReportCheckDocument
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
    show(TextFormat().render(ReportCheckDocument(result)))
    return EXIT_CLEAN if result.ok else EXIT_INTEGRITY

