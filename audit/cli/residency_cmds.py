"""``residency-audit residency ...``: scan where the policy pack's home user data is stored.

Exit codes: 0 every store is classified and none breaks a commitment; 1 findings
(violations, or unclassified stores whose residency is unknown); 2 usage or input
error; 3 a provider could not be scanned (authentication, permission, network) or
the report to fold findings into does not verify.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from audit.cli.console import out, signing_key
from audit.cli.state import logger
from audit.errors import EXIT_CLEAN, EXIT_VIOLATIONS, InputError
from audit.report.formats.choice import OutputFormat
from audit.resources import policy_dir

if TYPE_CHECKING:  # the scanner, its providers and their SDKs load when a scan runs, not at start-up
    from audit.residency.models import ScanResult
    from audit.residency.providers import StoreProvider

OCI_CONFIG = "~/.oci/config"
"""``--oci-config``'s default: :data:`audit.residency.providers.oci.DEFAULT_CONFIG`, copied so that
building the CLI does not import the residency models (a test holds the two equal)."""

residency_app = typer.Typer(
    help="Scan cloud inventories for where the policy pack's home user data lives.", no_args_is_help=True
)


class ProviderName(StrEnum):
    """Where stores are listed from."""

    aws = "aws"
    oci = "oci"
    inventory = "inventory"


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option}: {value!r} is not a date (YYYY-MM-DD)") from None


def parse_deadlines(values: list[str] | None) -> dict[str, date]:
    """``--deadline CLASS=YYYY-MM-DD`` values by store class (one-line input errors; a class given twice is one)."""
    deadlines: dict[str, date] = {}
    for value in values or ():
        name, sep, when = value.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InputError(f"--deadline: {value!r} is not CLASS=YYYY-MM-DD")
        try:
            parsed = date.fromisoformat(when.strip())
        except ValueError:
            raise InputError(f"--deadline {name}: {when.strip()!r} is not a date (YYYY-MM-DD)") from None
        if deadlines.get(name, parsed) != parsed:
            raise InputError(f"--deadline: {name!r} is given twice with different dates")
        deadlines[name] = parsed
    return deadlines


def _regions(value: str | None) -> tuple[str, ...]:
    return tuple(r.strip() for r in (value or "").split(",") if r.strip())


def build_providers(
    names: list[ProviderName],
    *,
    regions: tuple[str, ...],
    inventories: list[Path],
    oci_config: str,
    oci_profile: str,
    oci_endpoint: str | None,
    oci_attempts: int = 3,
) -> list[StoreProvider]:
    """The providers asked for, in order (an inventory provider needs ``--inventory``)."""
    from audit.residency.providers.aws import AwsProvider
    from audit.residency.providers.inventory import InventoryProvider
    from audit.residency.providers.oci import OciProvider

    providers: list[StoreProvider] = []
    for name in dict.fromkeys(names):
        if name is ProviderName.aws:
            providers.append(AwsProvider(regions=regions))
        elif name is ProviderName.oci:
            providers.append(
                OciProvider(
                    regions=regions,
                    config_file=oci_config,
                    profile=oci_profile,
                    endpoint=oci_endpoint,
                    attempts=oci_attempts,
                )
            )
        else:
            if not inventories:
                raise InputError("--provider inventory needs --inventory FILE")
            providers.append(InventoryProvider(paths=tuple(inventories)))
    return providers


def print_findings(result: ScanResult) -> None:
    """The findings as a rich table and a one-line summary."""
    from rich.table import Table

    from audit.residency.scanner import summarize

    summary = summarize(result)
    if result.findings:
        table = Table(title=f"Residency findings as of {result.settings.as_of.isoformat()}")
        table.add_column("C", no_wrap=True)
        table.add_column("Rule", overflow="fold")
        table.add_column("Where", overflow="fold")
        table.add_column("Resource and finding", overflow="fold", ratio=1)
        for f in result.findings:
            rule = f.rule_id if f.status == "violation" else f"{f.rule_id} (unknown)"
            table.add_row(
                f.commitment,
                rule,
                f"{f.provider} {f.region or '?'}",
                f"{f.resource}\n{f.message}",
                style="red" if f.status == "violation" else "yellow",
            )
        out.print(table)
    scopes = "; ".join(f"{s.provider} {s.account} ({len(s.regions)} region(s))" for s in result.scopes)
    out.print(
        f"{summary.stores} store(s) scanned [{scopes}], {summary.stores_with_home_data} with user data of "
        f"{result.settings.home}: "
        f"{summary.violations} violation(s), {summary.unknown} unknown",
        markup=False,
    )


@residency_app.command("scan")
def residency_scan(
    provider: Annotated[
        list[ProviderName], typer.Option("--provider", "-p", help="aws, oci or inventory (repeatable).")
    ],
    regions: Annotated[str | None, typer.Option(help="Comma-separated regions (default: every enabled one).")] = None,
    inventory: Annotated[
        list[Path] | None, typer.Option("--inventory", help="Inventory file (YAML/JSON), repeatable.")
    ] = None,
    deadline: Annotated[
        list[str] | None,
        typer.Option(
            "--deadline",
            metavar="CLASS=YYYY-MM-DD",
            help="Deadline of a transitional store class (repeatable; default: the policy pack's).",
        ),
    ] = None,
    as_of: Annotated[str | None, typer.Option(help="Judge as of this date YYYY-MM-DD (default: today, UTC).")] = None,
    policy: Annotated[
        Path | None, typer.Option(help="Policy pack directory: home, stores, deadlines (default: the shipped pack).")
    ] = None,
    region_tag: Annotated[str, typer.Option(help="Tag naming the data subjects' countries.")] = "data-subject-region",
    category_tag: Annotated[str, typer.Option(help="Tag naming the data categories.")] = "data-category",
    oci_config: Annotated[str, typer.Option(help="OCI SDK configuration file.")] = OCI_CONFIG,
    oci_profile: Annotated[str, typer.Option(help="Profile in the OCI configuration file.")] = "DEFAULT",
    oci_endpoint: Annotated[
        str | None, typer.Option(help="Override every OCI endpoint ('{region}' is substituted), e.g. a proxy.")
    ] = None,
    oci_attempts: Annotated[int, typer.Option(min=1, help="Attempts per OCI call (retries throttling, 5xx).")] = 3,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.text,
    into_report: Annotated[
        Path | None, typer.Option("--into-report", help="Fold the findings into the signed report in this directory.")
    ] = None,
    keyring_path: Annotated[
        Path | None, typer.Option("--keyring", help="Trusted keys (to verify the report before re-signing it).")
    ] = None,
    report_key: Annotated[Path | None, typer.Option("--report-key", help="Key to re-sign the report with.")] = None,
) -> int:
    """List every data store, where its copies go, and which commitment it breaks."""
    from audit.policy import load_policy
    from audit.residency.render import scan_document
    from audit.residency.report import add_residency_to_report
    from audit.residency.scanner import scan, settings_from_policy
    from audit.signing.keys import load_keyring

    if into_report is not None and (keyring_path is None or report_key is None):
        raise InputError("--into-report needs --keyring and --report-key", path=into_report)
    when = _date(as_of, "--as-of") or datetime.now(UTC).date()
    history = load_policy(policy_dir(policy))
    settings = settings_from_policy(
        history,
        as_of=when,
        deadlines=parse_deadlines(deadline),
        region_tag=region_tag,
        category_tag=category_tag,
    )
    providers = build_providers(
        provider,
        regions=_regions(regions),
        inventories=list(inventory or ()),
        oci_config=oci_config,
        oci_profile=oci_profile,
        oci_endpoint=oci_endpoint,
        oci_attempts=oci_attempts,
    )
    key = signing_key(report_key) if report_key is not None else None
    result = scan(providers, settings)
    if into_report is not None and keyring_path is not None and key is not None:
        from audit.pipeline import store_rule_ids

        keyring = load_keyring(keyring_path)
        add_residency_to_report(into_report, keyring, key, result, store_rules=store_rule_ids(history))
        logger().info("residency.into_report", report=str(into_report), findings=len(result.findings))
    if output_format is OutputFormat.json:
        out.print(orjson.dumps(scan_document(result), option=orjson.OPT_INDENT_2).decode(), markup=False)
    else:
        print_findings(result)
        if into_report is not None:
            out.print(f"residency findings folded into the signed report in {into_report}", markup=False)
    return EXIT_VIOLATIONS if result.findings else EXIT_CLEAN
