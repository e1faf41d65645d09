"""Exports of a report's findings and cases: ``findings.csv``, ``cases.csv`` and OCSF JSON Lines.

The CSV files are for spreadsheets (RFC 4180, UTF-8, a header row); a cell that a
spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or
carriage return) is prefixed with ``'``. ``findings.ocsf.jsonl`` holds one OCSF
Detection Finding (class 2004, schema :data:`OCSF_VERSION`) per finding, for SIEMs
and Amazon Security Lake; the test-suite validates it against the OCSF JSON Schema
vendored in ``tests/data/ocsf``. Each file is streamed and hashed as it is written;
signing them is the caller's. SARIF stays the format of policy diagnostics.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from audit import __version__
from audit.canonical import plain_canonical_bytes
from audit.errors import InputError
from audit.fsio import EarlyWriteback
from audit.models import FindingT, FindingView
from audit.report.cases import Case
from audit.report.export_lines import (
    FORMULA_START,
    OCSF_PROFILES,
    OCSF_VERSION,
    SEVERITY_IDS,
    CsvLines,
    OcsfLines,
    time_millis,
)

__all__ = ["OCSF_PROFILES", "OCSF_VERSION"]  # defined beside the line encoders, which share them
FINDING_COLUMNS = (
    "id", "time", "severity", "commitment", "rule_id", "title", "actor_id", "actor_country", "store", "region",
    "event_ids", "approval_ids", "position", "policy_row", "waiver", "message", "remediation",
)  # fmt: skip
CASE_COLUMNS = (
    "id", "commitment", "rule_id", "severity", "title", "subject_kind", "subject", "first_seen", "last_seen",
    "findings", "events", "waived", "actors", "stores",
)  # fmt: skip
_EXPORT_BATCH = 256
"""Findings whose CSV rows and OCSF lines are joined and written together."""
_SINK_BUFFER = 1 << 18
"""Bytes a sink gathers before one write (and one hash update) of them all."""


def _safe(value: object) -> str:
    text = value if type(value) is str else "" if value is None else str(value)
    return "'" + text if text and text[0] in FORMULA_START else text


class _CsvRows:
    """RFC 4180 rows (``\r\n``), each cell made formula-safe, one encoded row at a time."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")

    def encode(self, row: Iterable[object], *, safe: bool = True) -> bytes:
        self._writer.writerow([_safe(value) for value in row] if safe else row)
        return self._take()

    def _take(self) -> bytes:
        data = self._buffer.getvalue().encode()
        self._buffer.seek(0)
        self._buffer.truncate()
        return data


def _csv_lines(header: tuple[str, ...], rows: Iterable[list[object]]) -> Iterator[bytes]:
    encoder = _CsvRows()
    yield encoder.encode(header, safe=False)
    for row in rows:
        yield encoder.encode(row)


def _finding_row(f: FindingView) -> list[object]:
    position = f"{f.position.segment}:{f.position.line}" if f.position else ""
    row = f"{f.policy_row.file}:{f.policy_row.line}" if f.policy_row else "default deny"
    return [
        f.id, f.time.isoformat(), f.severity, f.commitment, f.rule_id, f.title, f.actor_id, f.actor_country,
        f.store, f.region, " ".join(f.event_ids), " ".join(f.approval_ids), position, row, f.waiver, f.message,
        f.remediation,
    ]  # fmt: skip


def findings_csv(findings: Iterable[FindingView]) -> Iterator[bytes]:
    """``findings.csv``: one row per finding, in ``findings.jsonl`` order."""
    return _csv_lines(FINDING_COLUMNS, (_finding_row(f) for f in findings))


class FindingExports:
    """``findings.csv`` and ``findings.ocsf.jsonl`` written side by side, one finding at a time.

    Fed by another pass over the findings (the HTML page's), so ``findings.jsonl`` is
    passed over once for all three; the bytes are those of :func:`findings_csv` and
    :func:`ocsf_lines`, written by the line encoders of :mod:`audit.report.export_lines`.
    Use as a context manager; :meth:`close` flushes, fsyncs and returns each file's
    SHA-256. A failed write is an :class:`~audit.errors.InputError` naming the file.
    """

    def __init__(self, csv_path: Path, ocsf_path: Path, commitments: dict[str, str]) -> None:
        self._commitments = commitments
        self._csv_lines, self._ocsf_lines = CsvLines(), OcsfLines()
        self._pending_rows: list[str] = []
        self._pending_ocsf: list[bytes] = []
        self._csv = _Sink(csv_path)
        self._ocsf = _Sink(ocsf_path)
        self._csv.write(_CsvRows().encode(FINDING_COLUMNS, safe=False))

    def __enter__(self) -> FindingExports:
        return self

    def __exit__(self, *exc: object) -> None:
        self._csv.abort()
        self._ocsf.abort()

    def exporting(self, findings: Iterable[FindingT]) -> Iterator[FindingT]:
        """``findings`` unchanged, each written to both files as it passes (in batches of :data:`_EXPORT_BATCH`)."""
        rows, lines, commitments = self._pending_rows, self._pending_ocsf, self._commitments
        csv_line, ocsf_line = self._csv_lines.line, self._ocsf_lines.line
        for f in findings:
            rows.append(csv_line(f))
            text = commitments.get(f.commitment, "")
            try:
                lines.append(ocsf_line(f, text))
            except orjson.JSONEncodeError:  # a lone surrogate: the general encoder decides (it raises)
                lines.append(plain_canonical_bytes(ocsf_finding(f, text)) + b"\n")
            if len(rows) == _EXPORT_BATCH:
                self._write_pending()
            yield f

    def _write_pending(self) -> None:
        if self._pending_rows:
            self._csv.write("".join(self._pending_rows).encode())
            self._pending_rows.clear()
            self._ocsf.write(b"".join(self._pending_ocsf))
            self._pending_ocsf.clear()

    def close(self) -> tuple[str, str]:
        """Finish both files; the SHA-256 of ``findings.csv`` and of ``findings.ocsf.jsonl``."""
        self._write_pending()
        return self._csv.close(), self._ocsf.close()


