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
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path

from audit.fsio import atomic_write
from audit.models import FindingT
from audit.report.cases import CaseBook
from audit.report.exports import FindingExports, cases_csv, write_stream
from audit.report.exports_apart import ExportsApart
from audit.report.findings import iter_findings
from audit.report.html import MAX_HTML_FINDINGS, PageTally
from audit.report.markdown import MAX_LISTED_FINDINGS, render_markdown
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

assert MAX_LISTED_FINDINGS <= MAX_HTML_FINDINGS, "the Markdown lists findings the page has kept"


def _write(staging: Path, name: str, data: bytes, outdir: Path) -> Subject:
    guard_write(partial(atomic_write, staging / name, data), outdir, path=staging / name)
    return Subject(name=name, digest={"sha256": hashlib.sha256(data).hexdigest()})


def write_derived(
    staging: Path, predicate: Predicate, cases: CaseBook, outdir: Path, *, extra_markdown: str = ""
) -> list[Subject]:
    """Write the files derived from ``staging/findings.jsonl``; their subjects, in a fixed order.

    One read of the findings feeds the HTML page, ``findings.csv`` and
    ``findings.ocsf.jsonl`` (and the Markdown's listed findings).
    """
    with DerivedFiles(staging, predicate.commitments, outdir) as files:
        for _ in files.feeding(iter_findings(staging / FINDINGS_FILE)):
            pass
        return files.finish(predicate, cases, extra_markdown=extra_markdown)


def export_paths(staging: Path) -> tuple[Path, Path]:
    """Where ``findings.csv`` and ``findings.ocsf.jsonl`` are written in ``staging``."""
    return staging / FINDINGS_CSV, staging / OCSF_FILE


class DerivedFiles:
    """The derived files, fed by a pass over the findings that another reader may share.

    A replay builds its cases and verdicts in the same pass (:meth:`feeding` yields
    each finding on), then calls :meth:`finish` with the predicate and cases; the
    bytes are those :func:`write_derived` writes. ``commitments`` (id to text) is the
    predicate's, known before the pass. Use as a context manager: leaving it without
    :meth:`finish` closes the half-written exports (the staging directory is discarded).
    """

    def __init__(
        self, staging: Path, commitments: dict[str, str], outdir: Path, *, apart: ExportsApart | None = None
    ) -> None:
        self._staging, self._outdir = staging, outdir
        self._page = PageTally()
        self._apart = apart
        self._exports = FindingExports(*export_paths(staging), commitments) if apart is None else None

    def __enter__(self) -> DerivedFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._exports is not None:
            self._exports.__exit__(*exc)

    def feeding(self, findings: Iterable[FindingT]) -> Iterator[FindingT]:
        """``findings`` unchanged, each counted for the page (and written to the exports, unless
        ``apart`` writes them) as it passes."""
        if self._exports is None:
            return self._page.counting(findings)
        return self._page.counting(self._exports.exporting(findings))

    def finish(self, predicate: Predicate, book: CaseBook, *, extra_markdown: str = "") -> list[Subject]:
        """Write the rest once every finding has passed and ``book`` is built; a subject per file, in a fixed order."""
        staging, outdir, cases = self._staging, self._outdir, book.cases
        cases_digest = write_stream(staging / CASES_FILE, book.lines())
        markdown = render_markdown(predicate, self._page.listed, cases=cases) + extra_markdown
        markdown_subject = _write(staging, MARKDOWN_FILE, markdown.encode(), outdir)
        page_subject = _write(staging, HTML_FILE, self._page.render(predicate, cases).encode(), outdir)
        cases_csv_digest = write_stream(staging / CASES_CSV, cases_csv(cases))
        findings_csv_digest, ocsf_digest = self._export_digests()  # last: a process apart may still be writing them
        return [
            Subject(name=CASES_FILE, digest={"sha256": cases_digest}),
            markdown_subject,
            page_subject,
            Subject(name=FINDINGS_CSV, digest={"sha256": findings_csv_digest}),
            Subject(name=CASES_CSV, digest={"sha256": cases_csv_digest}),
            Subject(name=OCSF_FILE, digest={"sha256": ocsf_digest}),
        ]

    def _export_digests(self) -> tuple[str, str]:
        if self._apart is not None:
            return self._apart.result()
        assert self._exports is not None, "written here when not apart"
        return self._exports.close()
