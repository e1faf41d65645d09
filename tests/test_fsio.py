"""Early write-back: a large report file starts reaching the disk while it is written; no byte changes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from audit import fsio
from audit.fsio import EarlyWriteback
from audit.report.findings import FindingsSpool


def _advice(monkeypatch: pytest.MonkeyPatch, every: int) -> list[tuple[int, int, int]]:
    calls: list[tuple[int, int, int]] = []
    real = os.posix_fadvise

    def record(fd: int, offset: int, length: int, advice: int) -> None:
        calls.append((offset, length, advice))
        real(fd, offset, length, advice)  # the real call too: it must not fail on a file being written

    monkeypatch.setattr(fsio, "WRITEBACK_EVERY", every)
    monkeypatch.setattr(fsio, "_FADVISE", record)
    return calls


def test_each_stretch_written_is_advised_once_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _advice(monkeypatch, 1000)
    with (tmp_path / "big").open("xb") as fh:
        writeback = EarlyWriteback(fh.fileno())
        for size in (600, 300, 200, 2500, 10, 900):
            fh.write(b"x" * size)
            writeback.wrote(size)
    # 1100 written: advise [0, 1100); 3600: advise [1100, 3600); the last 910 bytes are left to the fsync
    assert calls == [(0, 1100, os.POSIX_FADV_DONTNEED), (1100, 2500, os.POSIX_FADV_DONTNEED)]
    assert (tmp_path / "big").read_bytes() == b"x" * 4510


def test_findings_written_with_early_writeback_are_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [b'{"n":%d,"pad":"%s"}\n' % (i, b"p" * (i % 97)) for i in range(3000)]

    def write(name: str) -> bytes:
        scratch = tmp_path / name
        scratch.mkdir()
        with FindingsSpool(scratch, run_size=700) as spool:
            for i, line in enumerate(lines):
                spool.add_encoded((("2022-01-01T00:00:00.000000+00:00", (f"e{i % 50:03d}",), "r"), line))
            list(spool.writing(scratch / "findings.jsonl"))
        return (scratch / "findings.jsonl").read_bytes()

    monkeypatch.setattr(fsio, "_FADVISE", None)  # where posix_fadvise is missing: nothing is advised
    without = write("without")
    calls = _advice(monkeypatch, 4096)
    with_advice = write("with")
    assert with_advice == without and len(without) > 8 * 4096
    assert len(calls) >= 8
    assert [offset for offset, _, _ in calls] == [0] + [o + n for o, n, _ in calls[:-1]]  # contiguous, in order


def test_the_exports_advise_as_they_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from audit.report import exports

    calls = _advice(monkeypatch, 4096)
    monkeypatch.setattr(exports, "_SINK_BUFFER", 1000)
    sink = exports._Sink(tmp_path / "findings.csv")
    for i in range(40):
        sink.write(b"%04d" % i * 100)
    digest = sink.close()
    data = (tmp_path / "findings.csv").read_bytes()
    assert len(data) == 16_000 and digest == hashlib.sha256(data).hexdigest()
    # drained 1,200 bytes at a time: advised every fourth drain; the last 1,600 bytes are left to the fsync
    assert [(offset, length) for offset, length, _ in calls] == [(0, 4800), (4800, 4800), (9600, 4800)]
