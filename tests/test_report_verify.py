"""``report verify``: one verdict line, signer, generated_at, claims, not-checked list with flags, JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INTEGRITY
from audit.pipeline import ReplayOutcome, replay
from audit.report.publish import OWN_FILES, REPORT_FILE
from audit.signing.keys import load_keyring, load_private_key
from fixtures.passphrase import FIXTURE_PASSPHRASE
from tests.conftest import ACCESS_LOG, APPROVALS_LOG, KEYS, POLICIES
from tests.report_helpers import fixture_report

KEYRING = str(KEYS / "keyring.json")


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> ReplayOutcome:
    return fixture_report(tmp_path_factory.mktemp("verify") / "report")


def _verify(outcome: ReplayOutcome, *extra: str) -> list[str]:
    return ["report", "verify", str(outcome.outdir / REPORT_FILE), "--keyring", KEYRING, *extra]


def test_text_starts_with_the_verdict_signer_time_and_claims(
    outcome: ReplayOutcome, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_verify(outcome)) == EXIT_CLEAN
    lines = capsys.readouterr().out.splitlines()
    pred = outcome.statement.predicate
    assert lines[0] == "VERIFIED"
    assert lines[1].startswith("signer: ") and pred.signer is not None and pred.signer.key_id in lines[1]
    assert lines[2] == f"generated_at: {pred.generated_at.isoformat()}"
    assert lines[3].startswith("claims: period ") and f"{pred.summary.findings} findings" in lines[3]
    for verdict in pred.verdicts:
        assert any(line.strip().startswith(f"{verdict.id}: {verdict.verdict}") for line in lines)
    assert "NOT CHECKED completeness: pass --require-complete to check it" in lines
    assert "NOT CHECKED approvals-trust: pass --require-signed-approvals to check it" in lines
    assert any(line.startswith("NOT CHECKED log:") and "--log" in line for line in lines)
    assert any(line.startswith("NOT CHECKED policy/") and "--policy" in line for line in lines)


def test_json_has_the_same_verdict_and_checks(outcome: ReplayOutcome, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_verify(outcome, "--format", "json", "--require-signed-approvals")) == EXIT_CLEAN
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "VERIFIED"
    assert doc["claims"]["findings"] == outcome.statement.predicate.summary.findings
    names = {check["name"] for check in doc["checks"]}
    assert {*OWN_FILES, "approvals-trust"} <= names
    assert {"name": "completeness", "flag": "--require-complete"} in doc["not_checked"]


def test_require_complete_fails_an_unproven_report(outcome: ReplayOutcome, capsys: pytest.CaptureFixture[str]) -> None:
    assert outcome.statement.predicate.log.completeness == "unproven"
    assert main(_verify(outcome, "--require-complete")) == EXIT_INTEGRITY
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "FAILED (1 check(s) failed)"
    assert any(line.startswith("FAIL completeness: unproven") for line in out)


def test_require_signed_approvals_fails_a_plain_approvals_file(tmp_path: Path, keyring_path: str = KEYRING) -> None:

    approvals = tmp_path / "approvals.jsonl"
    shutil.copy(KEYS.parent / "approvals.jsonl", approvals)
    key = load_private_key(KEYS / "auditor.key", FIXTURE_PASSPHRASE)
    out = tmp_path / "report"
    replay(ACCESS_LOG, load_keyring(KEYS / "keyring.json"), approvals, POLICIES, key, out)
    args = ["report", "verify", str(out / REPORT_FILE), "--keyring", KEYRING]
    assert main(args) == EXIT_CLEAN
    assert main([*args, "--require-signed-approvals"]) == EXIT_INTEGRITY


def test_everything_checked_lists_nothing_as_not_checked(
    outcome: ReplayOutcome, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _verify(
        outcome,
        "--log",
        str(ACCESS_LOG),
        "--policy",
        str(POLICIES),
        "--approvals",
        str(APPROVALS_LOG),
        "--require-signed-approvals",
        "--format",
        "json",
    )
    assert main(args) == EXIT_CLEAN
    doc = json.loads(capsys.readouterr().out)
    assert doc["not_checked"] == [{"name": "completeness", "flag": "--require-complete"}]


def test_a_bad_signature_prints_failed_first(
    tmp_path: Path, outcome: ReplayOutcome, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "report"
    shutil.copytree(outcome.outdir, copy)
    envelope = json.loads((copy / REPORT_FILE).read_text())
    envelope["signatures"][0]["sig"] = envelope["signatures"][0]["sig"][::-1]
    (copy / REPORT_FILE).write_text(json.dumps(envelope))
    assert main(["report", "verify", str(copy / REPORT_FILE), "--keyring", KEYRING]) == EXIT_INTEGRITY
    assert capsys.readouterr().out.startswith("FAILED: ")
