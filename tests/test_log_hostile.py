"""Hostile log directories: files nobody should have put there, records and checkpoint times the producer chose.

Each test is named after the input it stops: a FIFO, a sparse 2 GB file or a symlink
in place of a log file (reported from its type or size, never waited on, never read
into memory, never followed), records that are not their RFC 8785 form although the
hashes verify, and checkpoint times that go backwards or lie in the future.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.canonical import canonical_bytes, is_canonical
from audit.cli.app import main
from audit.errors import EXIT_INPUT, EXIT_INTEGRITY, InputError, IntegrityError
from audit.logs.checkpoint import CLOCK_SKEW, JOURNAL_FILE, max_segment_bytes
from audit.logs.trusted import load_checkpoint
from audit.logs.verify import LogVerifier, VerificationReport, segment_lines, verify_log
from audit.logs.verify.records import non_canonical_lines
from audit.logs.verify.verifier import read_segment_file
from audit.logs.writer import seal
from audit.signing.keys import Keyring, KeyringEntry, load_keyring, public_key_pem, signing_key_from_seed
from tests.conftest import FIXTURES

TAMPERED = FIXTURES / "tampered"
UNTOUCHED = TAMPERED / "untouched"
RING = load_keyring(UNTOUCHED / "keyring.json")
SEALED_AT = datetime(2024, 1, 1, tzinfo=UTC)
SEG1 = "segments/00000001.jsonl"
T = TypeVar("T")


def copy_log(tmp_path: Path) -> Path:
    log = tmp_path / "log"
    shutil.copytree(UNTOUCHED / "log", log)
    return log


def found(report: VerificationReport) -> list[tuple[str, str | None, int | None]]:
    return [(p.code, p.segment, p.line) for p in report.problems]


def within(seconds: float, call: Callable[[], T]) -> T:
    """``call()`` in a thread; fail (instead of hanging the suite) if it does not return in time."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # re-raised below, in the test's thread
            failure.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "blocked"
    if failure:
        raise failure[0]
    return outcome[0]


def deferred(log: Path, ring: Keyring = RING) -> VerificationReport:
    """What a parallel replay sees (each yielded segment file read and checked by its reader)."""
    verifier = LogVerifier(log, ring, defer_content=True)
    for segment in verifier.segments():
        raw = read_segment_file(log / segment.name, segment.body.segment)
        if raw is None or segment_lines(raw, segment.body.segment) is None:
            verifier.content_mismatch(segment.name)
    return verifier.report()


# ----------------------------------------------------------------------------- FIFOs


@pytest.mark.parametrize(
    ("entry", "code", "segment"),
    [
        (SEG1, "malformed-segment", SEG1),
        ("segments/00000001.leaves", "malformed-segment", SEG1),
        ("checkpoints/00000001.json", "malformed-checkpoint", SEG1),
        (JOURNAL_FILE, "append-interrupted", "segments/00000003.jsonl"),
        ("checkpoints/00000001.extra.json", "unexpected-file", None),
    ],
)
def test_fifo_in_place_of_a_log_file_does_not_hang_verify(
    tmp_path: Path, entry: str, code: str, segment: str | None
) -> None:
    log = copy_log(tmp_path)
    (log / entry).unlink(missing_ok=True)
    os.mkfifo(log / entry)
    report = within(30, lambda: verify_log(log, RING))
    assert found(report) == [(code, segment, None)]
    assert entry in report.problems[0].message
    assert code == "unexpected-file" or "is a FIFO, not a regular file" in report.problems[0].message
    assert within(30, lambda: deferred(log)) == report


def test_fifo_segment_is_one_fail_line_and_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = copy_log(tmp_path)
    (log / SEG1).unlink()
    os.mkfifo(log / SEG1)
    rc = within(30, lambda: main(["log", "verify", str(log), "--keyring", str(UNTOUCHED / "keyring.json")]))
    out = capsys.readouterr().out
    assert rc == EXIT_INTEGRITY
    fails = [line for line in out.splitlines() if line.startswith("FAIL ")]
    assert fails == [f"FAIL {SEG1}: malformed-segment: {SEG1} is a FIFO, not a regular file"]


def test_fifo_as_the_pinned_checkpoint_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pin = tmp_path / "pin.json"
    os.mkfifo(pin)
    args = ["log", "verify", str(UNTOUCHED / "log"), "--keyring", str(UNTOUCHED / "keyring.json")]
    assert within(30, lambda: main([*args, "--trusted-checkpoint", str(pin)])) == EXIT_INPUT
    assert f"{pin}: is a FIFO, not a regular file" in capsys.readouterr().err


# ----------------------------------------------------------------------------- oversized files


def test_sparse_2gb_segment_is_reported_from_its_size_not_read(tmp_path: Path) -> None:
    log = copy_log(tmp_path)
    os.truncate(log / SEG1, 2 * 1024**3)
    report = within(60, lambda: verify_log(log, RING))
    assert found(report) == [("malformed-segment", SEG1, None)]
    assert "is 2147483648 bytes, more than the" in report.problems[0].message
    assert "(not read)" in report.problems[0].message
    assert report.segments == 2  # the signed leaves carry the tree past it: segment 2 still verifies
    assert within(60, lambda: deferred(log)) == report


