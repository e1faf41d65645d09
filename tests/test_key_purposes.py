"""Key purposes: a log producer's key cannot vouch for a report or an approvals log, and vice versa."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INPUT, InputError, IntegrityError, KeyMaterialError
from audit.logs.approvals import load_approvals
from audit.logs.record_types import APPROVAL_RECORD_TYPE, sealable_records
from audit.logs.verify import verify_log
from audit.logs.writer import seal
from audit.pipeline import replay
from audit.report.publish import REPORT_FILE
from audit.report.statement import sign_statement
from audit.report.verify import verify_report
from audit.signing.dsse import envelope_bytes
from audit.signing.keys import KeyPurpose, Keyring, SigningKey, load_keyring, load_private_key
from fixtures.passphrase import FIXTURE_PASSPHRASE
from tests.conftest import ACCESS_LOG, APPROVALS_LOG, FIXTURES, KEYS, POLICIES

NOW = datetime(2022, 6, 30, tzinfo=UTC)


def _key(name: str) -> SigningKey:
    return load_private_key(KEYS / f"{name}.key", FIXTURE_PASSPHRASE)


def test_replay_refuses_to_sign_with_a_key_not_trusted_for_reports(tmp_path: Path, keyring: Keyring) -> None:
    out = tmp_path / "report"
    with pytest.raises(KeyMaterialError, match="not trusted for this purpose"):
        replay(ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, _key("log-producer"), out, now=NOW)
    assert not out.exists()


def test_report_signed_by_the_log_producer_is_refused(tmp_path: Path, keyring: Keyring) -> None:
    out = tmp_path / "report"
    outcome = replay(ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, _key("auditor"), out, now=NOW)
    forged = sign_statement(outcome.statement, _key("log-producer"))
    (out / REPORT_FILE).write_bytes(envelope_bytes(forged))
    with pytest.raises(IntegrityError, match="wrong_purpose"):
        verify_report(out / REPORT_FILE, keyring)


def test_approvals_sealed_by_the_auditor_are_refused(tmp_path: Path, keyring: Keyring) -> None:
    approvals = tmp_path / "approvals"
    seal(
        sealable_records(FIXTURES / "approvals.jsonl", APPROVAL_RECORD_TYPE),
        out=approvals,
        key=_key("auditor"),
        origin="forged",
        record_type=APPROVAL_RECORD_TYPE,
    )
    assert "key-wrong-purpose" in {p.code for p in verify_log(approvals, keyring).problems}
    with pytest.raises(IntegrityError, match="approvals log failed verification"):
        load_approvals(approvals, keyring)


def test_sealing_refuses_a_key_not_listed_for_the_purpose(tmp_path: Path, keyring: Keyring) -> None:
    with pytest.raises(KeyMaterialError, match="not trusted for this purpose"):
        seal(
            sealable_records(FIXTURES / "approvals.jsonl", APPROVAL_RECORD_TYPE),
            out=tmp_path / "a",
            key=_key("log-producer"),
            origin="x",
            record_type=APPROVAL_RECORD_TYPE,
            keyring=keyring,
        )
    assert not (tmp_path / "a").exists()


def test_fixture_keys_each_have_one_purpose(keyring: Keyring) -> None:
    assert sorted(e.purposes for e in keyring.keys) == [("approvals",), ("log",), ("report",)]


def _legacy_ring(tmp_path: Path) -> tuple[Path, list[str]]:
    """A keyring as written before purposes existed: entries without ``purposes``."""
    doc = json.loads((KEYS / "keyring.json").read_text())
    for entry in doc["keys"]:
        del entry["purposes"]
    ring = tmp_path / "old-ring.json"
    ring.write_text(json.dumps(doc))
    return ring, [e["key_id"] for e in doc["keys"]]


def test_keyring_entry_without_purposes_is_refused_not_trusted_for_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ring, ids = _legacy_ring(tmp_path)
    with pytest.raises(InputError) as caught:
        load_keyring(ring)
    assert "names no purposes" in caught.value.reason and f"keyring migrate {ring}" in (caught.value.hint or "")
    assert main(["log", "verify", str(ACCESS_LOG), "--keyring", str(ring)]) == EXIT_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {ring}: key {ids[0][:16]}") and "keyring migrate" in err[0]


def test_keyring_migrate_writes_purposes_out_loudly_and_narrows_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ring, ids = _legacy_ring(tmp_path)
    assert main(["keyring", "migrate", str(ring), "--purpose", f"{ids[0][:12]}=log"]) == EXIT_CLEAN
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == len(ids) - 1 and all("was trusted for every purpose" in w for w in warnings)
    assert f"{len(ids)} key(s) migrated" in captured.out
    migrated = load_keyring(ring)
    assert migrated.keys[0].purposes == (KeyPurpose.log,)
    assert all(entry.purposes == tuple(KeyPurpose) for entry in migrated.keys[1:])
    assert main(["log", "verify", str(ACCESS_LOG), "--keyring", str(ring)]) != EXIT_INPUT  # loads again
    assert main(["keyring", "migrate", str(ring), "--purpose", "zz=log"]) == EXIT_INPUT
