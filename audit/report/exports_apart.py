"""``findings.csv`` and ``findings.ocsf.jsonl`` written by a forked process while this one writes the rest.

What it does: :class:`ExportsApart` forks a child that reads the settled spool's
findings in order on its own (:meth:`~audit.report.findings.FindingsSpool.lines`,
through the same waiver marks), decodes each line as the parent does
(:func:`~audit.report.readback.findings_as_written`), writes both exports into the
staging directory with :class:`~audit.report.exports.FindingExports`, and sends back
their SHA-256 digests, or the error that stopped it (an
:class:`~audit.errors.AuditError` keeps its kind, file and line). Meanwhile the parent
writes ``findings.jsonl`` and builds the cases, the verdict tallies and the page from
the same lines: the two halves of the report pass run on two cores, and the files are
byte for byte those of one process (a test holds them so).

What it does not do: decide whether forking is safe here (the caller does: ADR 0017),
or sign anything. A parent that fails first kills the child (leaving the context
manager on an error); the staging directory both wrote into is then discarded. The
child ignores Ctrl-C: the parent handles it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from multiprocessing import get_context
from multiprocessing.connection import Connection
from pathlib import Path

from audit.errors import AuditError, InputError, InternalError
from audit.interrupts import ignore_sigint, sigint_held
from audit.report.exports import FindingExports
from audit.report.findings import FindingsSpool
from audit.report.publish import FINDINGS_CSV
from audit.report.readback import findings_as_written


class ExportsApart:
    """The child writing the exports; :meth:`result` waits for their digests. A context manager:
    leaving it on an error (or without asking for the result) stops the child."""

    def __init__(
        self,
        spool: FindingsSpool,
        mark: Callable[[bytes], bytes] | None,
        findings_path: Path,
        exports: tuple[Path, Path],
        commitments: dict[str, str],
    ) -> None:
        spool.settle()  # before the fork: reading the findings in order then writes nothing
        self._expected = spool.count
        context = get_context("fork")
        self._answer, sent = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_export, args=(spool, mark, findings_path, exports, commitments, sent), daemon=True
        )
        with sigint_held():  # from before the fork until the child ignores it (a Ctrl-C is the parent's)
            try:
                self._process.start()
            finally:
                sent.close()  # before a Ctrl-C held back can be raised: the child's end is the child's alone

    def __enter__(self) -> ExportsApart:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()

    def result(self) -> tuple[str, str]:
        """The SHA-256 of ``findings.csv`` and of ``findings.ocsf.jsonl``; the child's error, raised here."""
        try:
            answer: tuple[str, str, int] | AuditError = self._answer.recv()
        except EOFError:  # killed, or died before it could answer
            answer = InternalError("the process writing findings.csv and findings.ocsf.jsonl ended without an answer")
        finally:
            self._answer.close()
            self._process.join()
        if isinstance(answer, AuditError):
            raise answer
        csv_digest, ocsf_digest, rows = answer
        if rows != self._expected:
            raise InternalError(f"the exports hold {rows} findings, the spool {self._expected}", path=FINDINGS_CSV)
        return csv_digest, ocsf_digest

    def abort(self) -> None:
        """Stop the child if it still runs (the parent failed: nothing will be published); no-op once it ended."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._answer.close()


def _export(
    spool: FindingsSpool,
    mark: Callable[[bytes], bytes] | None,
    findings_path: Path,
    exports: tuple[Path, Path],
    commitments: dict[str, str],
    answer: Connection,
) -> None:
    """In the child: write both exports; send their digests and row count, or the error."""
    ignore_sigint()
    result: tuple[str, str, int] | AuditError
    try:
        rows = 0
        with FindingExports(*exports, commitments) as files:
            for _ in files.exporting(findings_as_written(spool.lines(mark), findings_path)):
                rows += 1
            result = (*files.close(), rows)
    except AuditError as exc:
        result = exc
    except OSError as exc:  # reading the spool's runs
        result = InputError(f"cannot read: {exc.strerror or exc}", path=exc.filename or findings_path)
    except Exception as exc:  # a bug: reported by the parent as one line, exit 4
        result = InternalError(f"writing the exports failed: {type(exc).__name__}: {exc}", path=exports[0])
    try:
        answer.send(result)
        answer.close()
    except BaseException:  # the parent is gone or the answer cannot be sent: it reports no answer
        os._exit(1)
