"""``replay --workers`` writes the exports in a forked child (:mod:`audit.report.exports_apart`), as one process would.

- with and without waivers, every file of the report is the single process's (the
  statement's digests too), and the child was used;
- spawned workers (a progress bar's thread running) keep the exports in this process;
- the child's error reaches the parent whole (kind, file, message): exit 2 for a
  write that fails, exit 4 when the child dies without answering; nothing is published;
- a parent that fails first stops the child.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import audit.replay.parallel as parallel
import audit.report.exports_apart as exports_apart
from audit.errors import InputError, InternalError
from audit.models import Finding
from audit.pipeline import ReplayOutcome, replay
from audit.replay.options import Execution
from audit.report.exports import FindingExports
from audit.report.exports_apart import ExportsApart
from audit.report.findings import FindingsSpool
from audit.report.publish import FINDINGS_CSV, OCSF_FILE, REPORT_FILE
from audit.signing.keys import Keyring, SigningKey
from tests.conftest import ACCESS_LOG, APPROVALS_LOG, POLICIES
from tests.test_waivers import WAIVERS

NOW = datetime(2022, 6, 30, tzinfo=UTC)


def _replay(
    tmp: Path, name: str, keyring: Keyring, key: SigningKey, workers: int, waivers: Path | None
) -> ReplayOutcome:
    return replay(
        ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, key, tmp / name, now=NOW, waivers=waivers,
        execution=Execution(workers=workers),
    )  # fmt: skip


def _files(outdir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(outdir.iterdir()) if p.name != REPORT_FILE}


class _Counted(ExportsApart):
    made = 0

    def __init__(self, *args: Any) -> None:
        type(self).made += 1
        super().__init__(*args)


@pytest.mark.parametrize("waived", [False, True])
def test_exports_written_apart_are_the_single_process_files(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey, monkeypatch: pytest.MonkeyPatch, waived: bool
) -> None:
    monkeypatch.setattr(parallel, "start_method", lambda: "fork")
    monkeypatch.setattr("audit.pipeline.start_method", lambda: "fork")
    monkeypatch.setattr("audit.pipeline.ExportsApart", _Counted)
    _Counted.made = 0
    waivers = None
    if waived:
        waivers = tmp_path / "waivers.yaml"
        waivers.write_text(WAIVERS)
    one = _replay(tmp_path, "one", keyring, auditor_key, 1, waivers)
    assert _Counted.made == 0  # one process writes its own exports
    two = _replay(tmp_path, "two", keyring, auditor_key, 2, waivers)
    assert _Counted.made == 1
    assert _files(two.outdir) == _files(one.outdir)
    assert b"Suppressed" in _files(two.outdir)[OCSF_FILE] if waived else True
    subjects = [(s.name, s.digest) for s in one.statement.subject]
    assert [(s.name, s.digest) for s in two.statement.subject] == subjects


def test_spawned_workers_keep_the_exports_here(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel, "start_method", lambda: "spawn")
    monkeypatch.setattr("audit.pipeline.start_method", lambda: "spawn")
    monkeypatch.setattr("audit.pipeline.ExportsApart", _Counted)
    _Counted.made = 0
    two = _replay(tmp_path, "two", keyring, auditor_key, 2, None)
    assert _Counted.made == 0 and (two.outdir / FINDINGS_CSV).exists()


class _FullDisk(FindingExports):
    def close(self) -> tuple[str, str]:
        raise InputError("cannot write: No space left on device", path=Path("staging") / FINDINGS_CSV)


def _dies(*args: Any) -> None:
    os._exit(1)


@pytest.mark.parametrize(
    ("child", "error", "match"),
    [
        ({"FindingExports": _FullDisk}, InputError, "No space left on device"),
        ({"_export": _dies}, InternalError, "ended without an answer"),
    ],
)
def test_the_childs_failure_fails_the_replay_and_publishes_nothing(
    tmp_path: Path,
    keyring: Keyring,
    auditor_key: SigningKey,
    monkeypatch: pytest.MonkeyPatch,
    child: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    monkeypatch.setattr(parallel, "start_method", lambda: "fork")
    monkeypatch.setattr("audit.pipeline.start_method", lambda: "fork")
    for name, value in child.items():  # inherited by the forked child
        monkeypatch.setattr(exports_apart, name, value)
    with pytest.raises(error, match=match) as caught:
        _replay(tmp_path, "two", keyring, auditor_key, 2, None)
    assert "Traceback" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # nothing published, no staging directory left


def test_a_parent_that_fails_first_stops_the_child(tmp_path: Path) -> None:
    finding = Finding(
        rule_id="r", commitment="C1", severity="low", title="t", message="m", remediation="r",
        event_ids=("e",), time=datetime(2024, 1, 1, tzinfo=UTC), actor_id="a",
    )  # fmt: skip
    with FindingsSpool(tmp_path) as spool:
        spool.add(finding)

        def stuck(line: bytes) -> bytes:
            os.read(os.pipe()[0], 1)  # never returns
            return line

        apart = ExportsApart(spool, stuck, tmp_path / "findings.jsonl", (tmp_path / "a", tmp_path / "b"), {})
        apart.abort()
        assert not apart._process.is_alive() and apart._process.exitcode is not None
