"""``residency-audit report ...``: verify signed reports and compare two of them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer

from audit.cli.console import show
from audit.errors import EXIT_CLEAN, EXIT_INTEGRITY, EXIT_VIOLATIONS, IntegrityError
from audit.report.formats.choice import OutputFormat

report_app = typer.Typer(help="Verify signed reports; compare two.", no_args_is_help=True)


@report_app.command("verify")
def report_verify(
    report: Annotated[Path, typer.Argument(help="report.intoto.json (DSSE envelope).")],
    keyring_path: Annotated[Path, typer.Option("--keyring", help="Trusted public keys.")],
    log_dir: Annotated[Path | None, typer.Option("--log", help="Check the log subject against this log.")] = None,
    policy: Annotated[Path | None, typer.Option(help="Check policy subjects against this directory.")] = None,
    approvals: Annotated[Path | None, typer.Option(help="Check the approvals subject against this source.")] = None,
    require_complete: Annotated[
        bool, typer.Option("--require-complete", help="Fail unless the report claims proven log completeness.")
    ] = False,
    require_signed_approvals: Annotated[
        bool,
        typer.Option("--require-signed-approvals", help="Fail unless the report's approvals were signature-verified."),
    ] = False,
    tsa_cert: Annotated[
        Path | None,
        typer.Option("--tsa-cert", help="Check report.tsr (RFC 3161) with this TSA chain; judge the key at its time."),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--format", help="text or json.")] = OutputFormat.text,
) -> int:
    """Verify a signed report: one verdict line (VERIFIED or FAILED), signer, claims, then each check."""
    from audit.report.formats.signed_report import ReportCheckDocument
    from audit.report.timestamp import load_tsa_trust
    from audit.report.verify import verify_report
    from audit.signing.keys import load_keyring

    keyring = load_keyring(keyring_path)
    tsa = load_tsa_trust(tsa_cert) if tsa_cert is not None else None
    try:
        result = verify_report(
            report,
            keyring,
            log=log_dir,
            policy=policy,
            approvals=approvals,
            require_complete=require_complete,
            require_signed_approvals=require_signed_approvals,
            tsa=tsa,
        )
    except IntegrityError as exc:  # the verdict line first, then the usual one-line error (exit 3)
        failed = {"verdict": "FAILED", "error": str(exc)}
        show([f"FAILED: {exc}"] if output is OutputFormat.text else orjson.dumps(failed) + b"\n")
        raise
    entry = keyring.get(result.key_id)
    show(output.to_format().render(ReportCheckDocument(result, entry.label if entry else None)))
    return EXIT_CLEAN if result.ok else EXIT_INTEGRITY


@report_app.command("diff")
def report_diff(
    old: Annotated[Path, typer.Argument(help="The earlier report.intoto.json.")],
    new: Annotated[Path, typer.Argument(help="The later report.intoto.json.")],
    keyring_path: Annotated[Path, typer.Option("--keyring", help="Trusted public keys.")],
    output: Annotated[OutputFormat, typer.Option("--format", help="text or json.")] = OutputFormat.text,
) -> int:
    """Cases new, resolved and continuing from OLD to NEW (both verified first); exit 1 on new cases."""
    from audit.report.diff import diff_reports
    from audit.signing.keys import load_keyring

    result = diff_reports(old, new, load_keyring(keyring_path))
    show(output.to_format().render(result))
    return EXIT_VIOLATIONS if result.new_cases else EXIT_CLEAN
