"""Render a verified report statement as a Markdown summary for humans.

Pure formatting of data already in the statement (and its findings and cases); no
verification happens here. Untrusted text is escaped only where Markdown would read
it as markup (:func:`_cell`); identifiers go in code spans.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from audit.models import FindingView
from audit.report.cases import Case
from audit.report.statement import Predicate

MAX_LISTED_FINDINGS = 1_000
"""Findings written out in ``report.md``; the rest are counted (all are in ``findings.jsonl``)."""
MAX_LISTED_CASES = 500
"""Cases written out in ``report.md``; the rest are counted (all are in ``cases.jsonl``)."""

# Enough to keep text inert: emphasis, links (escaped [ and ] leave ( ) plain text), HTML and
# its comments (< and !), code spans, table cells (|) and strike-through (~).
_MARKDOWN_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_[]<>|~!"})


def _cell(text: str) -> str:
    """Untrusted text made inert: control characters dropped, Markdown/HTML escaped."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text.translate(_MARKDOWN_SPECIAL)


def _code(text: str) -> str:
    """An identifier in a code span (backticks and table pipes made harmless)."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def _when(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else "n/a"


def _header(pred: Predicate) -> list[str]:
    e = _cell
    log, approvals = pred.log, pred.approvals
    period = pred.period
    period_text = (
        f"{_when(period.first_event)} to {_when(period.last_event)}"
        if period is not None and period.first_event
        else "no events"
    )
    signer = pred.signer
    signer_text = (
        f"{e(signer.label or 'unlabelled key')} (key {_code(signer.key_id)})" if signer else "see the envelope"
    )
    origin = log.origin or "unnamed"
    name, _, import_report = origin.partition(";import-report=")
    trust = "signature-verified sealed log" if approvals.signature_verified else "NOT signature-verified (plain file)"
    summary = pred.summary
    return [
        "# Residency audit report",
        "",
        f"Generated {pred.generated_at.isoformat()} by {e(pred.tool['name'])} {e(pred.tool['version'])}.",
        "",
        f"- **Audit period:** {period_text}",
        f"- **Scope:** log {_code(name)}, {log.tree_size} events in {log.segments} segments, root {_code(log.root)}; "
        f"signatures verified: **yes**; completeness: **{e(log.completeness.upper())}** "
        f"({e(log.completeness_detail)})",
        f"- **Import report:** {_code(import_report) if import_report else 'none (log not made by an importer)'}",
        f"- **Signer:** {signer_text}",
        f"- **Approvals:** {approvals.count} from {e(approvals.source)}; {trust}",
        f"- **Policy:** {e(pred.policy.directory)} versions {e(', '.join(pred.policy.versions))}"
        f" (git {e(pred.policy.git_revision or 'unknown')})",
        f"- **Result:** {summary.events} events replayed; **{summary.findings}** findings in "
        f"**{summary.cases if summary.cases is not None else 'n/a'}** cases"
        + (f"; {summary.waived} waived" if summary.waived else ""),
        "",
    ]


def _verdict_table(pred: Predicate) -> list[str]:
    e = _cell
    out = [
        "## Verdict per commitment",
        "",
        "| Commitment | Verdict | Cases | Events | Findings | Severity | Commitment text | Source |",
        "|---|---|---:|---:|---:|---|---|---|",
    ]
    if not pred.verdicts:  # a report made before verdicts were part of the predicate
        for cid, text in pred.commitments.items():
            count = pred.summary.by_commitment.get(cid, 0)
            out.append(f"| {cid} | {'broken' if count else 'kept'} |  |  | {count} |  | {e(text)} |  |")
        return [*out, ""]
    for v in pred.verdicts:
        severity = ", ".join(f"{n} {s}" for s, n in v.severity.items()) or "-"
        sources = "; ".join(f"{_code(f'{s.file}:{s.line}')} \u201c{e(s.quote)}\u201d" for s in v.sources)
        verdict = f"**{v.verdict.upper()}**" if v.verdict == "broken" else v.verdict
        out.append(
            f"| {v.id}: {e(v.title)} | {verdict} | {v.cases} | {v.events} | {v.findings} | {severity} "
            f"| {e(v.text)} | {sources} |"
        )
    return [*out, ""]


def _case_table(cases: Sequence[Case], limit: int) -> list[str]:
    if not cases:
        return []
    out = [
        "## Cases",
        "",
        "| Case | Commitment | Rule | Severity | Subject | First seen | Last seen | Findings | Events |",
        "|---|---|---|---|---|---|---|---:|---:|",
    ]
    for c in cases[:limit]:
        waived = f" ({c.waived} waived)" if c.waived else ""
        out.append(
            f"| {_code(c.id)} | {c.commitment} | {_code(c.rule_id)} | {c.severity} | {c.subject_kind} "
            f"{_code(c.subject)} | {c.first_seen.isoformat()} | {c.last_seen.isoformat()} | {c.findings}{waived} "
            f"| {c.events} |"
        )
    if len(cases) > limit:
        out.append(f"\n... and {len(cases) - limit} more case(s), all listed in cases.jsonl.")
    return [*out, ""]


def _finding_lines(f: FindingView, pred: Predicate) -> list[str]:
    e = _cell
    where = f" at {_code(f'{f.position.segment}:{f.position.line}')}" if f.position else ""
    row = f" policy {_code(f'{f.policy_row.file}:{f.policy_row.line}')}" if f.policy_row else " the default deny"
    waived = f" **WAIVED** by {_code(f.waiver)}." if f.waiver else ""
    return [
        f"### {f.severity.upper()} {_code(f.id)} {e(f.rule_id)} ({f.commitment}): {e(f.title)}",
        "",
        f"- Event {e(', '.join(f.event_ids))}{where}; actor {e(f.actor_id)}; time {f.time.isoformat()}",
        f"- {e(f.message)}{waived}",
        f"- Commitment {f.commitment}: {e(pred.commitments.get(f.commitment, ''))}",
        f"- Decided by{row}; remediation: {e(f.remediation)}",
        "",
    ]


def render_markdown(
    pred: Predicate,
    findings: Iterable[FindingView],
    limit: int = MAX_LISTED_FINDINGS,
    cases: Sequence[Case] = (),
) -> str:
    """Period, scope, signer, verdict per commitment, cases, then the first ``limit`` findings.

    Every string that came from a log, an approval or a path goes through
    :func:`_cell` or :func:`_code`, so log content cannot forge headings, links or HTML.
    """
    out = [*_header(pred), *_verdict_table(pred), *_case_table(cases, MAX_LISTED_CASES)]
    out += ["## Findings per rule", "", "| Rule | Findings |", "|---|---:|"]
    for rule, count in sorted(pred.summary.by_rule.items()):
        out.append(f"| {_code(rule)} | {count} |")
    out += ["", "## Findings", ""]
    if not pred.summary.findings:
        out.append("No violations found.")
    for listed, f in enumerate(findings):
        if listed == limit:
            out.append(f"... and {pred.summary.findings - limit} more finding(s), all listed in findings.jsonl.")
            break
        out += _finding_lines(f, pred)
    return "\n".join(out) + "\n"