def cases_csv(cases: Iterable[Case]) -> Iterator[bytes]:
    """``cases.csv``: one row per case, in ``cases.jsonl`` order."""
    rows = (
        [
            c.id,
            c.commitment,
            c.rule_id,
            c.severity,
            c.title,
            c.subject_kind,
            c.subject,
            c.first_seen.isoformat(),
            c.last_seen.isoformat(),
            c.findings,
            c.events,
            c.waived,
            " ".join(c.actors),
            " ".join(c.stores),
        ]
        for c in cases
    )
    return _csv_lines(CASE_COLUMNS, rows)


def ocsf_finding(f: FindingView, commitment_text: str) -> dict[str, Any]:
    """One finding as an OCSF Detection Finding (class 2004, activity Create)."""
    millis = time_millis(f)
    status = (3, "Suppressed") if f.waiver else (1, "New")
    unmapped: dict[str, Any] = {"commitment": f.commitment, "commitment_text": commitment_text}
    if f.policy_row is not None:
        unmapped["policy_row"] = f"{f.policy_row.file}:{f.policy_row.line}"
    if f.position is not None:
        unmapped["log_position"] = f"{f.position.segment}:{f.position.line}"
    if f.waiver:
        unmapped["waiver"] = f.waiver
    if f.region:
        unmapped["store_region"] = f.region
    if f.actor_country:
        unmapped["actor_country"] = f.actor_country
    if f.approval_ids:
        unmapped["approval_ids"] = list(f.approval_ids)
    event: dict[str, Any] = {
        "activity_id": 1,
        "activity_name": "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "severity_id": SEVERITY_IDS[f.severity],
        "severity": f.severity.capitalize(),
        "status_id": status[0],
        "status": status[1],
        "time": millis,
        "message": f.message,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "residency-audit", "vendor_name": "residency-audit", "version": __version__},
            "uid": f.id,
            "profiles": list(OCSF_PROFILES),
        },
        "finding_info": {
            "uid": f.id,
            "title": f.title,
            "desc": f.message,
            "types": [f.rule_id],
            "analytic": {"uid": f.rule_id, "name": f.rule_id, "type_id": 1, "type": "Rule"},
            "first_seen_time": millis,
            "last_seen_time": millis,
            "related_events": [{"uid": event_id} for event_id in f.event_ids],
        },
        "actor": {"user": {"uid": f.actor_id}},
        "remediation": {"desc": f.remediation},
        "unmapped": unmapped,
    }
    if f.store:
        event["resources"] = [{"uid": f.store, "type": "data store"}]
    return event


def ocsf_lines(findings: Iterable[FindingView], commitments: dict[str, str]) -> Iterator[bytes]:
    """``findings.ocsf.jsonl``: one canonical JSON OCSF Detection Finding per line.

    :func:`ocsf_finding` writes only ASCII keys and no float (a test holds its output
    equal to ``rfc8785``), so the canonical bytes need no walk of the value.
    """
    for f in findings:
        yield plain_canonical_bytes(ocsf_finding(f, commitments.get(f.commitment, ""))) + b"\n"


def write_stream(path: Path, chunks: Iterable[bytes]) -> str:
    """Write ``chunks`` to ``path`` (a new file); the SHA-256 of what was written."""
    sink = _Sink(path)
    try:
        for chunk in chunks:
            sink.write(chunk)
        return sink.close()
    finally:
        sink.abort()


class _Sink:
    """A new file (``xb``), hashed as it is written; write errors name it (an :class:`~audit.errors.InputError`).

    Chunks are gathered up to :data:`_SINK_BUFFER` bytes and written (and hashed) together.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._digest = hashlib.sha256()
        self._pending: list[bytes] = []
        self._size = 0
        with self._guard():
            self._fh: BinaryIO | None = path.open("xb")
        self._writeback = EarlyWriteback(self._fh.fileno())

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise InputError(f"cannot write: {exc.strerror or exc}", path=self._path) from None

    def write(self, chunk: bytes) -> None:
        self._pending.append(chunk)
        self._size += len(chunk)
        if self._size >= _SINK_BUFFER:
            self._drain()

    def _drain(self) -> None:
        assert self._fh is not None
        data = b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        self._digest.update(data)
        with self._guard():
            self._fh.write(data)
        self._writeback.wrote(len(data))

    def close(self) -> str:
        """Flush, fsync and close; the SHA-256 of what was written."""
        self._drain()
        assert self._fh is not None
        with self._guard():
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
        self._fh = None
        return self._digest.hexdigest()

    def abort(self) -> None:
        """Close without syncing if still open (after a failure)."""
        self._pending.clear()
        if self._fh is not None:
            self._fh.close()
            self._fh = None
