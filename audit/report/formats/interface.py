"""The interface between results and their renderings (model: pip-audit ``_format/interface.py``).

A *document* wraps one result (a lint report, a log verification, ...) and knows
its shapes: the lines a person reads, the JSON a machine reads and, for policy
results, the diagnostics SARIF carries. A *format* turns any document it accepts
into a :data:`Rendering`. The CLI picks a format from the user's ``--format``
choice (``choice.to_format()``) and writes what it renders; it builds no output
itself. Nothing here prints or writes files.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

import orjson
from rich.text import Text

from audit.policy.diagnostics import Diagnostic

#: Lines for a terminal (a :class:`~rich.text.Text` keeps its colours; a ``str`` is
#: shown as is), or the bytes of a document meant for a file or a pipe.
Lines = list[Text | str]
Rendering = Lines | bytes


class Document(ABC):
    """One result with a human form."""

    @abstractmethod
    def lines(self) -> Lines:
        """The human-readable form, one entry per line."""


class JsonDocument(Document):
    """A result with a JSON form as well."""

    #: Indented JSON with a final newline (a report file), or one compact line.
    indent_json: ClassVar[bool] = True

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """The JSON document (its shape is part of the CLI's interface)."""

    def json_bytes(self) -> bytes:
        """:meth:`to_json` serialised as :attr:`indent_json` says."""
        if self.indent_json:
            return orjson.dumps(self.to_json(), option=orjson.OPT_INDENT_2) + b"\n"
        return orjson.dumps(self.to_json())


class DiagnosticDocument(JsonDocument):
    """A policy result that can also be reported as diagnostics (SARIF)."""

    #: The ``policy`` subcommand that made it (SARIF ``automationDetails``).
    command: ClassVar[str]

    @abstractmethod
    def summary(self) -> str:
        """One line saying what was checked and found."""

    @abstractmethod
    def diagnostics(self) -> Sequence[Diagnostic]:
        """The findings as diagnostics with file, line and column."""


class JUnitDocument(DiagnosticDocument):
    """A result that can also be reported as a JUnit XML test report."""

    @abstractmethod
    def junit(self) -> bytes:
        """The JUnit XML report."""


D = TypeVar("D", bound=Document, contravariant=True)


class ReportFormat(ABC, Generic[D]):
    """One way of rendering documents of type ``D``."""

    @abstractmethod
    def render(self, document: D) -> Rendering:
        """Lines for a terminal, or the bytes of a document."""
