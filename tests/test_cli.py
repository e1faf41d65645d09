"""The CLI end to end through ``main(argv)``: exit codes, one-line errors, no partial output."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INPUT, EXIT_INTEGRITY, EXIT_VIOLATIONS
from audit.report.publish import OWN_FILES
from audit.signing.keys import PASSPHRASE_ENV
from tests.conftest import ACCESS_LOG, APPROVALS_LOG, FIXTURES, KEYS, POLICIES, REPO, flip_byte

KEYRING = str(KEYS / "keyring.json")
PRODUCER = str(KEYS / "log-producer.key")
AUDITOR = str(KEYS / "auditor.key")


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def _write_events(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _good_lines(n: int = 3) -> list[str]:
    return (FIXTURES / "events.jsonl").read_text().splitlines()[:n]


@pytest.mark.usefixtures("fixture_passphrase")
def test_seal_malformed_json_line_exits_2_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = _write_events(tmp_path / "events.jsonl", [*_good_lines(2), '{"event_id": "x",'])
    out = tmp_path / "log"
    assert main(["log", "seal", str(events), "--key", PRODUCER, "--out", str(out)]) == EXIT_INPUT
    line = _one_line_error(capsys)
    assert f"{events}:3:" in line and "malformed JSON" in line
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [events]


@pytest.mark.usefixtures("fixture_passphrase")
def test_seal_unknown_field_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = json.loads(_good_lines(1)[0])
    record["actor"]["favourite_colour"] = "blue"
    events = _write_events(tmp_path / "events.jsonl", [*_good_lines(1), json.dumps(record)])
    assert main(["log", "seal", str(events), "--key", PRODUCER, "--out", str(tmp_path / "log")]) == EXIT_INPUT
    line = _one_line_error(capsys)
    assert f"{events}:2:" in line and "actor.favourite_colour: unknown field" in line


@pytest.mark.usefixtures("fixture_passphrase")
def test_seal_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.jsonl"
    assert main(["log", "seal", str(missing), "--key", PRODUCER, "--out", str(tmp_path / "log")]) == EXIT_INPUT
    assert f"{missing}: no such file" in _one_line_error(capsys)


def test_seal_with_wrong_passphrase_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "not the passphrase")
    events = _write_events(tmp_path / "events.jsonl", _good_lines())
    assert main(["log", "seal", str(events), "--key", PRODUCER, "--out", str(tmp_path / "log")]) == EXIT_INPUT
    line = _one_line_error(capsys)
    assert PRODUCER in line
    assert not (tmp_path / "log").exists()


@pytest.mark.usefixtures("fixture_passphrase")
def test_seal_then_verify_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = _write_events(tmp_path / "events.jsonl", _good_lines(25))
    out = tmp_path / "log"
    assert main(["log", "seal", str(events), "--key", PRODUCER, "--out", str(out), "--segment-size", "10"]) == 0
    assert len(list((out / "segments").glob("*.jsonl"))) == 3
    capsys.readouterr()
    assert main(["log", "verify", str(out), "--keyring", KEYRING, "--format", "json"]) == EXIT_CLEAN
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["tree_size"] == 25 and doc["problems"] == []


def test_log_verify_reports_tampering_with_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "access"
    shutil.copytree(ACCESS_LOG, log)
    flip_byte(log / "segments" / "00000001.jsonl", 100)
    assert main(["log", "verify", str(log), "--keyring", KEYRING]) == EXIT_INTEGRITY
    out = capsys.readouterr().out
    assert "event-modified" in out and "segments/00000001.jsonl:1" in out


def test_replay_report_and_verify_cycle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "residency-audit-fixtures-TEST-ONLY")
    log = tmp_path / "access"
    shutil.copytree(ACCESS_LOG, log)
    out = tmp_path / "report"
    code = main(
        [
            "replay",
            str(log),
            "--keyring",
            KEYRING,
            "--approvals",
            str(APPROVALS_LOG),
            "--policy",
            str(POLICIES),
            "--report-key",
            AUDITOR,
            "--out",
            str(out),
        ]
    )
    assert code == EXIT_VIOLATIONS
    assert {p.name for p in out.iterdir()} == {"report.intoto.json", *OWN_FILES}
    assert "C8" in (out / "report.md").read_text()
    report = str(out / "report.intoto.json")
    verify = [
        "report",
        "verify",
        report,
        "--keyring",
        KEYRING,
        "--log",
        str(log),
        "--policy",
        str(POLICIES),
        "--approvals",
        str(APPROVALS_LOG),
    ]
    assert main(verify) == EXIT_CLEAN
    # One byte of a log segment changed: the log subject no longer verifies.
    flip_byte(log / "segments" / "00000000.jsonl", 10)
    assert main(verify) == EXIT_INTEGRITY
    assert "FAIL log:" in capsys.readouterr().out


def test_report_verify_detects_one_changed_byte_in_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "residency-audit-fixtures-TEST-ONLY")
    out = tmp_path / "report"
    assert (
        main(
            [
                "replay",
                str(ACCESS_LOG),
                "--keyring",
                KEYRING,
                "--approvals",
                str(APPROVALS_LOG),
                "--policy",
                str(POLICIES),
                "--report-key",
                AUDITOR,
                "--out",
                str(out),
            ]
        )
        == EXIT_VIOLATIONS
    )
    report = out / "report.intoto.json"
    original = report.read_bytes()
    for offset in (20, len(original) // 2, len(original) - 30):
        flip_byte(report, offset)
        capsys.readouterr()
        assert main(["report", "verify", str(report), "--keyring", KEYRING]) == EXIT_INTEGRITY, offset
        assert "Traceback" not in capsys.readouterr().err
        report.write_bytes(original)
    capsys.readouterr()
    assert main(["report", "verify", str(report), "--keyring", KEYRING]) == EXIT_CLEAN
    printed = capsys.readouterr().out
    assert "NOT CHECKED log:" in printed and "NOT CHECKED policy/policy.csv" in printed
    assert "NOT CHECKED findings.jsonl" not in printed
    flip_byte(out / "findings.jsonl", 50)
    assert main(["report", "verify", str(report), "--keyring", KEYRING]) == EXIT_INTEGRITY


def test_ctrl_c_during_a_replay_says_so_in_one_line_and_publishes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: typer turns Ctrl-C into a silent exit 130; the one-line error was never printed."""
    from audit.report.findings import FindingsSpool

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setenv(PASSPHRASE_ENV, "residency-audit-fixtures-TEST-ONLY")
    monkeypatch.setattr(FindingsSpool, "add_encoded", interrupted)  # pressed while findings come in
    out = tmp_path / "report"
    args = ["--approvals", str(APPROVALS_LOG), "--policy", str(POLICIES), "--report-key", AUDITOR, "--out", str(out)]
    code = main(["replay", str(ACCESS_LOG), "--keyring", KEYRING, *args])
    captured = capsys.readouterr()
    assert code == 130
    assert captured.err.strip() == "error: interrupted; nothing was published"
    assert not out.exists()


