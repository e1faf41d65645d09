"""The exit-code contract: 2 input, 3 integrity, 4 internal error (a bug), each one line on stderr."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from audit.cli.app import main
from audit.errors import (
    EXIT_INPUT,
    EXIT_INTEGRITY,
    EXIT_INTERNAL,
    AuditError,
    CompletenessError,
    InputError,
    IntegrityError,
    InternalError,
    KeyMaterialError,
    LogVerificationError,
    PolicyError,
    RecordError,
    ScanError,
    SignatureError,
)
from audit.signing import keys as signing_keys  # keygen imports generate_signing_key from here when it runs


def _keygen(tmp_path: Path, *extra: str) -> list[str]:
    return [*extra, "keygen", "--out", str(tmp_path / "k.key"), "--unencrypted"]


def _boom(*_: object, **__: object) -> object:
    raise RuntimeError("invariant broken\nsecond line never shown")


def test_unexpected_exception_is_exit_4_one_line_asking_for_a_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RESIDENCY_AUDIT_KEY_PASSPHRASE", raising=False)
    monkeypatch.setattr(signing_keys, "generate_signing_key", _boom)
    assert main(_keygen(tmp_path)) == EXIT_INTERNAL
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert err.splitlines() == [
        "internal error: RuntimeError: invariant broken (a bug in residency-audit: please report it; "
        "rerun with --debug for the traceback)"
    ]


def test_debug_shows_the_traceback_of_an_internal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RESIDENCY_AUDIT_KEY_PASSPHRASE", raising=False)
    monkeypatch.setattr(signing_keys, "generate_signing_key", _boom)
    assert main(_keygen(tmp_path, "--debug")) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "_boom" in err
    assert err.strip().splitlines()[-1].startswith("internal error: RuntimeError: invariant broken")
    # the flag does not stick to the next invocation
    assert main(_keygen(tmp_path)) == EXIT_INTERNAL
    assert "Traceback" not in capsys.readouterr().err


def test_internal_error_raised_by_the_library_is_exit_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_: object, **__: object) -> object:
        raise InternalError("leaf count disagrees with the tree", path=tmp_path / "log")

    monkeypatch.delenv("RESIDENCY_AUDIT_KEY_PASSPHRASE", raising=False)
    monkeypatch.setattr(signing_keys, "generate_signing_key", broken)
    assert main(_keygen(tmp_path)) == EXIT_INTERNAL
    line = capsys.readouterr().err.strip()
    assert line.startswith(f"internal error: {tmp_path / 'log'}: leaf count disagrees with the tree (a bug")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InputError, EXIT_INPUT),
        (KeyMaterialError, EXIT_INPUT),
        (PolicyError, EXIT_INPUT),
        (RecordError, EXIT_INPUT),
        (IntegrityError, EXIT_INTEGRITY),
        (SignatureError, EXIT_INTEGRITY),
        (LogVerificationError, EXIT_INTEGRITY),
        (CompletenessError, EXIT_INTEGRITY),
        (InternalError, EXIT_INTERNAL),
        (AuditError, EXIT_INTERNAL),
    ],
)
def test_each_error_class_maps_to_its_exit_code(
    error: type[AuditError],
    code: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def fail(*_: object, **__: object) -> object:
        raise error("what went wrong", path="some/file.jsonl", line=7, hint="do this next")

    monkeypatch.delenv("RESIDENCY_AUDIT_KEY_PASSPHRASE", raising=False)
    monkeypatch.setattr(signing_keys, "generate_signing_key", fail)
    assert main(_keygen(tmp_path)) == code
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "some/file.jsonl:7: what went wrong" in lines[0]
    if code != EXIT_INTERNAL:
        assert lines[0] == "error: some/file.jsonl:7: what went wrong; do this next"


def test_scan_error_is_an_integrity_failure_that_survives_pickling() -> None:
    exc = ScanError("aws", "us-east-1", "s3 list_buckets", "AccessDenied")
    assert exc.exit_code == EXIT_INTEGRITY and isinstance(exc, IntegrityError)
    copy = pickle.loads(pickle.dumps(exc))
    assert str(copy) == str(exc) == "aws us-east-1: s3 list_buckets failed: AccessDenied"
    assert (copy.provider, copy.region, copy.operation) == ("aws", "us-east-1", "s3 list_buckets")


def test_errors_keep_path_line_and_hint_across_processes() -> None:
    exc = LogVerificationError("root mismatch", path="log/segments/00000001.jsonl", line=3, hint="restore it")
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is LogVerificationError
    assert copy.diagnostic() == exc.diagnostic() == "log/segments/00000001.jsonl:3: root mismatch; restore it"
