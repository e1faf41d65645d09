"""Import vendor log files into a sealed, signed access log, with an import report.

:func:`run_import` streams every record of every file through its source's
converter, validates each resulting :class:`~audit.models.AccessEvent` and writes its
canonical bytes into the log's segments as it goes (:func:`audit.logs.writer.open_seal`,
constant memory); the checkpoints are signed at the end, when the import report their
origin names is complete. A source's fast path, where it proves its answer the same,
gives the bytes without the pydantic model (:attr:`~audit.importers.base.Source.fast`,
ADR 0011), for a whole file at once where it can (ADR 0015; sealed as one batch). An
import in which no record is an access to data still seals: an empty log whose signed
checkpoint carries the import report's digest, so "no data access in these files" can be
attested. A bad record stops the import with one
``file:line: record N: reason`` :class:`~audit.errors.InputError` and nothing is
written; with ``skip_invalid`` it is listed in the import report instead.

The import report (``LOGDIR/import-report.json``, RFC 8785 bytes) lists the input
files with their SHA-256, the enrichment files, counts of events, out-of-scope
records, unresolved principals and resources, every skipped record, and the
CloudTrail digest validation when one ran. Its SHA-256 is part of the log's
*origin* (``NAME;import-report=sha256:HEX``), which every signed checkpoint carries
and which a replay report names in its log subject, so the signed report references
the import report and :func:`check_import_report` can prove a copy authentic. The
log directory appears only when complete (staged, then renamed).

This module does not parse vendor formats (see the per-source modules).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from audit.canonical import canonical_bytes
from audit.errors import InputError, IntegrityError, RecordError
from audit.fsio import atomic_write
from audit.importers import cloudtrail, gcp_access_transparency, oci_audit, ocsf
from audit.importers.base import (
    Encoded,
    FastConvert,
    FileEvents,
    Malformed,
    OutOfScope,
    RawRecord,
    Source,
    iter_records,
    record_keys,
)
from audit.importers.enrichment import Enrichment
from audit.logs.record_types import ACCESS_RECORD_TYPE
from audit.logs.verify import describe_problems, verify_log
from audit.logs.writer import SealResult, open_seal
from audit.models import AccessEvent
from audit.records import sha256_file
from audit.replay.tuning import fewer_collections
from audit.signing.keys import Keyring, SigningKey

SOURCES: dict[str, Source] = {
    s.name: s for s in (cloudtrail.SOURCE, oci_audit.SOURCE, gcp_access_transparency.SOURCE, ocsf.SOURCE)
}
IMPORT_REPORT_FILE = "import-report.json"
IMPORT_REPORT_FORMAT = "residency-audit/import-report/v1"
ORIGIN_MARK = ";import-report=sha256:"


@dataclass
class ImportStats:
    """What an import saw; becomes the import report."""

    records: int = 0
    events: int = 0
    per_file: dict[str, int] = field(default_factory=dict)
    out_of_scope: Counter[str] = field(default_factory=Counter)
    unresolved: Counter[str] = field(default_factory=Counter)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def _vendor_hint(raw: RawRecord) -> str:
    value = raw.value
    if isinstance(value, dict):
        for key in ("eventID", "eventId", "id", "insertId"):
            if isinstance(value.get(key), str):
                return f" ({key} {value[key]})"
        uid = value.get("metadata", {}).get("uid") if isinstance(value.get("metadata"), dict) else None
        if isinstance(uid, str):
            return f" (metadata.uid {uid})"
    return ""


def _convert(source: Source, raw: RawRecord, enrichment: Enrichment) -> list[AccessEvent | OutOfScope]:
    if isinstance(raw.value, Malformed):
        raise RecordError(raw.value.reason)
    return list(source.convert(raw, enrichment))


def _tally(
    answers: Iterable[Sequence[Encoded | AccessEvent | OutOfScope]], stats: ImportStats
) -> list[AccessEvent | Encoded]:
    """The access events of these records' answers, counted in ``stats`` with what is out of scope."""
    events: list[AccessEvent | Encoded] = []
    for converted in answers:
        for item in converted:
            if type(item) is Encoded:
                stats.events += 1
                if item.unresolved:
                    stats.unresolved.update(item.unresolved)
                events.append(item)
            elif isinstance(item, OutOfScope):
                stats.out_of_scope[item.reason] += 1
            else:
                assert isinstance(item, AccessEvent) and item.source_record is not None
                stats.events += 1
                stats.unresolved.update(item.source_record.unresolved)
                events.append(item)
    return events


