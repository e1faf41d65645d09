"""`log append`: extending a sealed log, key rotation, refusal, and crash recovery."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INPUT, EXIT_INTEGRITY, InputError, IntegrityError, KeyMaterialError
from audit.logs import append as append_mod
from audit.logs.append import AppendResult, append, prepare_append
from audit.logs.checkpoint import JOURNAL_FILE
from audit.logs.trusted import load_checkpoint
from audit.logs.verify import verify_log
from audit.logs.writer import seal
from audit.signing.keys import (
    PASSPHRASE_ENV,
    Keyring,
    KeyringEntry,
    SigningKey,
    public_key_pem,
    signing_key_from_seed,
    write_private_key,
)
from tests.conftest import FIXTURES

T1 = datetime(2024, 1, 1, tzinfo=UTC)
T2 = datetime(2024, 2, 1, tzinfo=UTC)
KEY = signing_key_from_seed(b"\x21" * 32)
SUCCESSOR = signing_key_from_seed(b"\x22" * 32)


def entry(key: SigningKey, **window: datetime) -> KeyringEntry:
    return KeyringEntry(key_id=key.key_id, public_key=public_key_pem(key.public), **window)


RING = Keyring(keys=(entry(KEY),))


def recs(start: int, stop: int) -> list[bytes]:
    return [b'{"action":"read","event_id":"ev-%04d"}' % i for i in range(start, stop)]


def files(logdir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(logdir)): p.read_bytes() for p in sorted(logdir.rglob("*")) if p.is_file()}


def do_append(
    logdir: Path,
    records: list[bytes],
    *,
    key: SigningKey = KEY,
    ring: Keyring = RING,
    name: str = "input",
    size: int = 4,
    time: datetime = T2,
) -> AppendResult:
    digest = hashlib.sha256(b"".join(r + b"\n" for r in records)).hexdigest()
    plan = prepare_append(logdir, ring, source_name=name, source_sha256=digest)

    def source() -> Iterator[bytes]:
        return iter(records)

    return append(plan, source, key=key, keyring=ring, segment_size=size, time=time)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    out = tmp_path / "log"
    seal(recs(0, 8), out=out, key=KEY, origin="o", record_type="access-event", segment_size=4, time=T1)
    return out


def test_append_equals_sealing_everything_at_once(tmp_path: Path, log: Path) -> None:
    old = load_checkpoint(log / "checkpoints/00000001.json", RING)
    result = do_append(log, recs(8, 18), time=T1)
    assert (result.tree_size, result.segments_added, result.records_added, result.resumed) == (18, 3, 10, False)
    whole = tmp_path / "whole"
    seal(recs(0, 18), out=whole, key=KEY, origin="o", record_type="access-event", segment_size=4, time=T1)
    assert files(log) == files(whole)  # byte for byte: nothing lost, nothing doubled, same chain
    report = verify_log(log, RING, trusted_checkpoint=old)
    assert report.ok and report.tree_size == 18 and report.completeness.value == "proven"
    assert not (log / JOURNAL_FILE).exists()


def test_append_starts_a_new_segment_after_a_short_one(tmp_path: Path) -> None:
    out = tmp_path / "log"
    seal(recs(0, 6), out=out, key=KEY, origin="o", record_type="t", segment_size=4, time=T1)
    do_append(out, recs(6, 9))
    report = verify_log(out, RING)
    assert report.ok and report.tree_size == 9 and report.segments == 3
    assert (out / "segments/00000001.jsonl").read_bytes().count(b"\n") == 2  # untouched


def test_key_rotation_old_checkpoints_stay_valid(log: Path) -> None:
    ring = Keyring(keys=(entry(KEY, not_after=T1 + timedelta(days=1)), entry(SUCCESSOR, not_before=T1)))
    with pytest.raises(KeyMaterialError, match="expired"):
        do_append(log, recs(8, 10), ring=ring)  # the old key is outside its window at T2
    assert verify_log(log, ring).tree_size == 8  # nothing was written
    do_append(log, recs(8, 10), key=SUCCESSOR, ring=ring)
    report = verify_log(log, ring)
    assert report.ok and report.tree_size == 10


def test_append_refuses_keys_not_in_the_keyring_or_revoked(log: Path) -> None:
    with pytest.raises(KeyMaterialError, match="not in the keyring"):
        do_append(log, recs(8, 9), key=SUCCESSOR)
    revoked = Keyring(keys=(entry(KEY, revoked_at=T2), entry(SUCCESSOR)))
    with pytest.raises(IntegrityError, match="key-revoked"):
        do_append(log, recs(8, 9), key=SUCCESSOR, ring=revoked)  # the existing log no longer verifies


def test_append_refuses_a_tampered_log(log: Path) -> None:
    path = log / "segments/00000001.jsonl"
    path.write_bytes(path.read_bytes().replace(b"ev-0005", b"ev-0009"))
    with pytest.raises(IntegrityError, match=r"refusing to append.*event-modified"):
        do_append(log, recs(8, 9))


def test_a_bad_record_leaves_the_log_untouched(log: Path) -> None:
    before = files(log)
    with pytest.raises(InputError, match="record 3 contains a newline"):
        do_append(log, [*recs(8, 10), b'{"a":\n1}'])
    with pytest.raises(InputError, match="no records"):
        do_append(log, [])
    assert files(log) == before


class Crash(Exception):
    pass


def crash_when(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    """Make the append die just before it writes ``target`` (a path relative to the log)."""
    real = append_mod._write_file

    def write(path: Path, data: bytes) -> None:
        if path.as_posix().endswith(target):
            raise Crash(target)
        real(path, data)

    monkeypatch.setattr(append_mod, "_write_file", write)


@pytest.mark.parametrize(
    ("before", "checkpointed", "pending"),
    [
        ("segments/00000002.jsonl", 0, []),
        ("checkpoints/00000002.json", 0, ["segments/00000002.jsonl", "segments/00000002.leaves"]),
        ("segments/00000003.leaves", 4, ["segments/00000003.jsonl"]),
        ("checkpoints/00000004.json", 8, ["segments/00000004.jsonl", "segments/00000004.leaves"]),
    ],
)
def test_crash_is_reported_precisely_and_resumed_exactly(
    tmp_path: Path, log: Path, monkeypatch: pytest.MonkeyPatch, before: str, checkpointed: int, pending: list[str]
) -> None:
    with monkeypatch.context() as patch:
        crash_when(patch, before)
        with pytest.raises(Crash):
            do_append(log, recs(8, 18), time=T1)
    report = verify_log(log, RING)
    assert [p.code for p in report.problems] == ["append-interrupted"]
    message = report.problems[0].message
    assert f"after {checkpointed} of 10 records were checkpointed" in message
    assert f"not checkpointed: {', '.join(pending) or 'none'}" in message
    with pytest.raises(InputError, match="interrupted append of input"):
        do_append(log, recs(8, 12), time=T1)  # another input must wait
    result = do_append(log, recs(8, 18), time=T1)
    assert result.resumed and result.skipped == checkpointed and result.records_added == 10 - checkpointed
    whole = tmp_path / "whole"
    seal(recs(0, 18), out=whole, key=KEY, origin="o", record_type="access-event", segment_size=4, time=T1)
    assert files(log) == files(whole)


# ----------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tampered fixtures' TEST-ONLY producer key, written encrypted for the CLI."""
    monkeypatch.setenv(PASSPHRASE_ENV, "test passphrase")
    key = signing_key_from_seed(hashlib.sha256(b"residency-audit TEST-ONLY tampered fixture key: producer").digest())
    path = tmp_path / "producer.key"
    write_private_key(path, key, b"test passphrase")
    return path


