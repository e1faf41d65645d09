"""Replay of the seed scenario finds exactly the labelled violations, and fails closed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from audit.errors import IntegrityError
from audit.pipeline import replay
from audit.policy import load_pack
from audit.replay.rules import load_rules, rule_book
from audit.report.publish import FINDINGS_FILE, REPORT_FILE
from audit.signing.keys import Keyring, SigningKey
from tests.conftest import APPROVALS_LOG, FIXTURES, POLICIES, flip_byte

NOW = datetime(2022, 6, 30, tzinfo=UTC)


def _expected() -> set[tuple[str, str]]:
    doc = json.loads((FIXTURES / "expected_findings.json").read_text())
    return {(f["event_id"], f["rule_id"]) for f in doc["findings"]}


def test_replay_finds_exactly_the_expected_findings(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey, access_log_copy: Path
) -> None:
    outcome = replay(access_log_copy, keyring, APPROVALS_LOG, POLICIES, auditor_key, tmp_path / "out", now=NOW)
    got = {(eid, f.rule_id) for f in outcome.findings for eid in f.event_ids}
    expected = _expected()
    assert got - expected == set(), "unexpected findings"
    assert expected - got == set(), "missed findings"
    assert len(outcome.findings) == len(expected)


def test_every_finding_cites_its_rule_commitment_and_deciding_row(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey, access_log_copy: Path
) -> None:
    rules = rule_book(load_pack(POLICIES), load_rules())  # the US pack names a commitment for every rule
    outcome = replay(access_log_copy, keyring, APPROVALS_LOG, POLICIES, auditor_key, tmp_path / "out", now=NOW)
    for finding in outcome.findings:
        assert finding.commitment == rules[finding.rule_id].metadata.commitment
        assert finding.policy_row is not None
        assert finding.policy_row.file.endswith("policy.csv")
        assert finding.rule_id in finding.policy_row.fields
        assert finding.position is not None and finding.position.segment.startswith("segments/")


def test_fixture_scenario_exercises_every_commitment_with_findings(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey, access_log_copy: Path
) -> None:
    outcome = replay(access_log_copy, keyring, APPROVALS_LOG, POLICIES, auditor_key, tmp_path / "out", now=NOW)
    by_commitment = outcome.statement.predicate.summary.by_commitment
    assert set(by_commitment) == {"C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9"}
    assert outcome.statement.predicate.approvals.signature_verified is True


def test_plain_jsonl_approvals_are_reported_as_unverified(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey, access_log_copy: Path
) -> None:
    outcome = replay(
        access_log_copy, keyring, FIXTURES / "approvals.jsonl", POLICIES, auditor_key, tmp_path / "out", now=NOW
    )
    assert outcome.statement.predicate.approvals.signature_verified is False
    assert outcome.statement.predicate.approvals.kind == "jsonl"
    assert {(e, f.rule_id) for f in outcome.findings for e in f.event_ids} == _expected()


def test_modified_event_fails_closed_and_writes_no_report(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey, access_log_copy: Path
) -> None:
    segment = access_log_copy / "segments" / "00000002.jsonl"
    flip_byte(segment, 40)
    out = tmp_path / "out"
    with pytest.raises(IntegrityError, match="access log failed verification"):
        replay(access_log_copy, keyring, APPROVALS_LOG, POLICIES, auditor_key, out, now=NOW)
    assert not (out / REPORT_FILE).exists()
    assert not (out / FINDINGS_FILE).exists()


def test_tampered_sealed_approvals_fail_closed(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey, access_log_copy: Path
) -> None:
    import shutil

    approvals = tmp_path / "approvals"
    shutil.copytree(APPROVALS_LOG, approvals)
    flip_byte(approvals / "segments" / "00000000.jsonl", 60)
    with pytest.raises(IntegrityError, match="approvals log failed verification"):
        replay(access_log_copy, keyring, approvals, POLICIES, auditor_key, tmp_path / "out", now=NOW)
    assert not (tmp_path / "out").exists()
