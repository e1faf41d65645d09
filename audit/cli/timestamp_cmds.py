"""``residency-audit report timestamp`` and ``report check-timestamp``: RFC 3161 tokens for a report directory.

The commands are registered into the ``report`` group by :mod:`audit.cli.app`.
``timestamp`` asks a TSA for a token over ``OUTDIR/report.intoto.json`` and writes
``OUTDIR/report.tsr`` (exit 2 on TSA or HTTP errors, 3 if ``--tsa-cert`` is given and
the token does not verify); ``check-timestamp`` verifies a stored token offline and
prints its ``genTime`` (exit 0 VERIFIED, 3 FAILED). The work is in
:mod:`audit.report.timestamp`; this module only parses options and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from audit.cli.console import out
from audit.errors import EXIT_CLEAN, EXIT_INTEGRITY, IntegrityError

TSA_TIMEOUT_S = 30.0
"""``--timeout``'s default: :data:`audit.report.timestamp.DEFAULT_TIMEOUT_S`, copied so that building
the CLI does not import cryptography and rfc3161-client (a test holds the two equal)."""

timestamp_commands = typer.Typer()


@timestamp_commands.command("timestamp")
def report_timestamp(
    out_dir: Annotated[Path, typer.Argument(help="Report directory (holds report.intoto.json).")],
    tsa_url: Annotated[str, typer.Option("--tsa-url", help="The time-stamp authority's URL (http or https).")],
    tsa_cert: Annotated[
        Path | None,
        typer.Option("--tsa-cert", help="PEM: the TSA certificate and its chain; verify the token before storing it."),
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait for the TSA (connect and each read).")
    ] = TSA_TIMEOUT_S,
) -> int:
    """Get an RFC 3161 time-stamp token over the signed report and store it as OUTDIR/report.tsr."""
    from audit.report.timestamp import load_tsa_trust, timestamp_report

    trust = load_tsa_trust(tsa_cert) if tsa_cert is not None else None
    stored = timestamp_report(out_dir, tsa_url, trust=trust, timeout=timeout)
    how = "verified against " + str(tsa_cert) if stored.verified else "NOT verified (no --tsa-cert)"
    out.print(f"time-stamp token written to {stored.path}: genTime {stored.gen_time.isoformat()}, {how}", markup=False)
    return EXIT_CLEAN


@timestamp_commands.command("check-timestamp")
def report_check_timestamp(
    out_dir: Annotated[Path, typer.Argument(help="Report directory (report.intoto.json and report.tsr).")],
    tsa_cert: Annotated[Path, typer.Option("--tsa-cert", help="PEM: the trusted TSA certificate and its chain.")],
) -> int:
    """Verify OUTDIR/report.tsr over OUTDIR/report.intoto.json offline; print its genTime."""
    from audit.report.publish import REPORT_FILE
    from audit.report.timestamp import load_tsa_trust, verify_report_timestamp

    trust = load_tsa_trust(tsa_cert)
    try:
        gen_time = verify_report_timestamp(out_dir / REPORT_FILE, trust)
    except IntegrityError as exc:
        out.print(f"FAILED: {exc.diagnostic()}", markup=False)
        return EXIT_INTEGRITY
    out.print(f"genTime {gen_time.isoformat()}", markup=False)
    out.print(f"VERIFIED: {out_dir / REPORT_FILE} existed no later than {gen_time.isoformat()}", markup=False)
    return EXIT_CLEAN
