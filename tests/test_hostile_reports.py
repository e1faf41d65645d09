"""Reports under attack: signer-chosen times, unsigned approvals, a closed stdout, a full disk, killed runs.

Each test is named after the attack it stops (issue 14, items 3, 7 and 8).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path

import orjson
import pytest

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INPUT, EXIT_INTEGRITY, InputError, IntegrityError, LockedError, SignatureError
from audit.locking import DirectoryLock
from audit.pipeline import replay, store_rule_ids
from audit.policy import load_policy
from audit.report.publish import FINDINGS_FILE, REPORT_FILE, abandoned_staging, report_staging, write_report_dir
from audit.report.statement import CLOCK_SKEW, build_statement, sign_statement
from audit.report.verify import verify_report
from audit.residency.report import add_residency_to_report
from audit.residency.scanner import scan, settings_from_policy
from audit.signing.dsse import envelope_bytes
from audit.signing.keys import (
    KeyPurpose,
    Keyring,
    SigningKey,
    add_key,
    entry_for_public_key,
    generate_signing_key,
    load_keyring,
    public_key_pem,
)
from tests.conftest import ACCESS_LOG, APPROVALS_LOG, FIXTURES, KEYS, POLICIES, REPO

NOW = datetime(2022, 6, 30, tzinfo=UTC)
NEWEST_CHECKPOINT = datetime(2022, 2, 1, tzinfo=UTC)  # of the fixture access log
KEYRING = str(KEYS / "keyring.json")
PLAIN_APPROVALS = FIXTURES / "approvals.jsonl"


@pytest.fixture
def report_dir(tmp_path: Path, keyring: Keyring, auditor_key: SigningKey) -> Path:
    out = tmp_path / "report"
    replay(ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, auditor_key, out, now=NOW)
    return out


def _report_key(
    keyring: Keyring, not_before: datetime | None, not_after: datetime | None
) -> tuple[Keyring, SigningKey]:
    key = generate_signing_key()
    entry = entry_for_public_key(
        public_key_pem(key.public), not_before=not_before, not_after=not_after, purposes=(KeyPurpose.report,)
    )
    return add_key(keyring, entry), key


def _resign(report_dir: Path, key: SigningKey, generated_at: datetime) -> None:
    """What a dishonest signer does: the same report, re-signed claiming another time."""
    verified = verify_report(report_dir / REPORT_FILE, load_keyring(Path(KEYRING)))
    statement = verified.statement
    predicate = statement.predicate.model_copy(update={"generated_at": generated_at})
    forged = build_statement(statement.subject, predicate)
    (report_dir / REPORT_FILE).write_bytes(envelope_bytes(sign_statement(forged, key)))


# ---------------------------------------------------------------------------- time the signer cannot choose


def test_report_postdated_beyond_the_clock_skew_is_rejected(report_dir: Path, keyring: Keyring) -> None:
    assert verify_report(report_dir / REPORT_FILE, keyring, now=NOW - CLOCK_SKEW + timedelta(seconds=1)).ok
    with pytest.raises(SignatureError, match="in the future"):
        verify_report(report_dir / REPORT_FILE, keyring, now=NOW - CLOCK_SKEW - timedelta(seconds=1))


def test_report_with_a_naive_generated_at_is_an_integrity_failure_not_a_crash(
    report_dir: Path, keyring: Keyring
) -> None:
    """Any keyring key (of any purpose) could sign a time without a zone; it must fail closed, never exit 4."""
    verified = verify_report(report_dir / REPORT_FILE, keyring)
    payload = orjson.loads(build_statement(verified.statement.subject, verified.statement.predicate).model_dump_json())
    payload["predicate"]["generated_at"] = "2022-03-01T00:00:00"  # no timezone
    ring, key = _report_key(keyring, not_before=None, not_after=None)
    from audit.signing.dsse import sign_envelope

    envelope = sign_envelope(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS), "application/vnd.in-toto+json", key)
    (report_dir / REPORT_FILE).write_bytes(envelope_bytes(envelope))
    with pytest.raises(IntegrityError, match="generated_at"):
        verify_report(report_dir / REPORT_FILE, ring)


def test_not_yet_valid_key_cannot_postdate_a_report(report_dir: Path, keyring: Keyring) -> None:
    future = datetime(2030, 1, 1, tzinfo=UTC)
    ring, key = _report_key(keyring, not_before=future, not_after=None)
    _resign(report_dir, key, future + timedelta(days=1))
    assert verify_report(report_dir / REPORT_FILE, ring, now=future + timedelta(days=2)).ok  # genuinely later
    with pytest.raises(SignatureError, match="in the future"):
        verify_report(report_dir / REPORT_FILE, ring, now=NOW)


def test_expired_key_cannot_backdate_a_report_before_the_logs_newest_checkpoint(
    report_dir: Path, keyring: Keyring
) -> None:
    expired = NEWEST_CHECKPOINT - timedelta(days=10)
    ring, key = _report_key(keyring, not_before=datetime(2021, 1, 1, tzinfo=UTC), not_after=expired)
    _resign(report_dir, key, expired - timedelta(days=1))
    # Residual risk (docs/report-format.md): without the log, a backdated time cannot be told apart.
    assert verify_report(report_dir / REPORT_FILE, ring, now=NOW).ok
    with pytest.raises(SignatureError, match="earlier than the newest checkpoint of its log"):
        verify_report(report_dir / REPORT_FILE, ring, log=ACCESS_LOG, now=NOW)


def test_report_generated_before_the_logs_newest_checkpoint_fails_report_verify_with_log(
    report_dir: Path, auditor_key: SigningKey, capsys: pytest.CaptureFixture[str]
) -> None:
    _resign(report_dir, auditor_key, NEWEST_CHECKPOINT - timedelta(seconds=1))
    args = ["report", "verify", str(report_dir / REPORT_FILE), "--keyring", KEYRING]
    assert main(args) == EXIT_CLEAN
    assert main([*args, "--log", str(ACCESS_LOG)]) == EXIT_INTEGRITY
    assert "earlier than the newest checkpoint" in capsys.readouterr().err
    _resign(report_dir, auditor_key, NEWEST_CHECKPOINT)
    assert main([*args, "--log", str(ACCESS_LOG)]) == EXIT_CLEAN


def test_replay_refuses_to_sign_with_a_time_before_the_logs_newest_checkpoint(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey
) -> None:
    out = tmp_path / "report"
    with pytest.raises(InputError, match="earlier than the log's newest checkpoint"):
        replay(
            ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, auditor_key, out, now=NEWEST_CHECKPOINT - timedelta(seconds=1)
        )
    assert not out.exists()
    assert not list(tmp_path.iterdir())


def test_residency_refuses_to_resign_a_report_earlier_than_it_was_generated(
    report_dir: Path, keyring: Keyring, auditor_key: SigningKey
) -> None:
    before = (report_dir / REPORT_FILE).read_bytes()
    policy = load_policy(POLICIES)
    result = scan([], settings_from_policy(policy, as_of=date(2022, 6, 30)))
    fold = partial(
        add_residency_to_report, report_dir, keyring, auditor_key, result, store_rules=store_rule_ids(policy)
    )
    with pytest.raises(InputError, match="earlier than it was generated"):  # within the clock skew
        fold(now=NOW - timedelta(minutes=1))
    with pytest.raises(SignatureError, match="in the future"):  # beyond it, the report itself is refused
        fold(now=NOW - timedelta(days=1))
    assert (report_dir / REPORT_FILE).read_bytes() == before
    signed = fold(now=NOW + timedelta(days=1))
    assert signed.predicate.generated_at == NOW + timedelta(days=1)


# ---------------------------------------------------------------------------- approvals trust


def test_plain_approvals_file_is_refused_when_signed_approvals_are_required(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey
) -> None:
    out = tmp_path / "report"
    with pytest.raises(InputError, match="--require-signed-approvals refuses unsigned approvals") as caught:
        replay(ACCESS_LOG, keyring, PLAIN_APPROVALS, POLICIES, auditor_key, out, now=NOW, require_signed_approvals=True)
    assert caught.value.path == str(PLAIN_APPROVALS)
    assert not out.exists()
    outcome = replay(
        ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, auditor_key, out, now=NOW, require_signed_approvals=True
    )
    assert outcome.statement.predicate.approvals.signature_verified


def test_plain_approvals_file_is_refused_by_the_cli_flag_with_exit_2(
    tmp_path: Path, fixture_passphrase: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "replay",
            str(ACCESS_LOG),
            "--keyring",
            KEYRING,
            "--approvals",
            str(PLAIN_APPROVALS),
            "--report-key",
            str(KEYS / "auditor.key"),
            "--out",
            str(tmp_path / "r"),
            "--policy",
            str(POLICIES),
            "--require-signed-approvals",
        ]
    )
    assert code == EXIT_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(PLAIN_APPROVALS) in err[0] and "--require-signed-approvals" in err[0]


def test_plain_approvals_file_is_refused_when_the_pack_requires_signed_approvals(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey
) -> None:
    policy = tmp_path / "policies"
    shutil.copytree(POLICIES, policy)
    with (policy / "pack.yaml").open("a") as fh:
        fh.write("require_signed_approvals: true\n")
    with pytest.raises(InputError, match=r"require_signed_approvals in pack\.yaml"):
        replay(ACCESS_LOG, keyring, PLAIN_APPROVALS, policy, auditor_key, tmp_path / "r", now=NOW)
    replay(ACCESS_LOG, keyring, APPROVALS_LOG, policy, auditor_key, tmp_path / "r", now=NOW)


@pytest.mark.parametrize(
    ("approvals", "expected"),
    [
        (APPROVALS_LOG, "approvals: signature-verified"),
        (PLAIN_APPROVALS, "approvals: NOT signature-verified"),
    ],
)
def test_report_verify_says_whether_unsigned_approvals_were_used(
    tmp_path: Path,
    keyring: Keyring,
    auditor_key: SigningKey,
    capsys: pytest.CaptureFixture[str],
    approvals: Path,
    expected: str,
) -> None:
    out = tmp_path / "report"
    replay(ACCESS_LOG, keyring, approvals, POLICIES, auditor_key, out, now=NOW)
    assert main(["report", "verify", str(out / REPORT_FILE), "--keyring", KEYRING]) == EXIT_CLEAN
    assert expected in capsys.readouterr().out


# ---------------------------------------------------------------------------- error contract


def _run_with_closed_stdout(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI with stdout a pipe nobody reads any more (``| head -0`` without the race)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "audit", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            cwd=REPO,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)


@pytest.mark.parametrize(
    ("logdir", "expected"),
    [
        (FIXTURES / "tampered" / "bad_signature", EXIT_INTEGRITY),
        (None, EXIT_CLEAN),
    ],
)
def test_closed_stdout_never_changes_the_exit_code(logdir: Path | None, expected: int) -> None:
    args = ["log", "verify", str(ACCESS_LOG), "--keyring", KEYRING]
    if logdir is not None:
        args = ["log", "verify", str(logdir / "log"), "--keyring", str(logdir / "keyring.json")]
    for extra in ([], ["--format", "json"]):
        done = _run_with_closed_stdout(*args, *extra)
        assert done.returncode == expected, done.stderr
        assert b"Traceback" not in done.stderr and b"BrokenPipe" not in done.stderr


def test_disk_full_while_publishing_a_report_names_the_file(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    out = tmp_path / "report"
    with pytest.raises(InputError, match="cannot write: No space left on device") as caught:
        replay(ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, auditor_key, out, now=NOW)
    assert caught.value.path is not None and caught.value.path.endswith(FINDINGS_FILE)
    with pytest.raises(InputError, match="cannot write: No space left on device") as caught:
        write_report_dir(out, {"report.md": b"# report\n"})
    assert caught.value.path is not None and caught.value.path.endswith("report.md")
    assert not list(tmp_path.iterdir())


def _killed_mid_publish(out: Path) -> None:
    """A run that is SIGKILLed while building its report: it leaves its staging directory behind."""
    code = (
        "import os, signal, sys; from pathlib import Path; from audit.report.publish import report_staging\n"
        "with report_staging(Path(sys.argv[1])) as staging:\n"
        "    (staging / 'findings.jsonl').write_text('half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(out)], cwd=REPO, timeout=60, check=False)
    assert done.returncode == -9


def test_killed_runs_staging_directory_is_removed_by_the_next_run(
    report_dir: Path, keyring: Keyring, auditor_key: SigningKey
) -> None:
    _killed_mid_publish(report_dir)
    left = abandoned_staging(report_dir)
    assert len(left) == 1 and left[0].name.startswith(f".{report_dir.name}.staging-")
    unrelated = report_dir.parent / f".{report_dir.name}.notes"
    unrelated.mkdir()
    link = report_dir.parent / f"{left[0].name[:-6]}link00"
    link.symlink_to(unrelated)
    replay(ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, auditor_key, report_dir, now=NOW)
    assert not left[0].exists()
    assert unrelated.is_dir() and link.is_symlink()  # not ours: never removed


def test_running_runs_staging_directory_is_never_removed(tmp_path: Path) -> None:
    out = tmp_path / "report"
    with report_staging(out) as mine:
        assert abandoned_staging(out) == []  # this process is alive
        (mine / FINDINGS_FILE).write_text("")
        (mine / REPORT_FILE).write_text('{"run": 1}')
        with pytest.raises(LockedError), report_staging(out):  # a second run on the same output is refused
            pytest.fail("a second run entered a locked report directory")
        assert mine.is_dir()
    assert orjson.loads((out / REPORT_FILE).read_bytes()) == {"run": 1}
    assert not abandoned_staging(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_two_runs_on_one_report_directory_the_second_fails_locked(tmp_path: Path) -> None:
    out = tmp_path / "report"
    with DirectoryLock(out), pytest.raises(LockedError) as caught, report_staging(out):
        pytest.fail("a second run entered a locked report directory")
    assert caught.value.exit_code == EXIT_INPUT
    assert f"{out} is locked by PID {os.getpid()}" in str(caught.value)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == []  # nothing left behind
    write_report_dir(out, {FINDINGS_FILE: b""})  # free again once the holder is gone
    assert (out / FINDINGS_FILE).is_file()
