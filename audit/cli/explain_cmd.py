"""``residency-audit explain FINDING_ID --report OUTDIR``: the decision trace of one finding.

Only picks the inputs and prints; the trace is built by :func:`audit.explain.explain`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from audit.cli.console import out
from audit.errors import EXIT_CLEAN
from audit.report.formats.choice import OutputFormat

if TYPE_CHECKING:
    from audit.explain import Explanation, RequestTrace


def explain_cmd(
    finding_id: Annotated[
        str, typer.Argument(help="The finding's id (F-..., in findings.jsonl, report.md, report.html).")
    ],
    report: Annotated[Path, typer.Option("--report", help="The report directory (holds report.intoto.json).")],
    keyring_path: Annotated[Path, typer.Option("--keyring", help="Trusted public keys (report, log, approvals).")],
    log: Annotated[Path | None, typer.Option(help="The sealed access log the report was made from.")] = None,
    policy: Annotated[Path | None, typer.Option(help="The policy pack the report was made with.")] = None,
    approvals: Annotated[Path | None, typer.Option(help="The approvals the report was made with.")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.text,
) -> int:
    """Why was this finding flagged: the event, its facts, each request, the deciding row, the approvals."""
    from audit.explain import explain
    from audit.signing.keys import load_keyring

    result = explain(finding_id, report, load_keyring(keyring_path), log=log, policy=policy, approvals=approvals)
    if fmt is OutputFormat.json:
        out.print(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2).decode(), markup=False, soft_wrap=True)
    else:
        for line in explanation_lines(result):
            out.print(line, markup=False)
    return EXIT_CLEAN


def _row(trace: RequestTrace) -> str:
    row = trace.decision.row
    return "no row matched (default deny)" if row is None else f"{row.file}:{row.line} [{', '.join(row.fields)}]"


def explanation_lines(result: Explanation) -> list[str]:
    """The text form: finding, commitment and quote, event, facts, requests, approvals."""
    lines = _finding_lines(result)
    if result.facts:
        lines.append("facts: " + ", ".join(f"{k}={v}" for k, v in result.facts.items()))
    for number, trace in enumerate(result.requests, start=1):
        lines += _request_lines(number, trace, trace is result.deciding)
    for state in result.approvals:
        lines.append(f"approval {state.approval_id or '(none cited)'}: {state.state} - {state.detail}")
    if result.approvals_verified is not None:
        lines.append(f"approvals {'signature-verified' if result.approvals_verified else 'NOT signature-verified'}")
    if result.note:
        lines.append(f"note: {result.note}")
    return lines


def _finding_lines(result: Explanation) -> list[str]:
    f = result.finding
    lines = [f"finding {f.id}: {f.rule_id} ({f.commitment}, {f.severity}) at {f.time.isoformat()}", f"  {f.message}"]
    if f.position is not None:
        lines.append(f"  event {', '.join(f.event_ids)} at {f.position.segment}:{f.position.line}")
    if result.commitment is not None:
        lines.append(f"commitment {result.commitment.id}: {result.commitment.text}")
        lines += [f'  stated in {s.path}:{s.line}: "{s.quote}"' for s in result.commitment.sources]
    return lines


def _request_lines(number: int, trace: RequestTrace, deciding: bool) -> list[str]:
    mark = " <- this finding" if deciding else ""
    lines = [
        f"request {number}: {' | '.join(trace.request)} ({trace.detail}){mark}",
        f"  {'allowed' if trace.decision.allowed else 'denied'} by {_row(trace)}",
    ]
    lines += [
        f"  breaks {d.commitment} by rule {d.rule_id} ({d.row.file}:{d.row.line})"
        for d in trace.broken
        if d.row is not None
    ]
    if trace.not_matched:
        passed_over = ", ".join(str(row.line) for row in trace.not_matched)
        lines.append(f"  higher-priority rows that did not match: {passed_over}")
    return lines