def test_replay_of_a_tampered_log_exits_3_without_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "residency-audit-fixtures-TEST-ONLY")
    log = tmp_path / "access"
    shutil.copytree(ACCESS_LOG, log)
    flip_byte(log / "segments" / "00000003.jsonl", 200)
    out = tmp_path / "report"
    code = main(
        [
            "replay",
            str(log),
            "--keyring",
            KEYRING,
            "--approvals",
            str(APPROVALS_LOG),
            "--policy",
            str(POLICIES),
            "--report-key",
            AUDITOR,
            "--out",
            str(out),
        ]
    )
    assert code == EXIT_INTEGRITY
    assert "access log failed verification" in _one_line_error(capsys)
    assert not (out / "report.intoto.json").exists()


def test_demo_runs_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == EXIT_CLEAN
    printed = capsys.readouterr().out
    assert "demo OK" in printed and "5/5 verified the signed report" in printed
    for cid in ("C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9"):
        assert cid in printed
    # A second run replaces the previous demo output; a foreign directory is refused.
    assert main(["demo", "--out", str(out)]) == EXIT_CLEAN
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    capsys.readouterr()
    assert main(["demo", "--out", str(foreign)]) == EXIT_INPUT
    assert (foreign / "precious.txt").read_text() == "keep me"


def test_keygen_requires_passphrase_or_explicit_unencrypted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    key = tmp_path / "k.key"
    assert main(["keygen", "--out", str(key)]) == EXIT_INPUT
    assert PASSPHRASE_ENV in _one_line_error(capsys)
    assert not key.exists()
    assert main(["keygen", "--out", str(key), "--unencrypted", "--keyring", str(tmp_path / "ring.json")]) == 2
    assert "--purpose" in _one_line_error(capsys) and not key.exists()
    assert (
        main(
            ["keygen", "--out", str(key), "--unencrypted", "--keyring", str(tmp_path / "ring.json"), "--purpose", "log"]
        )
        == 0
    )
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert "UNENCRYPTED" in capsys.readouterr().err
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")
    enc = tmp_path / "e.key"
    assert (
        main(
            [
                "keygen",
                "--out",
                str(enc),
                "--keyring",
                str(tmp_path / "ring.json"),
                "--label",
                "prod",
                "--purpose",
                "report",
                "--purpose",
                "approvals",
            ]
        )
        == 0
    )
    assert b"ENCRYPTED PRIVATE KEY" in enc.read_bytes()
    ring = json.loads((tmp_path / "ring.json").read_text())
    assert len(ring["keys"]) == 2 and ring["keys"][1]["label"] == "prod"
    assert ring["keys"][0]["purposes"] == ["log"] and ring["keys"][1]["purposes"] == ["report", "approvals"]


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "seal"]) == EXIT_INPUT
    assert main(["no-such-command"]) == EXIT_INPUT


def test_python_dash_m_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "audit", "--help"], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert proc.returncode == 0
    assert "replay" in proc.stdout and "demo" in proc.stdout