def test_sparse_2gb_leaves_file_is_reported_from_its_size_not_read(tmp_path: Path) -> None:
    log = copy_log(tmp_path)
    os.truncate(log / "segments/00000001.leaves", 2 * 1024**3)
    report = within(60, lambda: verify_log(log, RING))
    assert found(report) == [("leaves-file-tampered", SEG1, None)]
    assert "2147483648 bytes" in report.problems[0].message and "96" in report.problems[0].message


def test_oversized_checkpoint_file_is_not_read(tmp_path: Path) -> None:
    log = copy_log(tmp_path)
    os.truncate(log / "checkpoints/00000001.json", 2 * 1024**3)
    report = within(60, lambda: verify_log(log, RING))
    assert found(report) == [("malformed-checkpoint", SEG1, None)]


def test_segment_cap_follows_the_signed_count() -> None:
    assert max_segment_bytes(1) == 16 * 1024**2 + 1
    assert max_segment_bytes(10_000) == 256 * 1024**2


def test_reader_of_a_deferred_segment_refuses_an_oversized_file(tmp_path: Path) -> None:
    log = copy_log(tmp_path)
    info = next(LogVerifier(log, RING, defer_content=True).segments()).body.segment
    os.truncate(log / "segments/00000000.jsonl", 2 * 1024**3)
    assert read_segment_file(log / "segments/00000000.jsonl", info) is None


# ----------------------------------------------------------------------------- symlinks


def test_symlinked_segment_is_not_followed_even_to_the_sealed_content(tmp_path: Path) -> None:
    log = copy_log(tmp_path)
    outside = tmp_path / "outside.jsonl"
    shutil.move(log / SEG1, outside)  # the genuine bytes: following the link would verify
    (log / SEG1).symlink_to(outside)
    report = verify_log(log, RING)
    assert found(report) == [("malformed-segment", SEG1, None)]
    assert "symlink" in report.problems[0].message
    assert deferred(log) == report


def test_symlinked_segments_directory_is_not_listed(tmp_path: Path) -> None:
    log = copy_log(tmp_path)
    shutil.move(log / "segments", tmp_path / "elsewhere")
    (log / "segments").symlink_to(tmp_path / "elsewhere")
    report = verify_log(log, RING)
    assert not report.ok and report.segments == 0
    assert any(p.code == "unexpected-file" and "symlink" in p.message for p in report.problems)


def test_symlink_to_a_secret_in_place_of_a_checkpoint_does_not_quote_it(tmp_path: Path) -> None:
    log = copy_log(tmp_path)
    secret = tmp_path / "secret"
    secret.write_text("PASSPHRASE=hunter2")
    (log / "checkpoints/00000001.json").unlink()
    (log / "checkpoints/00000001.json").symlink_to(secret)
    report = verify_log(log, RING)
    assert found(report) == [("malformed-checkpoint", SEG1, None)]
    assert "hunter2" not in repr(report)


# ----------------------------------------------------------------------------- canonical records

KEY = signing_key_from_seed(b"\x07" * 32)
KEYRING = Keyring(keys=(KeyringEntry(key_id=KEY.key_id, public_key=public_key_pem(KEY.public)),))


def sealed_with(tmp_path: Path, *records: bytes, segment_size: int = 10) -> VerificationReport:
    log = tmp_path / "log"
    seal(
        [b'{"event_id":"ok"}', *records],
        out=log,
        key=KEY,
        origin="o",
        record_type="t",
        time=SEALED_AT,
        segment_size=segment_size,
    )
    return verify_log(log, KEYRING)


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (b'{"a":1,"a":2}', "duplicate key 'a'"),
        (b'{"a":{"b":1,"b":1}}', "duplicate key 'b'"),
        (b'{"a": 1}', "from byte 6"),
        (b'{"b":1,"a":2}', "from byte 3"),
        (b'{"a":"\\u0041"}', "from byte 7"),
        (b'{"a":"\\/"}', "from byte 7"),
        (b'{"a":"\\u001F"}', "from byte 12"),
        (b'{"a":1.0}', "from byte 7"),
        (b'{"a":1E2}', "from byte 7"),
        (b'{"a":-0}', "from byte 6"),
        (b'{"a":9007199254740993}', "no RFC 8785 form"),
        (b'{"\xee\x80\x80":2,"\xf0\x9f\x98\x80":1}', "from byte 3"),  # U+E000 before U+1F600: code-point order
        (b"not json", "not a JSON value"),
        (b'{"a":1} ', "from byte 8"),
    ],
)
def test_non_canonical_record_is_reported_although_the_hashes_verify(tmp_path: Path, record: bytes, why: str) -> None:
    report = sealed_with(tmp_path, record)
    assert found(report) == [("non-canonical-record", "segments/00000000.jsonl", 2)]
    assert why in report.problems[0].message