def _converted(
    source: Source,
    files: Sequence[Path],
    enrichment: Enrichment,
    stats: ImportStats,
    *,
    skip_invalid: bool,
    fast: FastConvert | None,
) -> Iterator[list[AccessEvent | Encoded] | FileEvents]:
    """The access events of ``files`` in order, a record's at a time, or a file's from ``fast`` when it answers
    for the whole file (else each record's from ``fast`` when it answers), counting everything in ``stats``."""
    keys = record_keys(source.array_key)
    for path in files:
        whole = fast.whole_file(path, keys) if fast is not None else None
        if whole is not None:
            stats.records += whole.records
            stats.events += len(whole.data)
            stats.unresolved.update(whole.unresolved)
            stats.out_of_scope.update(whole.out_of_scope)
            stats.per_file[path.name] = whole.records
            yield whole
            continue
        count = 0
        try:
            for raw in iter_records(path, source.array_key):
                count += 1
                stats.records += 1
                converted: list[Encoded | OutOfScope] | list[AccessEvent | OutOfScope] | None = (
                    fast(raw) if fast is not None else None
                )
                if converted is None:
                    try:
                        converted = _convert(source, raw, enrichment)
                    except RecordError as exc:
                        reason = f"record {raw.index}{_vendor_hint(raw)}: {exc}"
                        if not skip_invalid:
                            raise InputError(reason, path=path, line=raw.line) from None
                        stats.skipped.append(
                            {"file": path.name, "record": raw.index, "line": raw.line, "reason": reason}
                        )
                        continue
                yield _tally([converted], stats)
        except InputError as exc:
            if not skip_invalid or exc.path != str(path):
                raise
            stats.skipped.append(
                {
                    "file": path.name,
                    "record": count + 1,
                    "line": exc.line,
                    "reason": f"rest of file unreadable: {exc.reason}",
                }
            )
        stats.per_file[path.name] = count


def convert_files(
    source: Source, files: Sequence[Path], enrichment: Enrichment, stats: ImportStats, *, skip_invalid: bool = False
) -> Iterator[AccessEvent]:
    """Stream the access events of ``files`` in order, counting everything in ``stats``."""
    for events in _converted(source, files, enrichment, stats, skip_invalid=skip_invalid, fast=None):
        assert not isinstance(events, FileEvents)
        for event in events:
            assert isinstance(event, AccessEvent)
            yield event


def _encoded(
    source: Source, files: Sequence[Path], enrichment: Enrichment, stats: ImportStats, *, skip_invalid: bool
) -> Iterator[tuple[list[bytes], list[str]]]:
    """The canonical bytes and ids of the access events of ``files``, a file's or a record's at a time, as
    :func:`convert_files` and :func:`~audit.canonical.canonical_bytes` give them, through the source's fast path
    where it answers."""
    fast = source.fast(enrichment) if source.fast is not None else None
    for events in _converted(source, files, enrichment, stats, skip_invalid=skip_invalid, fast=fast):
        if isinstance(events, FileEvents):
            yield events.data, events.ids
        else:
            yield [e.data if type(e) is Encoded else canonical_bytes(e) for e in events], [e.event_id for e in events]


def encode_files(
    source: Source, files: Sequence[Path], enrichment: Enrichment, stats: ImportStats, *, skip_invalid: bool = False
) -> Iterator[tuple[bytes, str]]:
    """The canonical bytes and id of each access event of ``files`` (:func:`_encoded`, one at a time)."""
    for data, ids in _encoded(source, files, enrichment, stats, skip_invalid=skip_invalid):
        yield from zip(data, ids, strict=True)


def import_report(
    source: Source,
    files: Sequence[Path],
    enrichment: Enrichment,
    stats: ImportStats,
    *,
    skip_invalid: bool,
    digests: dict[str, Any] | None,
) -> bytes:
    """Canonical bytes of the import report."""
    return canonical_bytes(
        {
            "format": IMPORT_REPORT_FORMAT,
            "source": source.name,
            "vendor": source.vendor,
            "files": [
                {"name": p.name, "sha256": sha256_file(p), "records": stats.per_file.get(p.name, 0)} for p in files
            ],
            "directory": {"name": enrichment.directory.source.name, "sha256": sha256_file(enrichment.directory.source)},
            "catalogue": {"name": enrichment.catalogue.source.name, "sha256": sha256_file(enrichment.catalogue.source)},
            "records": stats.records,
            "events": stats.events,
            "out_of_scope": dict(sorted(stats.out_of_scope.items())),
            "unresolved": {"principal": stats.unresolved["principal"], "resource": stats.unresolved["resource"]},
            "skip_invalid": skip_invalid,
            "skipped": stats.skipped,
            "cloudtrail_digests": digests,
        }
    )


