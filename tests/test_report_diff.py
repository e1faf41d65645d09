"""``report diff OLD NEW``: cases new, resolved and continuing between two signed reports (monthly audits)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INTEGRITY, EXIT_VIOLATIONS
from audit.logs.record_types import ACCESS_RECORD_TYPE, sealable_records
from audit.logs.writer import seal
from audit.pipeline import replay
from audit.report.cases import iter_cases
from audit.report.publish import CASES_FILE, REPORT_FILE
from audit.signing.keys import load_keyring, load_private_key
from fixtures.passphrase import FIXTURE_PASSPHRASE
from tests.conftest import APPROVALS_LOG, FIXTURES, KEYS, POLICIES, flip_byte

KEYRING = str(KEYS / "keyring.json")
SPLIT_OLD = "2021-12-01"
SPLIT_NEW = "2021-11-01"


def _report(tmp: Path, name: str, keep: str, before: bool) -> Path:
    lines = (FIXTURES / "events.jsonl").read_bytes().splitlines(keepends=True)
    chosen = [ln for ln in lines if (json.loads(ln)["time"] < keep) == before]
    events = tmp / f"{name}.jsonl"
    events.write_bytes(b"".join(chosen))
    producer = load_private_key(KEYS / "log-producer.key", FIXTURE_PASSPHRASE)
    log = tmp / f"{name}-log"
    seal(sealable_records(events, ACCESS_RECORD_TYPE), out=log, key=producer, origin=name,
         record_type=ACCESS_RECORD_TYPE, segment_size=500)  # fmt: skip
    auditor = load_private_key(KEYS / "auditor.key", FIXTURE_PASSPHRASE)
    out = tmp / name
    replay(log, load_keyring(KEYS / "keyring.json"), APPROVALS_LOG, POLICIES, auditor, out)
    return out


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("diff")
    return _report(tmp, "old", SPLIT_OLD, True), _report(tmp, "new", SPLIT_NEW, False)


def _keys(out: Path) -> set[tuple[str, str, str, str]]:
    return {c.key for c in iter_cases(out / CASES_FILE)}


def test_json_diff_partitions_the_case_keys(reports: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    old, new = reports
    args = ["report", "diff", str(old / REPORT_FILE), str(new / REPORT_FILE), "--keyring", KEYRING]
    before, after = _keys(old), _keys(new)
    assert after - before and before - after and before & after, "the split gives all three kinds"
    assert main([*args, "--format", "json"]) == EXIT_VIOLATIONS
    doc = json.loads(capsys.readouterr().out)

    def keys(name: str) -> set[tuple[str, str, str, str]]:
        return {(g["rule_id"], g["commitment"], g["subject_kind"], g["subject"]) for g in doc[name]}

    assert keys("new_cases") == after - before
    assert keys("resolved") == before - after
    assert keys("continuing") == before & after
    assert doc["counts"] == {"new": len(after - before), "resolved": len(before - after),
                             "continuing": len(before & after)}  # fmt: skip


def test_text_diff_and_exit_codes(reports: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    old, new = reports
    assert main(["report", "diff", str(old / REPORT_FILE), str(new / REPORT_FILE), "--keyring", KEYRING]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{len(_keys(new) - _keys(old))} new, ")
    assert any(line.startswith("NEW ") for line in out) and any(line.startswith("RESOLVED ") for line in out)
    same = ["report", "diff", str(new / REPORT_FILE), str(new / REPORT_FILE), "--keyring", KEYRING]
    assert main(same) == EXIT_CLEAN
    assert capsys.readouterr().out.startswith(f"0 new, 0 resolved, {len(_keys(new))} continuing")
    # Going back in time: what is new in NEW is resolved in reverse, and no case is new
    back = ["report", "diff", str(new / REPORT_FILE), str(old / REPORT_FILE), "--keyring", KEYRING]
    assert main(back) == (EXIT_VIOLATIONS if _keys(old) - _keys(new) else EXIT_CLEAN)


def test_a_tampered_cases_file_fails(reports: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    old, new = reports
    copy = tmp_path / "new"
    shutil.copytree(new, copy)
    flip_byte(copy / CASES_FILE, 30)
    args = ["report", "diff", str(old / REPORT_FILE), str(copy / REPORT_FILE), "--keyring", KEYRING]
    assert main(args) == EXIT_INTEGRITY
