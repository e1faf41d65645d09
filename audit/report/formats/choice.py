"""The output formats and the ``--format`` choices that pick them (model: pip-audit ``OutputFormatChoice``).

Each choice enum's ``to_format()`` returns the format object; the format asks the
document for the shape it needs. The shapes themselves live with their documents
(:mod:`audit.report.formats.policy`, :mod:`~audit.report.formats.logs`, ...).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import assert_never

from audit.policy.diagnostics import CHECKS
from audit.report.formats.interface import (
    DiagnosticDocument,
    Document,
    JsonDocument,
    JUnitDocument,
    Rendering,
    ReportFormat,
)
from audit.report.sarif import render_sarif


class TextFormat(ReportFormat[Document]):
    """Lines for a person at a terminal."""

    def render(self, document: Document) -> Rendering:
        return document.lines()


class JsonFormat(ReportFormat[JsonDocument]):
    """The document's JSON."""

    def render(self, document: JsonDocument) -> Rendering:
        return document.json_bytes()


class SarifFormat(ReportFormat[DiagnosticDocument]):
    """SARIF 2.1.0 of the document's diagnostics, URIs relative to the working directory."""

    def render(self, document: DiagnosticDocument) -> Rendering:
        return render_sarif(document.diagnostics(), CHECKS, root=Path.cwd(), command=document.command)


class JUnitFormat(ReportFormat[JUnitDocument]):
    """JUnit XML."""

    def render(self, document: JUnitDocument) -> Rendering:
        return document.junit()


class OutputFormat(StrEnum):
    """Machine or human output."""

    text = "text"
    json = "json"

    def to_format(self) -> ReportFormat[JsonDocument]:
        """The format this choice names."""
        if self is OutputFormat.text:
            return TextFormat()
        if self is OutputFormat.json:
            return JsonFormat()
        assert_never(self)


class PolicyFormat(StrEnum):
    """Report formats of ``policy lint``, ``prove`` and ``diff``."""

    text = "text"
    json = "json"
    sarif = "sarif"

    def to_format(self) -> ReportFormat[DiagnosticDocument]:
        """The format this choice names."""
        if self is PolicyFormat.sarif:
            return SarifFormat()
        return OutputFormat(self.value).to_format()


class TestFormat(StrEnum):
    """Report formats of ``policy test``."""

    __test__ = False
    text = "text"
    json = "json"
    junit = "junit"
    sarif = "sarif"

    def to_format(self) -> ReportFormat[JUnitDocument]:
        """The format this choice names."""
        if self is TestFormat.junit:
            return JUnitFormat()
        return PolicyFormat(self.value).to_format()
