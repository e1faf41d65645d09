"""Concurrency and idempotence of `log seal` / `log append` (issue 14, item 1 and the write half of item 7).

Each bug found gets a regression test named after it; the stress test runs two appends at once 20 times.
"""

from __future__ import annotations

import errno
import hashlib
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import orjson
import pytest

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INPUT, InputError, IntegrityError, LockedError
from audit.locking import STAGING_MARKER, DirectoryLock, make_staging
from audit.logs import append as append_mod
from audit.logs import proofs as proofs_mod
from audit.logs.append import AppendResult, append, prepare_append
from audit.logs.checkpoint import JOURNAL_FILE
from audit.logs.index import INDEX_FILE, IdIndex, record_id
from audit.logs.proofs import prove_inclusion
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
KEY = signing_key_from_seed(b"\x31" * 32)
RING = Keyring(keys=(KeyringEntry(key_id=KEY.key_id, public_key=public_key_pem(KEY.public)),))


def recs(start: int, stop: int) -> list[bytes]:
    return [b'{"action":"read","event_id":"ev-%04d"}' % i for i in range(start, stop)]


def log_ids(logdir: Path) -> list[str | None]:
    return [
        record_id(line)
        for path in sorted((logdir / "segments").glob("*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]


def do_append(
    logdir: Path, records: list[bytes], *, name: str = "input.jsonl", size: int = 4, keep_index: bool = False
) -> AppendResult:
    digest = hashlib.sha256(b"".join(r + b"\n" for r in records)).hexdigest()
    plan = prepare_append(logdir, RING, source_name=name, source_sha256=digest, keep_index=keep_index)

    def source() -> Iterator[bytes]:
        return iter(records)

    return append(plan, source, key=KEY, keyring=RING, segment_size=size, time=T2)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    out = tmp_path / "log"
    seal(recs(0, 8), out=out, key=KEY, origin="o", record_type="access-event", segment_size=4, time=T1)
    return out


# ----------------------------------------------------------------------------- concurrent appends


def test_concurrent_append_fails_locked_instead_of_deleting_the_winners_segments(log: Path) -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    winner = prepare_append(log, RING, source_name="a", source_sha256=digest)  # holds the lock until append ends
    try:
        with pytest.raises(LockedError, match=rf"^{log} is locked by PID {os.getpid()} on .+ since 20"):
            prepare_append(log, RING, source_name="b", source_sha256=digest)
    finally:
        winner.release()
    do_append(log, recs(8, 12))
    do_append(log, recs(12, 14))
    report = verify_log(log, RING)
    assert report.ok and report.tree_size == 14
    assert log_ids(log) == [f"ev-{i:04d}" for i in range(14)]
    assert list(log.parent.iterdir()) == [log]  # no lock file left behind


def test_crash_leftovers_not_named_by_the_journal_are_never_deleted(log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = append_mod._write_file

    def crash(path: Path, data: bytes) -> None:
        if path.as_posix().endswith("checkpoints/00000002.json"):
            raise KeyboardInterrupt
        real(path, data)

    monkeypatch.setattr(append_mod, "_write_file", crash)
    with pytest.raises(KeyboardInterrupt):
        do_append(log, recs(8, 12))  # journal names segment 2 only
    monkeypatch.undo()
    foreign = log / "segments" / "00000007.jsonl"
    foreign.write_bytes(b"someone else's\n")
    with pytest.raises(IntegrityError, match=r"segments/00000007.jsonl is not a file of the interrupted append"):
        do_append(log, recs(8, 12))
    assert foreign.read_bytes() == b"someone else's\n"
    assert (log / "segments" / "00000002.jsonl").exists()  # nothing removed either
    foreign.unlink()
    result = do_append(log, recs(8, 12))
    assert result.resumed and verify_log(log, RING).ok


# ----------------------------------------------------------------------------- idempotence


def test_rerun_of_a_finished_append_adds_nothing(log: Path) -> None:
    first = do_append(log, recs(8, 18))
    again = do_append(log, recs(8, 18))
    assert (again.unchanged, again.records_added, again.segments_added) == (True, 0, 0)
    assert (again.tree_size, again.root) == (first.tree_size, first.root)
    assert log_ids(log) == [f"ev-{i:04d}" for i in range(18)]
    assert verify_log(log, RING).ok and not (log / JOURNAL_FILE).exists()


def test_rerun_after_a_later_append_is_refused_as_duplicates(log: Path) -> None:
    do_append(log, recs(8, 10))
    do_append(log, recs(10, 12))
    with pytest.raises(
        InputError,
        match=r"input.jsonl:1: id 'ev-0008' is already in the log at "
        r"segments/00000002.jsonl:1",
    ):
        do_append(log, recs(8, 10))
    assert verify_log(log, RING).tree_size == 12


# ----------------------------------------------------------------------------- duplicate ids


def test_seal_accepts_no_duplicate_event_ids(tmp_path: Path) -> None:
    records = [*recs(0, 5), recs(2, 3)[0], *recs(5, 7)]
    with pytest.raises(InputError) as caught:
        seal(
            records,
            out=tmp_path / "log",
            key=KEY,
            origin="o",
            record_type="access-event",
            segment_size=2,
            source=tmp_path / "events.jsonl",
        )
    assert str(caught.value) == f"{tmp_path / 'events.jsonl'}:6: duplicate id 'ev-0002' (first at line 3)"
    assert list(tmp_path.iterdir()) == []  # no log, no staging, no lock, no index
    with pytest.raises(InputError, match=r"record 6: duplicate id 'ev-0002' \(first: record 3\)"):
        seal(records, out=tmp_path / "log", key=KEY, origin="o", record_type="access-event")


def test_append_accepts_no_duplicate_event_ids(log: Path) -> None:
    before = {p: p.read_bytes() for p in log.rglob("*") if p.is_file()}
    with pytest.raises(InputError, match=r"^input.jsonl:3: duplicate id 'ev-0009' \(first at line 2\)$"):
        do_append(log, [*recs(8, 10), *recs(9, 10)])
    with pytest.raises(
        InputError,
        match=r"^input.jsonl:2: id 'ev-0005' is already in the log at "
        r"segments/00000001.jsonl:2$",
    ):
        do_append(log, [*recs(8, 9), *recs(5, 6)])
    assert {p: p.read_bytes() for p in log.rglob("*") if p.is_file()} == before


def test_cli_seal_and_append_name_the_duplicate_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_key: Path
) -> None:
    case = tmp_path / "case"
    shutil.copytree(FIXTURES / "tampered" / "untouched", case)
    ring = str(case / "keyring.json")
    lines = (FIXTURES / "tampered" / "interrupted_append" / "append-input.jsonl").read_text().splitlines()
    events = tmp_path / "dup.jsonl"
    events.write_text("\n".join([*lines[:3], lines[1]]) + "\n")
    out = tmp_path / "sealed"
    assert main(["log", "seal", str(events), "--key", str(cli_key), "--out", str(out)]) == EXIT_INPUT
    assert f"{events}:4: duplicate id 'evt-t010' (first at line 2)" in capsys.readouterr().err
    assert not out.exists()
    base = (case / "log" / "segments" / "00000000.jsonl").read_text().splitlines()
    events.write_text("\n".join([lines[0], base[1]]) + "\n")
    args = ["log", "append", str(case / "log"), str(events), "--key", str(cli_key), "--keyring", ring]
    assert main(args) == EXIT_INPUT
    assert f"{events}:2: id " in capsys.readouterr().err


# ----------------------------------------------------------------------------- the event-id index


def test_index_is_kept_by_the_cli_checked_by_verify_and_rebuilt_when_edited(
    tmp_path: Path, cli_key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = tmp_path / "case"
    shutil.copytree(FIXTURES / "tampered" / "untouched", case)
    logdir, ring = case / "log", str(case / "keyring.json")
    events = FIXTURES / "tampered" / "interrupted_append" / "append-input.jsonl"
    args = ["log", "append", str(logdir), str(events), "--key", str(cli_key), "--keyring", ring]
    assert main(args) == EXIT_CLEAN
    assert (logdir / INDEX_FILE).is_file()
    assert main(["log", "verify", str(logdir), "--keyring", ring]) == EXIT_CLEAN
    assert "WARNING" not in capsys.readouterr().err  # a kept index that agrees with the log says nothing
    assert main(args) == EXIT_CLEAN  # the documented crash recovery, after success
    assert "nothing added" in capsys.readouterr().out
    with sqlite3.connect(logdir / INDEX_FILE) as db:  # forget the ids: a later duplicate would slip through
        db.execute("DELETE FROM ids")
    capsys.readouterr()
    assert main(["log", "verify", str(logdir), "--keyring", ring]) == EXIT_CLEAN  # the log itself is intact
    warning = capsys.readouterr().err
    assert f"{INDEX_FILE}: its rows are not the ids of the log's records; the next log append rebuilds it" in warning
    base = (logdir / "segments" / "00000000.jsonl").read_text().splitlines()
    more = tmp_path / "more.jsonl"
    more.write_text(base[0] + "\n")
    assert main(["log", "append", str(logdir), str(more), "--key", str(cli_key), "--keyring", ring]) == EXIT_INPUT
    assert f"{more}:1: id " in capsys.readouterr().err
    index = IdIndex(logdir / INDEX_FILE, readonly=True)
    try:
        assert len(index.find(record_id(base[0].encode()) or "")) == 1  # rebuilt from the segments
    finally:
        index.close()


def test_prove_inclusion_uses_the_index_without_parsing_every_record(
    log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    do_append(log, recs(8, 12), keep_index=True)
    calls = Counter[bytes]()
    real = record_id

    def counting(line: bytes) -> str | None:
        calls[line] += 1
        return real(line)

    monkeypatch.setattr(proofs_mod, "record_id", counting)
    proof = prove_inclusion(log, RING, event_id="ev-0010")
    assert proof.leaf_index == 10 and sum(calls.values()) == 1
    (log / INDEX_FILE).write_bytes(b"not a database")
    calls.clear()
    assert prove_inclusion(log, RING, event_id="ev-0010") == proof  # no usable index: parse every record
    assert sum(calls.values()) == 12


# ----------------------------------------------------------------------------- killed runs, disk full


def test_killed_seal_leaves_staging_that_the_next_seal_removes(tmp_path: Path) -> None:
    out = tmp_path / "log"
    killed = make_staging(out, ".sealing")  # what a seal killed with SIGKILL leaves behind
    (killed / "segments").mkdir()
    (killed / "segments" / "00000000.jsonl").write_bytes(b"half\n")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )  # a process that has ended: its pid is free
    marker = orjson.loads((killed / STAGING_MARKER).read_bytes())
    (killed / STAGING_MARKER).write_bytes(orjson.dumps({**marker, "pid": int(dead.stdout)}))
    alive = make_staging(out, ".sealing")  # this process is alive: its staging is never swept
    foreign = tmp_path / ".log.backup.sealing"
    foreign.mkdir()
    seal(recs(0, 3), out=out, key=KEY, origin="o", record_type="access-event")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".log.backup.sealing", "log", alive.name])
    assert not (out / STAGING_MARKER).exists() and verify_log(out, RING).ok


def test_disk_full_during_seal_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.fsync
    calls = []

    def full(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 4:  # segment 0, its leaves, its checkpoint, then segment 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(InputError, match=r"\.sealing/segments/00000001\.jsonl: cannot write: No space left on device"):
        seal(recs(0, 6), out=tmp_path / "log", key=KEY, origin="o", record_type="access-event", segment_size=2)
    assert list(tmp_path.iterdir()) == []


def test_disk_full_during_append_names_the_file(log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.fsync

    def full(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("00000002.leaves.partial"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(InputError, match=r"segments/00000002\.leaves: cannot write: No space left on device"):
        do_append(log, recs(8, 12))
    monkeypatch.undo()
    assert do_append(log, recs(8, 12)).resumed  # the journal says what to finish
    assert verify_log(log, RING).ok


# ----------------------------------------------------------------------------- stress


def _racer(logdir: str, records: list[bytes], name: str, barrier: Barrier, results: Queue[tuple[str, str]]) -> None:
    barrier.wait()
    try:
        result = do_append(Path(logdir), records, name=name, size=3, keep_index=True)
    except LockedError:
        results.put((name, "locked"))
        return
    results.put((name, "unchanged" if result.unchanged else "appended"))


@pytest.mark.slow
def test_two_appends_at_once_lose_nothing_and_double_nothing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    for round_ in range(20):
        logdir = tmp_path / f"log{round_}"
        seal(recs(0, 6), out=logdir, key=KEY, origin="o", record_type="access-event", segment_size=3, time=T1)
        same = round_ % 2 == 0
        inputs = [recs(100, 110), recs(100, 110) if same else recs(200, 207)]
        barrier, results = ctx.Barrier(2), ctx.Queue()
        racers = [
            ctx.Process(target=_racer, args=(str(logdir), inputs[i], f"in{i}", barrier, results)) for i in range(2)
        ]
        for racer in racers:
            racer.start()
        done = dict(results.get(timeout=60) for _ in racers)
        for racer in racers:
            racer.join(timeout=60)
            assert racer.exitcode == 0
        outcomes = [done["in0"], done["in1"]]
        assert set(outcomes) <= {"appended", "unchanged", "locked"}, outcomes
        assert "appended" in outcomes, outcomes
        if same:
            assert outcomes.count("appended") == 1, outcomes  # the other was locked out or found it done
        expected = recs(0, 6) + [
            r for outcome, records in zip(outcomes, inputs, strict=True) if outcome == "appended" for r in records
        ]
        report = verify_log(logdir, RING)
        assert report.ok and report.tree_size == len(expected), (outcomes, report.problems)
        ids = log_ids(logdir)
        assert Counter(ids) == Counter(record_id(r) for r in expected)  # nothing lost, nothing doubled
        assert (
            not (logdir / JOURNAL_FILE).exists()
            and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
        )


@pytest.fixture
def cli_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tampered fixtures' TEST-ONLY producer key, written encrypted for the CLI."""
    monkeypatch.setenv(PASSPHRASE_ENV, "test passphrase")
    key: SigningKey = signing_key_from_seed(
        hashlib.sha256(b"residency-audit TEST-ONLY tampered fixture key: producer").digest()
    )
    path = tmp_path / "producer.key"
    write_private_key(path, key, b"test passphrase")
    return path


def test_directory_lock_is_what_append_takes(log: Path) -> None:
    with DirectoryLock(log), pytest.raises(LockedError):
        do_append(log, recs(8, 9))
    assert do_append(log, recs(8, 9)).records_added == 1
