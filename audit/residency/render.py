"""Residency results as a JSON document and as a Markdown section.

The JSON document is what ``residency scan --format json`` prints; the Markdown
section is appended to ``report.md`` when findings are folded into a signed
report. Table output for terminals is the CLI's job. Does not judge anything.
"""

from __future__ import annotations

from typing import Any

from audit.report.residency import ResidencySection
from audit.residency.models import ScanResult
from audit.residency.scanner import residency_section


def scan_document(result: ScanResult) -> dict[str, Any]:
    """A JSON-ready document: settings, scopes, summary, findings and stores."""
    section = residency_section(result)
    return {
        **section.model_dump(mode="json"),
        "generated_at": result.generated_at.isoformat(),
        "stores": [s.model_dump(mode="json", exclude_none=True) for s in result.stores],
    }


def _cell(text: str | None) -> str:
    return (text or "-").replace("|", "\\|").replace("\n", " ")


def residency_markdown(section: ResidencySection) -> str:
    """A ``## Residency`` Markdown section for a report."""
    s = section.summary
    deadlines = ", ".join(f"{name} {when.isoformat()}" for name, when in section.deadlines.items()) or "none"
    lines = [
        "",
        "## Residency",
        "",
        f"Scanned as of {section.as_of.isoformat()} (deadlines: {deadlines}): "
        f"{s.stores} store(s), {s.stores_with_home_data} holding user data of {section.home}, "
        f"{s.unclassified} unclassified; "
        f"{s.violations} violation(s), {s.unknown} unknown. Inventory SHA-256 `{section.inventory_sha256}`.",
        "",
        "| scope | account | regions |",
        "|---|---|---|",
        *(f"| {_cell(sc.provider)} | {_cell(sc.account)} | {_cell(', '.join(sc.regions))} |" for sc in section.scopes),
        "",
    ]
    if not section.findings:
        return "\n".join([*lines, "No residency findings.", ""])
    lines += ["| commitment | rule | status | provider | region | resource | what |", "|---|---|---|---|---|---|---|"]
    lines += [
        f"| {f.commitment} | {f.rule_id} | {f.status} | {f.provider} | {_cell(f.region)} | `{_cell(f.resource)}` "
        f"| {_cell(f.message)} |"
        for f in section.findings
    ]
    return "\n".join([*lines, ""])
