"""Render a verified report statement as a Markdown summary for humans.

Pure formatting of data already in the statement; no verification happens here.
"""

from __future__ import annotations

from collections.abc import Iterable

from audit.models import Finding
from audit.report.statement import Predicate

MAX_LISTED_FINDINGS = 1_000
"""Findings written out in ``report.md``; the rest are counted (all are in ``findings.jsonl``)."""

_MARKDOWN_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_{}[]<>()#+!|~"})


def _cell(text: str) -> str:
    """Untrusted text made inert: control characters dropped, Markdown/HTML escaped."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text.translate(_MARKDOWN_SPECIAL)


def render_markdown(pred: Predicate, findings: Iterable[Finding], limit: int = MAX_LISTED_FINDINGS) -> str:
    """Counts per commitment, then the first ``limit`` findings with event, actor, time and rule.

    Every string that came from a log, an approval or a path goes through
    :func:`_cell`, so log content cannot forge headings, links or HTML.
    """
    e = _cell
    out = [
        "# Residency audit report",
        "",
        f"Generated {pred.generated_at.isoformat()} by {e(pred.tool['name'])} {e(pred.tool['version'])}.",
        "",
        f"- Log: {e(pred.log.origin or 'unnamed')}, {pred.log.tree_size} events in {pred.log.segments} segments, "
        f"root {pred.log.root}, signatures verified: **yes**; completeness: "
        f"**{e(pred.log.completeness.upper())}** ({e(pred.log.completeness_detail)})",
        f"- Approvals: {pred.approvals.count} from {e(pred.approvals.source)} ({e(pred.approvals.kind)}); "
        f"signature-verified: **{'yes' if pred.approvals.signature_verified else 'no'}**",
        f"- Policy: {e(pred.policy.directory)} versions {e(', '.join(pred.policy.versions))}"
        f" (git {e(pred.policy.git_revision or 'unknown')})",
        f"- Events replayed: {pred.summary.events}; findings: **{pred.summary.findings}**",
        "",
        "## Findings per commitment",
        "",
        "| Commitment | Findings | Commitment text |",
        "|---|---:|---|",
    ]
    for cid, text in pred.commitments.items():
        out.append(f"| {e(cid)} | {pred.summary.by_commitment.get(cid, 0)} | {e(text)} |")
    out += ["", "## Findings per rule", "", "| Rule | Findings |", "|---|---:|"]
    for rule, count in sorted(pred.summary.by_rule.items()):
        out.append(f"| {e(rule)} | {count} |")
    out += ["", "## Findings", ""]
    if not pred.summary.findings:
        out.append("No violations found.")
    for listed, f in enumerate(findings):
        if listed == limit:
            out.append(f"... and {pred.summary.findings - limit} more finding(s), all listed in findings.jsonl.")
            break
        where = f" at {e(f.position.segment)}:{f.position.line}" if f.position else ""
        row = f" policy {e(f.policy_row.file)}:{f.policy_row.line}" if f.policy_row else " the default deny"
        out += [
            f"### {f.severity.upper()} {e(f.rule_id)} ({f.commitment}): {e(f.title)}",
            "",
            f"- Event {e(', '.join(f.event_ids))}{where}; actor {e(f.actor_id)}; time {f.time.isoformat()}",
            f"- {e(f.message)}",
            f"- Commitment {f.commitment}: {e(pred.commitments.get(f.commitment, ''))}",
            f"- Decided by{row}; remediation: {e(f.remediation)}",
            "",
        ]
    return "\n".join(out) + "\n"
