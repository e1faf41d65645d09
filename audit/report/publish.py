"""Publishing a report directory: build it beside the target, then swap it in whole.

:func:`report_staging` yields a fresh staging directory next to the output
directory and publishes it on success, so readers see the old report or the new
one, never half of one. An existing output directory is replaced only if it holds
nothing but report files; anything else there is refused, never overwritten. Write
failures become :class:`~audit.errors.InputError`. This module does not build,
sign or verify reports (see :mod:`audit.report.statement`, :mod:`audit.report.verify`).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TypeVar

from audit.errors import InputError
from audit.fsio import atomic_write
from audit.report.statement import RESIDENCY_SUBJECT

REPORT_FILE = "report.intoto.json"
FINDINGS_FILE = "findings.jsonl"
MARKDOWN_FILE = "report.md"
REPORT_FILES = frozenset({REPORT_FILE, FINDINGS_FILE, MARKDOWN_FILE, RESIDENCY_SUBJECT})
T = TypeVar("T")


def guard_write(write: Callable[[], T], outdir: Path) -> T:
    """Run ``write``; an :class:`OSError` becomes a one-line "cannot write report" input error."""
    try:
        return write()
    except OSError as exc:
        raise InputError(f"cannot write report: {exc.strerror or exc}", path=outdir) from None


def write_files(staging: Path, files: dict[str, bytes], outdir: Path) -> None:
    """Write each file into ``staging`` atomically (errors name ``outdir``)."""
    for name, data in files.items():
        guard_write(partial(atomic_write, staging / name, data), outdir)


@contextmanager
def report_staging(outdir: Path) -> Iterator[Path]:
    """A fresh directory beside ``outdir`` to build a report in, published whole on success.

    An existing ``outdir`` is replaced only if it holds nothing but report files
    (a previous run); anything else there is refused, never overwritten. If the
    body raises, the staging directory is removed and ``outdir`` is untouched. The
    check runs before the body and again just before publishing (a replay can take
    hours).
    """
    _refuse_foreign(outdir)
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
        foreign = sorted(p.name for p in outdir.iterdir() if p.name not in REPORT_FILES)
        if foreign:
            raise InputError(f"refusing to replace a directory holding other files ({foreign[0]}, ...)", path=outdir)


def _make_staging(outdir: Path) -> Path:
    outdir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))


def _publish(staging: Path, outdir: Path) -> None:
    _refuse_foreign(outdir)
    staging.chmod(0o755)
    if outdir.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.old.", dir=outdir.parent))
        outdir.replace(retired / outdir.name)
        staging.replace(outdir)
        shutil.rmtree(retired)
    else:
        staging.replace(outdir)


def write_report_dir(outdir: Path, files: dict[str, bytes]) -> None:
    """Publish a report directory holding exactly ``files``, all at once (see :func:`report_staging`)."""
    with report_staging(outdir) as staging:
        write_files(staging, files, outdir)
