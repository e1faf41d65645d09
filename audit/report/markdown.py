"""Render a verified report statement as a Markdown summary for humans.

Pure formatting of data already in the statement; no verification happens here.
"""

from __future__ import annotations

from audit.report.statement import Statement


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(statement: Statement) -> str:
    """Counts per commitment, then every finding with event, actor, time and rule."""
    pred = statement.predicate
    out = [
        "# Residency audit report",
        "",
        f"Generated {pred.generated_at.isoformat()} by {pred.tool['name']} {pred.tool['version']}.",
        "",
        f"- Log: `{pred.log.origin}`, {pred.log.tree_size} events in {pred.log.segments} segments, "
        f"root `{pred.log.root}`, signatures verified: **{'yes' if pred.log.verified else 'NO'}**",
        f"- Approvals: {pred.approvals.count} from `{pred.approvals.source}` ({pred.approvals.kind}); "
        f"signature-verified: **{'yes' if pred.approvals.signature_verified else 'no'}**",
        f"- Policy: `{pred.policy.directory}` versions {', '.join(pred.policy.versions)}"
        f" (git {pred.policy.git_revision or 'unknown'})",
        f"- Events replayed: {pred.summary.events}; findings: **{pred.summary.findings}**",
        "",
        "## Findings per commitment",
        "",
        "| Commitment | Findings | Commitment text |",
        "|---|---:|---|",
    ]
    for cid, text in pred.commitments.items():
        out.append(f"| {cid} | {pred.summary.by_commitment.get(cid, 0)} | {_cell(text)} |")
    out += ["", "## Findings per rule", "", "| Rule | Findings |", "|---|---:|"]
    for rule, count in sorted(pred.summary.by_rule.items()):
        out.append(f"| `{rule}` | {count} |")
    out += ["", "## Findings", ""]
    if not pred.findings:
        out.append("No violations found.")
    for f in pred.findings:
        where = f" at {f.position.segment}:{f.position.line}" if f.position else ""
        row = f" (policy {f.policy_row.file}:{f.policy_row.line})" if f.policy_row else ""
        out += [
            f"### {f.severity.upper()} `{f.rule_id}` — {f.commitment}: {_cell(f.title)}",
            "",
            f"- Event `{', '.join(f.event_ids)}`{where}; actor `{f.actor_id}`; time {f.time.isoformat()}",
            f"- {_cell(f.message)}",
            f"- Commitment {f.commitment}: {_cell(pred.commitments.get(f.commitment, ''))}",
            f"- Decided by{row}; remediation: {_cell(f.remediation)}",
            "",
        ]
    return "\n".join(out) + "\n"
