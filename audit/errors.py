"""Error types shared by every layer, and the exit codes they map to.

Library code raises these; only :mod:`audit.cli` catches them and turns them into
exit codes and one-line messages. Integrity *findings* of a log verification are
not exceptions (they are collected in a report); :class:`IntegrityError` is for
callers that must stop because content could not be trusted.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

EXIT_CLEAN = 0
EXIT_VIOLATIONS = 1
EXIT_INPUT = 2
EXIT_INTEGRITY = 3
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


class AuditError(Exception):
    """Base class: a failure with a human diagnostic and an exit code."""

    exit_code: ClassVar[int] = EXIT_INTEGRITY

    def __init__(self, reason: str, *, path: str | Path | None = None, line: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.path = str(path) if path is not None else None
        self.line = line

    def __reduce__(self) -> tuple[type[AuditError], tuple[str], dict[str, str | int | None]]:
        # Keep path and line when an error crosses a process boundary (parallel replay).
        return (self.__class__, (self.reason,), {"path": self.path, "line": self.line})

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "
        return f"{where}{self.reason}"


class InputError(AuditError):
    """Bad input or usage: malformed file, unknown field, missing file (exit 2)."""

    exit_code = EXIT_INPUT


class KeyMaterialError(InputError):
    """A key could not be loaded: wrong passphrase, wrong type, unsafe storage (exit 2)."""


class IntegrityError(AuditError):
    """Content failed verification and must not be trusted (exit 3)."""

    exit_code = EXIT_INTEGRITY