@pytest.mark.parametrize("depth", [1_000, 1_024, 5_000])
def test_deeply_nested_record_is_reported_not_a_crash(tmp_path: Path, depth: int) -> None:
    """Regression: msgspec's generic decode (and the canonical walk) raised RecursionError, an exit 4."""
    report = sealed_with(tmp_path, b"[" * depth + b"]" * depth)
    assert found(report) == [("non-canonical-record", "segments/00000000.jsonl", 2)]
    assert "nests too deeply to be checked" in report.problems[0].message


@pytest.mark.parametrize(
    "record",
    [
        b'{"a":1.5}',
        b'{"a":1e+21}',
        b'{"a":9007199254740991,"b":-9007199254740991}',
        b'{"a":"\\u001f\\n\\"\\\\","b":"\xc3\xa9\x7f"}',
        b'{"z":2,"\xc3\xa9":1}',
        b'{"\xf0\x9f\x98\x80":1,"\xee\x80\x80":2}',  # UTF-16 order: the surrogate pair sorts first
        b'[1,"x",null,true]',
    ],
)
def test_canonical_records_pass(tmp_path: Path, record: bytes) -> None:
    assert sealed_with(tmp_path, record).ok


def test_many_non_canonical_lines_are_counted_not_listed(tmp_path: Path) -> None:
    report = sealed_with(tmp_path, *(f'{{"n": {i}}}'.encode() for i in range(150)), segment_size=200)
    assert [p.code for p in report.problems] == ["non-canonical-record"] * 101
    assert any("... and 50 more non-canonical line(s)" in p.message and p.line is None for p in report.problems)


def test_non_canonical_record_fails_a_deferred_verification_too(tmp_path: Path) -> None:
    report = sealed_with(tmp_path, b'{"a":1,"a":2}')
    log = tmp_path / "log"
    assert deferred(log, KEYRING) == report
    [segment] = list(LogVerifier(log, KEYRING, defer_content=True).segments())
    assert segment_lines((log / segment.name).read_bytes(), segment.body.segment) is None


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)


def _forms(value: Any) -> list[bytes]:
    forms = [json.dumps(value, ensure_ascii=False).encode(), json.dumps(value, separators=(",", ":")).encode()]
    with contextlib.suppress(rfc8785.CanonicalizationError):  # large integers have no RFC 8785 form
        forms.append(canonical_bytes(value))
    return forms


@settings(max_examples=300, deadline=None)
@given(st.lists(_json, min_size=1, max_size=6), st.data())
def test_the_segment_check_agrees_with_is_canonical_line_by_line(values: list[Any], data: st.DataObject) -> None:
    lines = [data.draw(st.sampled_from(_forms(v))) for v in values]
    expected = [n for n, line in enumerate(lines, start=1) if not is_canonical(line)]
    assert non_canonical_lines(lines) == expected


# ----------------------------------------------------------------------------- checkpoint times


def test_checkpoints_later_than_the_clock_plus_skew_are_in_the_future() -> None:
    log = UNTOUCHED / "log"
    assert verify_log(log, RING, now=SEALED_AT - CLOCK_SKEW).ok
    report = verify_log(log, RING, now=SEALED_AT - CLOCK_SKEW - timedelta(seconds=1))
    assert [p.code for p in report.problems] == ["checkpoint-in-future"] * 3


def test_a_not_yet_valid_key_cannot_post_date_into_its_window() -> None:
    case = TAMPERED / "future_checkpoint"
    ring = load_keyring(case / "keyring.json")
    report = verify_log(case / "log", ring)
    assert found(report) == [("checkpoint-in-future", "segments/00000002.jsonl", None)]
    # At a clock past 2099 the same checkpoint is fine: only its time was wrong.
    assert verify_log(case / "log", ring, now=datetime(2099, 1, 1, tzinfo=UTC)).ok


def test_backdated_checkpoint_is_reported_once(tmp_path: Path) -> None:
    report = verify_log(TAMPERED / "backdated_checkpoint" / "log", RING)
    assert found(report) == [("time-went-backwards", "segments/00000002.jsonl", None)]
    assert "checkpoints/00000001.json" in report.problems[0].message


def test_pinned_checkpoint_in_the_future_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    case = TAMPERED / "future_checkpoint"
    ring = load_keyring(case / "keyring.json")
    pin = case / "log" / "checkpoints" / "00000002.json"
    with pytest.raises(IntegrityError, match="in the future"):
        load_checkpoint(pin, ring)
    assert load_checkpoint(pin, ring, now=datetime(2099, 1, 1, tzinfo=UTC)).tree_size == 9
    args = ["log", "verify", str(case / "log"), "--keyring", str(case / "keyring.json")]
    assert main([*args, "--trusted-checkpoint", str(pin)]) == EXIT_INTEGRITY
    assert "in the future" in capsys.readouterr().err


def test_oversized_pin_is_an_input_error(tmp_path: Path) -> None:
    pin = tmp_path / "pin.json"
    pin.write_bytes(b" " * (2 * 1024**2))
    with pytest.raises(InputError, match="more than the limit"):
        load_checkpoint(pin, RING)
