"""``explain``: every finding of the seed-scenario report has a decision trace naming its rule and row."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INPUT, EXIT_INTEGRITY, InputError
from audit.explain import explain
from audit.pipeline import replay
from audit.report.findings import iter_findings
from audit.report.publish import FINDINGS_FILE
from audit.signing.keys import Keyring
from tests.conftest import ACCESS_LOG, APPROVALS_LOG, KEYS, POLICIES, flip_byte

NOW = datetime(2022, 6, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from audit.signing.keys import load_keyring, load_private_key
    from fixtures.passphrase import FIXTURE_PASSPHRASE

    out = tmp_path_factory.mktemp("explain") / "report"
    keyring = load_keyring(KEYS / "keyring.json")
    key = load_private_key(KEYS / "auditor.key", FIXTURE_PASSPHRASE)
    replay(ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, key, out, now=NOW)
    return out


def test_every_finding_of_the_demo_is_explained_by_a_request_that_breaks_its_commitment(
    report: Path, keyring: Keyring
) -> None:
    findings = list(iter_findings(report / FINDINGS_FILE))
    assert len(findings) > 50
    for finding in findings:
        result = explain(finding.id, report, keyring, log=ACCESS_LOG, policy=POLICIES, approvals=APPROVALS_LOG)
        deciding = result.deciding
        assert deciding is not None, finding.id
        broken = next(d for d in deciding.broken if d.rule_id == finding.rule_id)
        assert broken.commitment == finding.commitment
        assert broken.row is not None and finding.policy_row is not None
        assert (broken.row.file, broken.row.line) == (finding.policy_row.file, finding.policy_row.line)
        assert result.event is not None and result.event.event_id in finding.event_ids
        assert result.commitment is not None and result.commitment.id == finding.commitment
        assert all(
            int(r.fields[0]) < int(deciding.decision.row.fields[0])
            for r in deciding.not_matched
            if deciding.decision.row is not None
        )


def test_explain_text_and_json(report: Path, capsys: pytest.CaptureFixture[str]) -> None:
    finding = next(f for f in iter_findings(report / FINDINGS_FILE) if f.rule_id == "store-outside-oci-us")
    args = [
        "explain",
        finding.id,
        "--report",
        str(report),
        "--keyring",
        str(KEYS / "keyring.json"),
        "--log",
        str(ACCESS_LOG),
        "--policy",
        str(POLICIES),
        "--approvals",
        str(APPROVALS_LOG),
    ]
    assert main(args) == EXIT_CLEAN
    text = capsys.readouterr().out
    assert f"finding {finding.id}: store-outside-oci-us (C3" in text
    assert "<- this finding" in text and "breaks C3 by rule store-outside-oci-us" in text
    assert "stated in seeds/" in text
    assert main([*args, "--format", "json"]) == EXIT_CLEAN
    doc = json.loads(capsys.readouterr().out)
    assert doc["finding"]["id"] == finding.id
    deciding = doc["requests"][doc["deciding_request"]]
    assert any(b["rule_id"] == "store-outside-oci-us" for b in deciding["broken"])


def test_explain_without_the_log_says_what_to_pass(report: Path, keyring: Keyring) -> None:
    finding = next(iter(iter_findings(report / FINDINGS_FILE)))
    result = explain(finding.id, report, keyring)
    assert result.requests == () and result.note is not None and "--log" in result.note


def test_unknown_finding_id_is_an_input_error(
    report: Path, keyring: Keyring, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(InputError, match="no finding F-0000"):
        explain("F-0000", report, keyring)
    assert main(["explain", "F-0000", "--report", str(report), "--keyring", str(KEYS / "keyring.json")]) == EXIT_INPUT


def test_explain_refuses_a_tampered_log(report: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "access"
    shutil.copytree(ACCESS_LOG, log)
    flip_byte(log / "segments" / "00000001.jsonl", 100)
    finding = next(iter(iter_findings(report / FINDINGS_FILE)))
    code = main(
        [
            "explain",
            finding.id,
            "--report",
            str(report),
            "--keyring",
            str(KEYS / "keyring.json"),
            "--log",
            str(log),
            "--policy",
            str(POLICIES),
            "--approvals",
            str(APPROVALS_LOG),
        ]
    )
    assert code == EXIT_INTEGRITY
    assert "does not verify" in capsys.readouterr().err