def test_cli_resumes_the_interrupted_append_fixture(
    tmp_path: Path, cli_key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = tmp_path / "case"
    shutil.copytree(FIXTURES / "tampered" / "interrupted_append", case)
    ring = str(case / "keyring.json")
    assert main(["log", "verify", str(case / "log"), "--keyring", ring]) == EXIT_INTEGRITY
    capsys.readouterr()
    args = [
        "log",
        "append",
        str(case / "log"),
        str(case / "append-input.jsonl"),
        "--key",
        str(cli_key),
        "--keyring",
        ring,
    ]
    assert main(args) == EXIT_CLEAN
    assert "resumed: 3 record(s) were already sealed" in capsys.readouterr().out
    assert main(["log", "verify", str(case / "log"), "--keyring", ring, "--expect-size", "15"]) == EXIT_CLEAN
    assert "completeness PROVEN" in capsys.readouterr().out
    lines = b"".join((case / "log" / "segments" / f"{i:08d}.jsonl").read_bytes() for i in range(5)).splitlines()
    base = b"".join(
        (FIXTURES / "tampered" / "untouched" / "log" / "segments" / f"{i:08d}.jsonl").read_bytes() for i in range(3)
    ).splitlines()
    assert lines == base + (case / "append-input.jsonl").read_bytes().splitlines()  # in order, none twice


def test_cli_append_new_events_and_refusals(tmp_path: Path, cli_key: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = tmp_path / "case"
    shutil.copytree(FIXTURES / "tampered" / "untouched", case)
    ring = str(case / "keyring.json")
    events = tmp_path / "more.jsonl"
    source = (FIXTURES / "tampered" / "interrupted_append" / "append-input.jsonl").read_text()
    events.write_text(source)
    args = ["log", "append", str(case / "log"), str(events), "--key", str(cli_key), "--keyring", ring]
    assert main(args) == EXIT_CLEAN
    assert "appended 6 records in 1 segment(s)" in capsys.readouterr().out
    pin = str(case / "trusted-checkpoint.json")
    assert main(["log", "verify", str(case / "log"), "--keyring", ring, "--trusted-checkpoint", pin]) == EXIT_CLEAN
    capsys.readouterr()
    events.write_text(source.replace('"action":"read"', '"action":"teleport"', 1))
    assert main(args) == EXIT_INPUT
    err = capsys.readouterr().err
    assert f"{events}:1:" in err and "action" in err
    assert not (case / "log" / JOURNAL_FILE).exists()
