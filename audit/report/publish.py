"""Publishing a report directory: build it beside the target, then swap it in whole.

:func:`report_staging` yields a fresh staging directory next to the output
directory and publishes it on success, so readers see the old report or the new
one, never half of one. An existing output directory is replaced only if it holds
nothing but report files; anything else there is refused, never overwritten. Write
failures (a full disk included) become :class:`~audit.errors.InputError` naming the
file. Staging directories are named ``.OUTDIR.staging-HOST-PID-RANDOM`` (and
``.OUTDIR.old-...`` while an old report is swapped out), so the next run on the
same output removes those a killed run left once their process is gone. This
module does not build, sign or verify reports (see :mod:`audit.report.statement`,
:mod:`audit.report.verify`), nor lock the output against a concurrent run.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TypeVar

from audit.errors import InputError
from audit.fsio import atomic_write
from audit.locking import DirectoryLock
from audit.report.statement import RESIDENCY_SUBJECT

REPORT_FILE = "report.intoto.json"
FINDINGS_FILE = "findings.jsonl"
MARKDOWN_FILE = "report.md"
CASES_FILE = "cases.jsonl"
HTML_FILE = "report.html"
FINDINGS_CSV = "findings.csv"
CASES_CSV = "cases.csv"
OCSF_FILE = "findings.ocsf.jsonl"
WAIVERS_FILE = "waivers.yaml"
OWN_FILES = (FINDINGS_FILE, CASES_FILE, MARKDOWN_FILE, HTML_FILE, FINDINGS_CSV, CASES_CSV, OCSF_FILE)
"""The report's own files a replay writes, each a subject (checked by ``report verify`` when the report names it)."""
TIMESTAMP_FILE = "report.tsr"  # an RFC 3161 token over REPORT_FILE, added later (audit.report.timestamp)
REPORT_FILES = frozenset({REPORT_FILE, *OWN_FILES, WAIVERS_FILE, RESIDENCY_SUBJECT, TIMESTAMP_FILE})
T = TypeVar("T")


def guard_write(write: Callable[[], T], outdir: Path, *, path: Path | None = None) -> T:
    """Run ``write``; an :class:`OSError` becomes a one-line "cannot write" input error.

    The error names ``path`` (the file being written) if given, else the file the
    error is about, else ``outdir``.
    """
    try:
        return write()
    except OSError as exc:
        where = path or (Path(os.fsdecode(exc.filename)) if exc.filename else outdir)
        raise InputError(f"cannot write: {exc.strerror or exc}", path=where) from None


def write_files(staging: Path, files: dict[str, bytes], outdir: Path) -> None:
    """Write each file into ``staging`` atomically (errors name ``outdir``)."""
    for name, data in files.items():
        guard_write(partial(atomic_write, staging / name, data), outdir, path=staging / name)


@contextmanager
def report_staging(outdir: Path) -> Iterator[Path]:
    """A fresh directory beside ``outdir`` to build a report in, published whole on success.

    An existing ``outdir`` is replaced only if it holds nothing but report files
    (a previous run); anything else there is refused, never overwritten. If the
    body raises, the staging directory is removed and ``outdir`` is untouched. The
    check runs before the body and again just before publishing (a replay can take
    hours). The whole run holds ``outdir``'s lock (:class:`~audit.locking.DirectoryLock`):
    a second run on the same output fails at once with :class:`~audit.errors.LockedError`.
    Staging directories that killed runs left beside ``outdir`` are removed first
    (:func:`remove_abandoned_staging`).
    """
    with DirectoryLock(outdir):
        _refuse_foreign(outdir)
        remove_abandoned_staging(outdir)
        staging = guard_write(lambda: _make_staging(outdir), outdir)
        try:
            yield staging
            guard_write(lambda: _publish(staging, outdir), outdir)
        finally:
            if staging.exists():
                shutil.rmtree(staging)


def _refuse_foreign(outdir: Path) -> None:
    if outdir.exists():
        if not outdir.is_dir():
            raise InputError("report output path exists and is not a directory", path=outdir)
        foreign = sorted(  # a report file is a plain file: a directory or link by that name is not ours
            p.name for p in outdir.iterdir() if p.name not in REPORT_FILES or p.is_symlink() or not p.is_file()
        )
        if foreign:
            raise InputError(f"refusing to replace a directory holding other files ({foreign[0]}, ...)", path=outdir)


def _host_tag() -> str:
    """Eight hex digits naming this host (a PID means nothing on another one)."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _work_prefix(outdir: Path, role: str) -> str:
    return f".{outdir.name}.{role}-{_host_tag()}-{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a process we could have been: never ours to remove
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    return True


def abandoned_staging(outdir: Path) -> list[Path]:
    """Staging directories beside ``outdir`` whose run on this host is gone (killed, crashed).

    Only directories (never symbolic links) named as :func:`report_staging` names
    them, with this host's tag and the PID of a process that no longer exists.
    A PID reused since is taken as alive: its directory is left, never wrongly removed.
    A swapped-out old report (``.OUTDIR.old-...``) is left while ``OUTDIR`` is
    missing: the run was killed between two renames and it is the only report left.
    """
    roles = "staging|old" if outdir.exists() else "staging"
    pattern = re.compile(rf"\.{re.escape(outdir.name)}\.(?:{roles})-{_host_tag()}-(\d+)-[A-Za-z0-9_]+")
    try:
        entries = list(outdir.parent.iterdir())
    except OSError:
        return []
    found = []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and entry.is_dir() and not entry.is_symlink() and not _pid_alive(int(match.group(1))):
            found.append(entry)
    return sorted(found)


def remove_abandoned_staging(outdir: Path) -> list[Path]:
    """Remove :func:`abandoned_staging` directories (best effort); the ones removed."""
    removed = []
    for entry in abandoned_staging(outdir):
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(entry)
    return removed


def _make_staging(outdir: Path) -> Path:
    outdir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=_work_prefix(outdir, "staging"), dir=outdir.parent))


def _publish(staging: Path, outdir: Path) -> None:
    _refuse_foreign(outdir)
    staging.chmod(0o755)
    if outdir.exists():
        retired = Path(tempfile.mkdtemp(prefix=_work_prefix(outdir, "old"), dir=outdir.parent))
        outdir.replace(retired / outdir.name)
        staging.replace(outdir)
        shutil.rmtree(retired)
    else:
        staging.replace(outdir)


def write_report_dir(outdir: Path, files: dict[str, bytes]) -> None:
    """Publish a report directory holding exactly ``files``, all at once (see :func:`report_staging`)."""
    with report_staging(outdir) as staging:
        write_files(staging, files, outdir)
