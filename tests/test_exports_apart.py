"""``replay --workers`` writes the exports in a forked child (:mod:`audit.report.exports_apart`), as one process would.

- with and without waivers, every file of the report is the single process's (the
  statement's digests too), and the child was used;
- spawned workers (a progress bar's thread running) keep the exports in this process;
- the child's error reaches the parent whole (kind, file, message): exit 2 for a
  write that fails, exit 4 when the child dies without answering; nothing is published;
- a parent that fails first stops the child; the child leaves Ctrl-C to the parent.
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import audit.report.exports_apart as exports_apart
from audit.errors import InputError, InternalError
from audit.models import Finding
from audit.pipeline import ReplayOutcome, replay
from audit.replay.options import Execution
from audit.report.exports import FindingExports
from audit.report.exports_apart import ExportsApart
from audit.report.findings import FindingsSpool, iter_findings
from audit.report.publish import FINDINGS_CSV, OCSF_FILE, REPORT_FILE
from audit.report.readback import findings_as_written
from audit.signing.keys import Keyring, SigningKey
from tests.conftest import ACCESS_LOG, APPROVALS_LOG, POLICIES
from tests.test_readback import FINDING as _FINDING
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
    assert two.statement == one.statement  # every digest, and the predicate's waiver counts


def test_spawned_workers_keep_the_exports_here(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
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
    capfd: pytest.CaptureFixture[str],
    child: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    monkeypatch.setattr("audit.pipeline.start_method", lambda: "fork")
    for name, value in child.items():  # inherited by the forked child
        monkeypatch.setattr(exports_apart, name, value)
    with pytest.raises(error, match=match):
        _replay(tmp_path, "two", keyring, auditor_key, 2, None)
    assert "Traceback" not in capfd.readouterr().err  # the child printed nothing
    assert list(tmp_path.iterdir()) == []  # nothing published, no staging directory left


def test_a_parent_that_fails_first_stops_the_child_which_leaves_ctrl_c_to_the_parent(tmp_path: Path) -> None:
    finding = _FINDING
    started, started_w = os.pipe()
    never, _ = os.pipe()
    with FindingsSpool(tmp_path) as spool:
        spool.add(finding)

        def stuck(line: bytes) -> bytes:
            os.write(started_w, b"x")
            os.read(never, 1)  # never returns
            return line

        apart = ExportsApart(spool, stuck, tmp_path / "findings.jsonl", (tmp_path / "a", tmp_path / "b"), {})
        assert os.read(started, 1) == b"x"  # the child is writing the exports
        os.kill(apart._process.pid or 0, signal.SIGINT)  # Ctrl-C reaches the whole process group
        apart._process.join(0.3)
        assert apart._process.is_alive()  # no KeyboardInterrupt traceback from the child: the parent decides
        apart.abort()
        assert not apart._process.is_alive() and apart._process.exitcode is not None


def _findings(n: int) -> list[Finding]:
    return [
        _FINDING.model_copy(update={"time": datetime(2024, 1, 1 + (i * 7) % 28, tzinfo=UTC), "event_ids": (f"e{i}",)})
        for i in range(n)
    ]


def test_spilled_and_merged_runs_read_alike_in_both_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Findings out of time order in many runs (merged down before the fork): the child's exports are the
    ones this process writes, and reading the settled spool twice gives the same lines."""
    monkeypatch.setattr("audit.report.findings.MERGE_WIDTH", 2)
    here, apart_dir = tmp_path / "here", tmp_path / "apart"
    here.mkdir()
    apart_dir.mkdir()
    with FindingsSpool(tmp_path, run_size=4) as spool:
        for finding in _findings(30):
            spool.add(finding)
        with ExportsApart(
            spool, None, tmp_path / "f.jsonl", (apart_dir / "a", apart_dir / "b"), {"C1": "one"}
        ) as apart:
            written = list(spool.writing(tmp_path / "f.jsonl"))
            assert list(spool.lines()) == written and len(written) == 30
            with FindingExports(here / "a", here / "b", {"C1": "one"}) as local:
                for _ in local.exporting(findings_as_written(written, tmp_path / "f.jsonl")):
                    pass
                assert apart.result() == local.close()
    assert [t.time for t in iter_findings(tmp_path / "f.jsonl")] == sorted(f.time for f in _findings(30))


def test_a_lost_finding_is_never_signed(tmp_path: Path) -> None:
    with FindingsSpool(tmp_path, run_size=4) as spool:
        for finding in _findings(9):
            spool.add(finding)
        spool.count += 1  # as if the merge had lost one
        with pytest.raises(InternalError, match="wrote 9 findings of the 10 taken"):
            list(spool.writing(tmp_path / "f.jsonl"))
        apart = ExportsApart(spool, None, tmp_path / "f.jsonl", (tmp_path / "a", tmp_path / "b"), {})
        with apart, pytest.raises(InternalError, match="the exports hold 9 findings, the spool 10"):
            apart.result()