@dataclass(frozen=True)
class ImportResult:
    """A finished import: the sealed log, its report's digest and the counts."""

    seal: SealResult
    origin: str
    report_sha256: str
    stats: ImportStats


def _check_inputs(files: Sequence[Path], out: Path) -> None:
    if not files:
        raise InputError("no input files")
    names: dict[str, Path] = {}
    for path in files:
        if not path.is_file():
            raise InputError("no such file" if not path.exists() else "not a regular file", path=path)
        if path.name in names:
            raise InputError(f"two input files are named {path.name!r} ({names[path.name]})", path=path)
        names[path.name] = path
    if out.is_symlink() or (out.exists() and (not out.is_dir() or any(out.iterdir()))):
        raise InputError("output exists and is not an empty directory", path=out)


def run_import(
    source: Source,
    files: Sequence[Path],
    enrichment: Enrichment,
    *,
    key: SigningKey,
    out: Path,
    origin: str | None = None,
    segment_size: int = 10000,
    skip_invalid: bool = False,
    digests: dict[str, Any] | None = None,
    time: datetime | None = None,
) -> ImportResult:
    """Convert, spool, seal into ``out`` and write ``out/import-report.json``; all or nothing."""
    files = [Path(p) for p in files]
    _check_inputs(files, out)
    parent = out.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".importing", dir=parent))
    try:
        stats = ImportStats()
        staged = staging / "log"
        with fewer_collections():
            result, full_origin, report = _seal_import(
                source, files, enrichment, stats, staged, key, origin, segment_size, skip_invalid, digests, time
            )
        atomic_write(staged / IMPORT_REPORT_FILE, report)
        try:
            os.replace(staged, out)
        except OSError as exc:
            raise InputError(f"cannot create output: {exc.strerror}", path=out) from None
        final = SealResult(result.tree_size, result.root, result.segments, out)
        return ImportResult(final, full_origin, hashlib.sha256(report).hexdigest(), stats)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _seal_import(
    source: Source,
    files: Sequence[Path],
    enrichment: Enrichment,
    stats: ImportStats,
    staged: Path,
    key: SigningKey,
    origin: str | None,
    segment_size: int,
    skip_invalid: bool,
    digests: dict[str, Any] | None,
    time: datetime | None,
) -> tuple[SealResult, str, bytes]:
    """Convert and write segments in one pass; sign the checkpoints once the report, named by the origin, is known."""
    events = _encoded(source, files, enrichment, stats, skip_invalid=skip_invalid)
    if segment_size < 1:
        for _ in events:  # a bad record is reported before the bad argument, as when sealing came second
            pass
    with open_seal(staged, key=key, record_type=ACCESS_RECORD_TYPE, segment_size=segment_size) as sealer:
        for data, ids in events:
            sealer.add_all(data, ids)
        report = import_report(source, files, enrichment, stats, skip_invalid=skip_invalid, digests=digests)
        full_origin = f"{origin or source.name + '-import'}{ORIGIN_MARK}{hashlib.sha256(report).hexdigest()}"
        return sealer.finish(full_origin, time, allow_empty=True), full_origin, report


def report_digest_in_origin(origin: str | None) -> str | None:
    """The import report's SHA-256 recorded in a log origin, if any."""
    if origin is None or ORIGIN_MARK not in origin:
        return None
    return origin.rsplit(ORIGIN_MARK, 1)[1]


def check_import_report(logdir: Path, keyring: Keyring) -> str:
    """Verify the log and that ``import-report.json`` is the one its origin names; return the digest."""
    report = verify_log(logdir, keyring, record_type=ACCESS_RECORD_TYPE)
    if not report.ok:
        raise IntegrityError(f"log does not verify ({describe_problems(report.problems)})", path=logdir)
    expected = report_digest_in_origin(report.origin)
    if expected is None:
        raise InputError("the log's origin names no import report", path=logdir)
    path = logdir / IMPORT_REPORT_FILE
    if not path.is_file():
        raise IntegrityError("import report missing", path=path)
    actual = sha256_file(path)
    if actual != expected:
        raise IntegrityError(f"import report SHA-256 {actual} is not {expected} named by the signed log", path=path)
    return actual
