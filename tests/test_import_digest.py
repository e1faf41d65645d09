"""Offline CloudTrail digest validation catches each kind of tampering, and counts gaps exactly."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INTEGRITY
from audit.importers.cloudtrail_digest import Digest, DigestReport, signing_string, validate_digests
from tests.conftest import FIXTURES, KEYS

SAMPLES = FIXTURES / "sources"
CT = SAMPLES / "cloudtrail"
PUBLIC_KEYS = CT / "public-keys.json"
END = datetime(2021, 12, 6, 15, tzinfo=UTC)


@pytest.fixture
def trail(tmp_path: Path) -> tuple[Path, Path]:
    """Private copies of the sample log files and digests: (logs dir, digests dir)."""
    logs, digests = tmp_path / "logs", tmp_path / "digests"
    shutil.copytree(CT / "logs", logs)
    shutil.copytree(CT / "digests", digests)
    return logs, digests


def _digest(digests: Path, hour: int) -> Path:
    return next(digests.glob(f"*_20211206T{hour:02d}0000Z.json.gz"))


def _validate(logs: Path, digests: Path, **kwargs: object) -> DigestReport:
    return validate_digests(sorted(logs.iterdir()), digests, PUBLIC_KEYS, **kwargs)  # type: ignore[arg-type]


def _codes(report: DigestReport) -> list[str]:
    return sorted(p.code for p in report.problems)


def test_untouched_trail_validates(trail: tuple[Path, Path]) -> None:
    report = _validate(*trail, expect_end=END)
    assert report.ok, report.problems
    assert (report.digests, report.log_files, report.chains) == (6, 3, 1)


def test_modified_log_file(trail: tuple[Path, Path]) -> None:
    logs, digests = trail
    victim = sorted(logs.iterdir())[1]
    doc = json.loads(gzip.decompress(victim.read_bytes()))
    doc["Records"][0]["userIdentity"]["userName"] = "someone-else"
    victim.write_bytes(gzip.compress(json.dumps(doc).encode()))
    report = _validate(logs, digests)
    assert _codes(report) == ["log-file-modified"]
    assert report.problems[0].file == str(victim)


def test_recompressing_a_log_file_is_not_a_modification(trail: tuple[Path, Path]) -> None:
    logs, digests = trail
    victim = sorted(logs.iterdir())[0]
    victim.write_bytes(gzip.compress(gzip.decompress(victim.read_bytes()), compresslevel=1, mtime=12345))
    assert _validate(logs, digests).ok


def test_deleted_log_file(trail: tuple[Path, Path]) -> None:
    logs, digests = trail
    victim = sorted(logs.iterdir())[2]
    victim.unlink()
    report = _validate(logs, digests)
    assert _codes(report) == ["log-file-missing"]
    assert victim.name in report.problems[0].message


def test_deleted_run_of_three_digests_is_reported_as_three(trail: tuple[Path, Path]) -> None:
    logs, digests = trail
    for hour in (11, 12, 13):
        _digest(digests, hour).unlink()
    report = _validate(logs, digests, expect_end=END)
    gaps = [p for p in report.problems if p.code == "digests-missing"]
    assert len(gaps) == 1 and gaps[0].count == 3
    assert "3 digest file(s) missing" in gaps[0].message
    # The log files those digests vouched for are no longer vouched for.
    assert _codes(report).count("log-file-unlisted") == 3


def test_two_separate_gaps_are_two_problems_with_their_own_counts(trail: tuple[Path, Path]) -> None:
    logs, digests = trail
    for hour in (11, 13, 14):
        _digest(digests, hour).unlink()
    gaps = sorted((p.count or 0) for p in _validate(logs, digests).problems if p.code == "digests-missing")
    assert gaps == [1, 2]


def test_bad_signature(trail: tuple[Path, Path]) -> None:
    logs, digests = trail
    sig = _digest(digests, 12).with_name(_digest(digests, 12).name + ".signature")
    text = sig.read_text().strip()
    sig.write_text(("0" if text[0] != "0" else "1") + text[1:] + "\n")
    report = _validate(logs, digests)
    assert "digest-bad-signature" in _codes(report)
    # The next digest chains to the genuine signature, so the link is broken too.
    assert "digest-chain-broken" in _codes(report)


def test_modified_digest_content_breaks_its_signature_and_the_next_link(trail: tuple[Path, Path]) -> None:
    logs, digests = trail
    path = _digest(digests, 11)
    doc = json.loads(gzip.decompress(path.read_bytes()))
    doc["logFiles"] = []
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))
    report = _validate(logs, digests)
    assert {"digest-bad-signature", "digest-chain-broken", "log-file-unlisted"} <= set(_codes(report))


def test_truncated_tail_needs_an_expected_end(trail: tuple[Path, Path]) -> None:
    logs, digests = trail
    for hour in (14, 15):
        _digest(digests, hour).unlink()
    assert _validate(logs, digests).ok  # undetectable without knowing where the chain should end
    tail = [p for p in _validate(logs, digests, expect_end=END).problems if p.code == "digest-tail-missing"]
    assert len(tail) == 1 and tail[0].count == 2


def test_unknown_key_and_missing_signature(trail: tuple[Path, Path], tmp_path: Path) -> None:
    logs, digests = trail
    keys = json.loads(PUBLIC_KEYS.read_text())
    keys["PublicKeyList"][0]["Fingerprint"] = "00" * 16
    other = tmp_path / "keys.json"
    other.write_text(json.dumps(keys))
    report = validate_digests(sorted(logs.iterdir()), digests, other)
    assert _codes(report) == ["digest-unknown-key"] * 6
    sig = _digest(digests, 10).with_name(_digest(digests, 10).name + ".signature")
    sig.unlink()
    assert "digest-signature-missing" in _codes(_validate(logs, digests))


def test_key_outside_its_validity_window(trail: tuple[Path, Path], tmp_path: Path) -> None:
    logs, digests = trail
    keys = json.loads(PUBLIC_KEYS.read_text())
    keys["PublicKeyList"][0]["ValidityEndTime"] = "2021-12-06T12:30:00Z"
    other = tmp_path / "keys.json"
    other.write_text(json.dumps(keys))
    assert _codes(validate_digests(sorted(logs.iterdir()), digests, other)) == ["digest-key-not-valid"] * 3


def test_unlisted_log_file(trail: tuple[Path, Path]) -> None:
    logs, digests = trail
    extra = logs / "111122223333_CloudTrail_us-east-1_20211206T1300Z_injected.json.gz"
    shutil.copyfile(sorted(logs.iterdir())[0], extra)
    report = _validate(logs, digests)
    assert _codes(report) == ["log-file-unlisted"] and report.problems[0].file == str(extra)


def test_signing_string_follows_the_aws_documented_layout() -> None:
    path = next(CT.glob("digests/*_20211206T110000Z.json.gz"))
    content = gzip.decompress(path.read_bytes())
    digest = Digest.model_validate_json(content)
    raw = json.loads(content)
    import hashlib

    expected = "\n".join(
        [
            "2021-12-06T11:00:00Z",
            f"{raw['digestS3Bucket']}/{raw['digestS3Object']}",
            hashlib.sha256(content).hexdigest(),
            raw["previousDigestSignature"],
        ]
    ).encode()
    assert signing_string(digest, "2021-12-06T11:00:00Z", hashlib.sha256(content).hexdigest()) == expected
    first = next(CT.glob("digests/*_20211206T100000Z.json.gz"))
    first_digest = Digest.model_validate_json(gzip.decompress(first.read_bytes()))
    assert signing_string(first_digest, "x", "y").endswith(b"\nnull")
    assert base64.b64decode(json.loads(PUBLIC_KEYS.read_text())["PublicKeyList"][0]["Value"])[:1] == b"\x30"


@pytest.mark.usefixtures("fixture_passphrase")
def test_cli_refuses_to_import_a_tampered_trail(
    trail: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs, digests = trail
    args = [
        "import",
        "cloudtrail",
        *map(str, sorted(logs.iterdir())),
        "--directory",
        str(SAMPLES / "directory.csv"),
        "--catalog",
        str(SAMPLES / "catalog.yaml"),
        "--key",
        str(KEYS / "log-producer.key"),
        "--digests",
        str(digests),
        "--public-keys",
        str(PUBLIC_KEYS),
        "--expect-end",
        "2021-12-06T15:00:00Z",
    ]
    assert main([*args, "--out", str(tmp_path / "ok")]) == EXIT_CLEAN
    for hour in (11, 12, 13):
        _digest(digests, hour).unlink()
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "bad")]) == EXIT_INTEGRITY
    captured = capsys.readouterr()
    assert "digests-missing (3 missing)" in captured.out
    assert len(captured.err.strip().splitlines()) == 1 and "nothing imported" in captured.err
    assert not (tmp_path / "bad").exists()
