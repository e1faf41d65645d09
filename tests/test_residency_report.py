"""Residency findings folded into the signed report, replay from s3://, and the demo's residency stage."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INPUT, EXIT_INTEGRITY, EXIT_VIOLATIONS
from audit.report.statement import RESIDENCY_SUBJECT
from audit.report.verify import verify_report
from audit.signing.keys import Keyring
from audit.sources.s3 import local_log_dir, parse_s3_url
from tests.conftest import ACCESS_LOG, APPROVALS_LOG, FIXTURES, KEYS, POLICIES, flip_byte

KEYRING = str(KEYS / "keyring.json")
AUDITOR = str(KEYS / "auditor.key")
INVENTORY = str(FIXTURES / "residency" / "inventory-2022-06.yaml")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def _replay(logdir: str, out: Path) -> int:
    return main(
        [
            "replay",
            logdir,
            "--keyring",
            KEYRING,
            "--approvals",
            str(APPROVALS_LOG),
            "--report-key",
            AUDITOR,
            "--out",
            str(out),
            "--policy",
            str(POLICIES),
        ]
    )


def _into_report(out: Path, *extra: str) -> int:
    return main(
        [
            "residency",
            "scan",
            "-p",
            "inventory",
            "--inventory",
            INVENTORY,
            "--as-of",
            "2022-06-30",
            "--policy",
            str(POLICIES),
            "--into-report",
            str(out),
            "--keyring",
            KEYRING,
            "--report-key",
            AUDITOR,
            *extra,
        ]
    )


@pytest.fixture
def report_dir(tmp_path: Path, fixture_passphrase: None) -> Path:
    out = tmp_path / "report"
    assert _replay(str(ACCESS_LOG), out) == EXIT_VIOLATIONS
    return out


def test_signed_report_carries_residency_findings_and_still_verifies(
    report_dir: Path, keyring: Keyring, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (report_dir / "findings.jsonl").read_bytes()
    assert _into_report(report_dir) == EXIT_VIOLATIONS
    result = verify_report(
        report_dir / "report.intoto.json", keyring, log=ACCESS_LOG, policy=POLICIES, approvals=APPROVALS_LOG
    )
    assert result.ok, [c for c in result.checks if not c.ok]
    residency = result.statement.predicate.residency
    assert residency is not None
    assert {f.rule_id for f in residency.findings} == {
        "copy-outside-us",
        "unclassified-store",
        "singapore-after-deadline",
        "own-dc-not-phased-out",
    }
    subjects = {s.name: s.digest["sha256"] for s in result.statement.subject}
    assert subjects[RESIDENCY_SUBJECT] == residency.inventory_sha256
    assert any(name.startswith("log:") for name in subjects)  # the replay's subjects are kept
    assert (report_dir / "findings.jsonl").read_bytes() == before
    assert "## Residency" in (report_dir / "report.md").read_text()
    capsys.readouterr()
    assert main(["report", "verify", str(report_dir / "report.intoto.json"), "--keyring", KEYRING]) == EXIT_CLEAN
    assert "OK   residency-inventory.json" in capsys.readouterr().out


def test_folding_twice_replaces_the_section(report_dir: Path, keyring: Keyring) -> None:
    assert _into_report(report_dir) == EXIT_VIOLATIONS
    later = ("--deadline", "singapore_backup=2030-01-01", "--deadline", "own_dc=2030-01-01")
    assert _into_report(report_dir, *later) == EXIT_VIOLATIONS
    result = verify_report(report_dir / "report.intoto.json", keyring)
    assert result.ok
    residency = result.statement.predicate.residency
    assert residency is not None
    assert {name: str(when) for name, when in residency.deadlines.items()} == {
        "own_dc": "2030-01-01",
        "singapore_backup": "2030-01-01",
    }
    assert [s.name for s in result.statement.subject].count(RESIDENCY_SUBJECT) == 1


def test_tampered_residency_inventory_fails_report_verify(report_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _into_report(report_dir) == EXIT_VIOLATIONS
    flip_byte(report_dir / RESIDENCY_SUBJECT, 10)
    capsys.readouterr()
    assert main(["report", "verify", str(report_dir / "report.intoto.json"), "--keyring", KEYRING]) == EXIT_INTEGRITY
    assert "FAIL residency-inventory.json" in capsys.readouterr().out


def test_into_report_refuses_a_report_that_does_not_verify(
    report_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = report_dir / "report.intoto.json"
    envelope = json.loads(report.read_text())
    envelope["signatures"][0]["sig"] = envelope["signatures"][0]["sig"][::-1]
    report.write_text(json.dumps(envelope))
    tampered = report.read_bytes()
    assert _into_report(report_dir) == EXIT_INTEGRITY
    assert report.read_bytes() == tampered
    assert not (report_dir / RESIDENCY_SUBJECT).exists()


def test_into_report_needs_keyring_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "residency",
            "scan",
            "-p",
            "inventory",
            "--inventory",
            INVENTORY,
            "--policy",
            str(POLICIES),
            "--into-report",
            str(tmp_path),
        ]
    )
    assert rc == EXIT_INPUT
    assert "--keyring" in capsys.readouterr().err


# ---------------------------------------------------------------------------- s3:// logs


def _upload(bucket: str, prefix: str, root: Path) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    for path in sorted(root.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"{prefix}{path.relative_to(root).as_posix()}")


@pytest.mark.usefixtures("aws_env", "fixture_passphrase")
def test_replay_reads_a_sealed_log_from_s3(tmp_path: Path) -> None:
    assert _replay(str(ACCESS_LOG), tmp_path / "local") == EXIT_VIOLATIONS
    with mock_aws():
        _upload("audit-logs", "prod/access/", ACCESS_LOG)
        assert _replay("s3://audit-logs/prod/access", tmp_path / "s3") == EXIT_VIOLATIONS
    local = (tmp_path / "local" / "findings.jsonl").read_bytes()
    remote = (tmp_path / "s3" / "findings.jsonl").read_bytes()
    assert remote == local and remote.count(b"\n") == 70  # every broken commitment (ADR 0007)


@pytest.mark.usefixtures("aws_env", "fixture_passphrase")
def test_tampered_log_in_s3_fails_closed(tmp_path: Path) -> None:
    copy = tmp_path / "access"
    copy.mkdir()
    for path in ACCESS_LOG.rglob("*"):
        if path.is_file():
            target = copy / path.relative_to(ACCESS_LOG)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    flip_byte(next((copy / "segments").glob("*.jsonl")), 40)
    with mock_aws():
        _upload("audit-logs", "tampered/", copy)
        assert _replay("s3://audit-logs/tampered/", tmp_path / "out") == EXIT_INTEGRITY
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("aws_env")
def test_s3_prefix_errors(tmp_path: Path) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="audit-logs")
        s3.put_object(Bucket="audit-logs", Key="evil/../../escape", Body=b"x")
        with pytest.raises(Exception, match="would escape"), local_log_dir("s3://audit-logs/evil"):
            pass
        with pytest.raises(Exception, match="no objects"), local_log_dir("s3://audit-logs/nothing-here"):
            pass
        with pytest.raises(Exception, match="NoSuchBucket"), local_log_dir("s3://missing-bucket/x"):
            pass


def test_s3_url_parsing_and_local_paths(tmp_path: Path) -> None:
    assert parse_s3_url("s3://b/a/b/") == ("b", "a/b/")
    assert parse_s3_url("s3://b") == ("b", "")
    with local_log_dir(tmp_path) as same:
        assert same == tmp_path


# ---------------------------------------------------------------------------- demo


def test_demo_shows_residency_findings_in_a_verified_report(
    tmp_path: Path, keyring: Keyring, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--fixtures", str(FIXTURES), "--policy", str(POLICIES)]) == EXIT_CLEAN
    printed = capsys.readouterr().out
    assert "residency 2/2: verified the re-signed report" in printed
    assert "Residency findings as of 2022-06-30" in printed
    result = verify_report(out / "report" / "report.intoto.json", keyring)
    assert result.ok
    residency = result.statement.predicate.residency
    assert residency is not None
    scopes = {s.provider for s in residency.scopes}
    assert scopes == {"aws", "inventory"}
    rules = {(f.rule_id, f.provider) for f in residency.findings}
    assert ("store-not-on-oci", "aws") in rules and ("singapore-after-deadline", "aws") in rules
    assert ("own-dc-not-phased-out", "own_dc") in rules


@pytest.mark.usefixtures("aws_env")
def test_log_verify_reads_a_sealed_log_from_s3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        _upload("audit-logs", "prod/access/", ACCESS_LOG)
        assert main(["log", "verify", "s3://audit-logs/prod/access", "--keyring", KEYRING, "--format", "json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["log"] == "s3://audit-logs/prod/access" and doc["tree_size"] == 2993
        assert main(["log", "verify", "s3://audit-logs/nothing-here/", "--keyring", KEYRING]) == EXIT_INPUT


def test_into_report_refuses_a_report_whose_findings_changed(
    report_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = report_dir / "report.intoto.json"
    signed = report.read_bytes()
    flip_byte(report_dir / "findings.jsonl", 40)
    assert _into_report(report_dir) == EXIT_INTEGRITY
    assert "findings.jsonl of the report does not verify" in capsys.readouterr().err
    assert report.read_bytes() == signed
    assert not (report_dir / RESIDENCY_SUBJECT).exists()
