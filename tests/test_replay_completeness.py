"""Replay states whether the log's completeness was proven, and fails closed on truncation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from audit.cli.app import main
from audit.errors import EXIT_INTEGRITY, EXIT_VIOLATIONS
from audit.report.publish import REPORT_FILE
from audit.report.verify import verify_report
from audit.signing.keys import PASSPHRASE_ENV, load_keyring
from tests.conftest import ACCESS_LOG, APPROVALS_LOG, KEYS, POLICIES

KEYRING = str(KEYS / "keyring.json")
BASE = [
    "--keyring",
    KEYRING,
    "--approvals",
    str(APPROVALS_LOG),
    "--policy",
    str(POLICIES),
    "--report-key",
    str(KEYS / "auditor.key"),
]


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "residency-audit-fixtures-TEST-ONLY")


def _completeness(out: Path) -> str:
    result = verify_report(out / REPORT_FILE, load_keyring(Path(KEYRING)))
    return result.statement.predicate.log.completeness


def _truncated(tmp_path: Path) -> Path:
    """The fixture log with its last segment and checkpoint deleted (tail truncation)."""
    log = tmp_path / "truncated"
    shutil.copytree(ACCESS_LOG, log)
    last = sorted((log / "checkpoints").glob("*.json"))[-1].stem
    for path in [log / "checkpoints" / f"{last}.json", *(log / "segments").glob(f"{last}.*")]:
        path.unlink()
    return log


def test_replay_without_a_pin_says_completeness_is_unproven(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert main(["replay", str(ACCESS_LOG), *BASE, "--out", str(out)]) == EXIT_VIOLATIONS
    assert "completeness UNPROVEN" in capsys.readouterr().err
    assert _completeness(out) == "unproven"
    assert "UNPROVEN" in (out / "report.md").read_text()


def test_replay_with_a_trusted_checkpoint_proves_completeness(tmp_path: Path) -> None:
    pin = sorted((ACCESS_LOG / "checkpoints").glob("*.json"))[-1]
    out = tmp_path / "report"
    assert main(["replay", str(ACCESS_LOG), *BASE, "--out", str(out), "--trusted-checkpoint", str(pin)]) == 1
    assert _completeness(out) == "proven"


def test_truncated_tail_fails_closed_against_a_pin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _truncated(tmp_path)
    pin = sorted((ACCESS_LOG / "checkpoints").glob("*.json"))[-1]
    out = tmp_path / "report"
    assert main(["replay", str(log), *BASE, "--out", str(out), "--trusted-checkpoint", str(pin)]) == EXIT_INTEGRITY
    assert "tail-truncated" in capsys.readouterr().err
    assert not out.exists()
    assert main(["replay", str(log), *BASE, "--out", str(out), "--expect-size", "2993"]) == EXIT_INTEGRITY
    assert not out.exists()


def test_require_complete_refuses_an_unpinned_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert main(["replay", str(ACCESS_LOG), *BASE, "--out", str(out), "--require-complete"]) == EXIT_INTEGRITY
    assert "completeness is unproven" in capsys.readouterr().err
    assert not out.exists()
