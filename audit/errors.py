"""One hierarchy of errors, named by what went wrong, and the exit codes they map to.

Library code raises these; only :mod:`audit.cli` catches them and turns them into
exit codes and one-line messages. Each error carries a human diagnostic: the
reason, the file and line it is about (where there is one) and, optionally, a
hint saying what to do next. Integrity *findings* of a log verification are not
exceptions (they are collected in a report); :class:`IntegrityError` is for callers
that must stop because content could not be trusted.

The classes, by exit code::

    AuditError
    ├── InputError              2  the input or the command line is wrong
    │   ├── KeyMaterialError        a key cannot be loaded (passphrase, type, storage)
    │   ├── LockedError             another run holds the lock on the output (a log or report directory)
    │   ├── PolicyError             a policy pack or policy file is malformed
    │   └── RecordError             one vendor record cannot be converted
    ├── IntegrityError          3  content does not verify, or could not be verified
    │   ├── SignatureError          a signature is bad, or its key is unknown or not valid
    │   ├── LogVerificationError    a sealed log (access events or approvals) does not verify
    │   ├── CompletenessError       a log's completeness is unproven where it must be proven
    │   └── ScanError               a provider could not be scanned (fail closed)
    └── InternalError           4  a bug: the tool broke its own assumptions

Anything else that escapes to the CLI is a bug too and exits 4. What this module
does not do: print, log, or decide messages for exceptions it does not own.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

__all__ = [
    "EXIT_CLEAN",
    "EXIT_INPUT",
    "EXIT_INTEGRITY",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_VIOLATIONS",
    "AuditError",
    "CompletenessError",
    "InputError",
    "IntegrityError",
    "InternalError",
    "KeyMaterialError",
    "LockedError",
    "LogVerificationError",
    "PolicyError",
    "RecordError",
    "ScanError",
    "SignatureError",
]

EXIT_CLEAN = 0
"""Verified, and no violations."""
EXIT_VIOLATIONS = 1
"""Violations found (a report was written)."""
EXIT_INPUT = 2
"""Usage or input error: malformed file, unknown field, missing file, wrong key or passphrase."""
EXIT_INTEGRITY = 3
"""Integrity failure: a log, approvals log, report or signature does not verify."""
EXIT_INTERNAL = 4
"""Internal error: a bug in residency-audit (never a verdict about the input)."""
EXIT_INTERRUPTED = 130
"""Ctrl-C, as shells report SIGINT."""


class AuditError(Exception):
    """Base class: a failure with a human diagnostic and an exit code.

    ``reason`` says what went wrong in one line; ``path`` and ``line`` say where;
    ``hint``, if given, says what the user can do about it.
    """

    exit_code: ClassVar[int] = EXIT_INTERNAL

    def __init__(
        self, reason: str, *, path: str | Path | None = None, line: int | None = None, hint: str | None = None
    ):
        super().__init__(reason)
        self.reason = reason
        self.path = str(path) if path is not None else None
        self.line = line
        self.hint = hint

    def __reduce__(self) -> tuple[type[AuditError], tuple[str], dict[str, str | int | None]]:
        # Keep path, line and hint when an error crosses a process boundary (parallel replay).
        return (self.__class__, (self.reason,), {"path": self.path, "line": self.line, "hint": self.hint})

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "
        return f"{where}{self.reason}"

    def diagnostic(self) -> str:
        """The message for a person: where, what, and the hint if there is one."""
        return f"{self}; {self.hint}" if self.hint else str(self)


class InputError(AuditError):
    """Bad input or usage: malformed file, unknown field, missing file (exit 2)."""

    exit_code = EXIT_INPUT


class KeyMaterialError(InputError):
    """A key could not be loaded: wrong passphrase, wrong type, unsafe storage (exit 2)."""


class LockedError(InputError):
    """Another process holds the lock on the directory this run would write (exit 2).

    The reason names the directory and the holder: ``LOGDIR is locked by PID P on
    HOST since T``.
    """


class PolicyError(InputError):
    """A policy pack, model or policy file is malformed (exit 2); the first problem lint would list."""


class RecordError(InputError):
    """One vendor record cannot be converted: malformed, missing a field, unknown shape (exit 2).

    Importers raise it without a path; the caller that knows the file and line adds them.
    """


class IntegrityError(AuditError):
    """Content failed verification and must not be trusted (exit 3)."""

    exit_code = EXIT_INTEGRITY


class SignatureError(IntegrityError):
    """A signature does not verify, or its key is unknown, revoked, outside its window or purpose (exit 3)."""


class LogVerificationError(IntegrityError):
    """A sealed log (access events or approvals) does not verify; the reason lists its problems (exit 3)."""


class CompletenessError(IntegrityError):
    """A log's completeness is unproven or disproven where the caller requires it proven (exit 3)."""


class ScanError(IntegrityError):
    """A provider could not be scanned: authentication, permission or network (exit 3).

    The message names the provider, the region and the call that failed, so a scan
    that could not see everything is never mistaken for a clean one.
    """

    def __init__(self, provider: str, region: str | None, operation: str, detail: str) -> None:
        super().__init__(f"{provider} {region or 'global'}: {operation} failed: {detail}")
        self.provider = provider
        self.region = region
        self.operation = operation
        self.detail = detail

    def __reduce__(self) -> tuple[type[ScanError], tuple[str, str | None, str, str]]:  # type: ignore[override]
        return (self.__class__, (self.provider, self.region, self.operation, self.detail))


class InternalError(AuditError):
    """The tool broke one of its own assumptions: a bug to report, never a verdict (exit 4)."""

    exit_code = EXIT_INTERNAL
