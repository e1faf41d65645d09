"""The files of a report directory that are derived from its findings, and their subjects.

:func:`write_derived` takes a staging directory that already holds a verified
``findings.jsonl`` and the predicate to sign, and writes every file computed from
them - ``cases.jsonl``, ``report.md`` and the exports of :data:`DERIVED_FILES` -
returning one subject per file. The same findings and predicate always give the same
bytes, so a re-signed report (a residency scan folded in) rebuilds them all. It
does not sign, verify or publish (:mod:`audit.report.publish` does).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from audit.fsio import atomic_write
from audit.report.cases import Case, cases_bytes
from audit.report.exports import FindingExports, cases_csv, write_stream
from audit.report.findings import iter_findings
from audit.report.html import render_html
from audit.report.markdown import render_markdown
from audit.report.publish import (
    CASES_CSV,
    CASES_FILE,
    FINDINGS_CSV,
    FINDINGS_FILE,
    HTML_FILE,
    MARKDOWN_FILE,
    OCSF_FILE,
    guard_write,
)
from audit.report.statement import Predicate, Subject


def _write(staging: Path, name: str, data: bytes, outdir: Path) -> Subject:
    guard_write(partial(atomic_write, staging / name, data), outdir, path=staging / name)
    return Subject(name=name, digest={"sha256": hashlib.sha256(data).hexdigest()})


def write_derived(
    staging: Path, predicate: Predicate, cases: Sequence[Case], outdir: Path, *, extra_markdown: str = ""
) -> list[Subject]:
    """Write the files derived from ``staging/findings.jsonl``; their subjects, in a fixed order.

    The HTML page's pass over the findings also writes ``findings.csv`` and
    ``findings.ocsf.jsonl``, so the findings are read once for the three.
    """
    findings = staging / FINDINGS_FILE
    subjects = [_write(staging, CASES_FILE, cases_bytes(cases), outdir)]
    markdown = render_markdown(predicate, iter_findings(findings), cases=cases) + extra_markdown
    subjects.append(_write(staging, MARKDOWN_FILE, markdown.encode(), outdir))
    with FindingExports(staging / FINDINGS_CSV, staging / OCSF_FILE, predicate.commitments) as exports:
        page = render_html(predicate, exports.exporting(iter_findings(findings)), cases)
        findings_csv_digest, ocsf_digest = exports.close()
    subjects.append(_write(staging, HTML_FILE, page.encode(), outdir))
    subjects.append(Subject(name=FINDINGS_CSV, digest={"sha256": findings_csv_digest}))
    cases_csv_digest = write_stream(staging / CASES_CSV, cases_csv(cases))
    subjects.append(Subject(name=CASES_CSV, digest={"sha256": cases_csv_digest}))
    subjects.append(Subject(name=OCSF_FILE, digest={"sha256": ocsf_digest}))
    return subjects
