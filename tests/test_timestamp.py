"""RFC 3161 tokens for reports (audit.report.timestamp) against a local TSA on 127.0.0.1: request, store, verify."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INPUT, EXIT_INTEGRITY, InputError, IntegrityError, SignatureError
from audit.pipeline import replay
from audit.report.publish import REPORT_FILE, TIMESTAMP_FILE
from audit.report.timestamp import (
    TsaTrust,
    load_tsa_trust,
    request_timestamp,
    timestamp_report,
    verify_report_timestamp,
    verify_timestamp,
)
from audit.report.verify import verify_report
from audit.signing.keys import Keyring, SigningKey
from tests.conftest import ACCESS_LOG, APPROVALS_LOG, POLICIES
from tests.local_tsa import GEN_TIME, LocalTsa, rejection, serving

REPLAY_NOW = datetime(2022, 6, 30, tzinfo=UTC)
ENVELOPE = b'{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}'


@pytest.fixture(scope="module")
def tsa() -> LocalTsa:
    return LocalTsa()


@pytest.fixture(scope="module")
def other_tsa() -> LocalTsa:
    return LocalTsa("Other TSA")


@pytest.fixture
def chain(tsa: LocalTsa, tmp_path: Path) -> Path:
    path = tmp_path / "tsa-chain.pem"
    path.write_bytes(tsa.chain_pem())
    return path


@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    out = tmp_path / "report"
    out.mkdir()
    (out / REPORT_FILE).write_bytes(ENVELOPE)
    return out


def test_request_store_and_verify_round_trip(tsa: LocalTsa, chain: Path, outdir: Path) -> None:
    trust = load_tsa_trust(chain)
    with serving(tsa.respond) as served:
        stored = timestamp_report(outdir, served.url, trust=trust)
    assert stored.path == outdir / TIMESTAMP_FILE and stored.verified
    assert stored.gen_time == GEN_TIME
    content_type, _, query = served.requests[0].partition(b"\n")
    assert content_type == b"application/timestamp-query"
    assert hashlib.sha256(ENVELOPE).digest() in query
    assert verify_report_timestamp(outdir / REPORT_FILE, trust) == GEN_TIME
    assert not [p for p in outdir.iterdir() if p.name.endswith(".tmp")]


def test_gen_time_is_the_tokens(tsa: LocalTsa, chain: Path) -> None:
    when = datetime(2027, 3, 4, 5, 6, 7, tzinfo=UTC)
    token = tsa.token(hashlib.sha256(ENVELOPE).digest(), gen_time=when)
    got = verify_timestamp(token, ENVELOPE, load_tsa_trust(chain))
    assert got == when and got.tzinfo is not None


def test_a_token_over_another_envelope_fails(tsa: LocalTsa, chain: Path) -> None:
    token = tsa.token(hashlib.sha256(b"another envelope").digest())
    with pytest.raises(IntegrityError, match="not this envelope"):
        verify_timestamp(token, ENVELOPE, load_tsa_trust(chain))


def test_a_token_from_another_tsa_fails(other_tsa: LocalTsa, chain: Path) -> None:
    token = other_tsa.token(hashlib.sha256(ENVELOPE).digest())
    with pytest.raises(IntegrityError, match="does not verify"):
        verify_timestamp(token, ENVELOPE, load_tsa_trust(chain))


def test_another_tsa_under_the_same_root_fails_when_one_is_pinned(tsa: LocalTsa, chain: Path) -> None:
    sibling = LocalTsa("Test TSA", issued_by=tsa)  # same name and root, another key
    token = sibling.token(hashlib.sha256(ENVELOPE).digest())
    assert verify_timestamp(token, ENVELOPE, TsaTrust(roots=(tsa.ca,))) == GEN_TIME  # root alone: any of its TSAs
    with pytest.raises(IntegrityError, match="does not verify"):
        verify_timestamp(token, ENVELOPE, load_tsa_trust(chain))


def test_a_moved_gen_time_fails(tsa: LocalTsa, chain: Path) -> None:
    token = tsa.token(hashlib.sha256(ENVELOPE).digest())
    original = GEN_TIME.strftime("%Y%m%d%H%M%SZ").encode()
    assert token.count(original) == 1
    moved = token.replace(original, b"20261101120000Z")
    with pytest.raises(IntegrityError, match="does not verify"):
        verify_timestamp(moved, ENVELOPE, load_tsa_trust(chain))


@pytest.mark.parametrize("where", [-10, -40, 100, 400])
def test_a_tampered_token_fails(tsa: LocalTsa, chain: Path, where: int) -> None:
    token = bytearray(tsa.token(hashlib.sha256(ENVELOPE).digest()))
    token[where] ^= 0x01
    with pytest.raises(IntegrityError):
        verify_timestamp(bytes(token), ENVELOPE, load_tsa_trust(chain))


@pytest.mark.parametrize("junk", [b"", b"not der", b"\x30\x03\x02\x01\x00"])
def test_junk_is_not_a_token(chain: Path, junk: bytes) -> None:
    with pytest.raises(IntegrityError, match="not an RFC 3161 time-stamp response"):
        verify_timestamp(junk, ENVELOPE, load_tsa_trust(chain))


def test_a_missing_token_fails(chain: Path, outdir: Path) -> None:
    with pytest.raises(IntegrityError, match="no time-stamp token"):
        verify_report_timestamp(outdir / REPORT_FILE, load_tsa_trust(chain))


def test_a_changed_envelope_fails_its_stored_token(tsa: LocalTsa, chain: Path, outdir: Path) -> None:
    (outdir / TIMESTAMP_FILE).write_bytes(tsa.token(hashlib.sha256(ENVELOPE).digest()))
    (outdir / REPORT_FILE).write_bytes(ENVELOPE.replace(b"e30=", b"e31="))
    with pytest.raises(IntegrityError, match="not this envelope"):
        verify_report_timestamp(outdir / REPORT_FILE, load_tsa_trust(chain))


def test_a_chain_without_its_root_is_refused(tsa: LocalTsa, tmp_path: Path) -> None:
    leaf_only = tmp_path / "leaf.pem"
    leaf_only.write_bytes(tsa.cert.public_bytes(Encoding.PEM))
    with pytest.raises(InputError, match="no self-signed root"):
        load_tsa_trust(leaf_only)
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"hello")
    with pytest.raises(InputError, match="not a PEM file"):
        load_tsa_trust(garbage)


def test_the_tsa_must_answer_with_the_nonce_it_was_sent(tsa: LocalTsa) -> None:
    def stale(query: bytes) -> tuple[int, str, bytes]:
        return 200, "application/timestamp-reply", tsa.token(hashlib.sha256(ENVELOPE).digest(), nonce=42)

    with serving(stale) as served, pytest.raises(InputError, match=f"{served.url}: .*nonce"):
        request_timestamp(ENVELOPE, served.url)


def test_the_tsa_must_answer_over_this_envelope(tsa: LocalTsa) -> None:
    def wrong(query: bytes) -> tuple[int, str, bytes]:
        return tsa.respond(query.replace(hashlib.sha256(ENVELOPE).digest(), bytes(32)))

    with serving(wrong) as served, pytest.raises(InputError, match="not this envelope"):
        request_timestamp(ENVELOPE, served.url)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ((500, "text/plain", b"boom"), "HTTP 500"),
        ((200, "application/timestamp-reply", rejection()), "refused .*bad request"),
        ((200, "application/timestamp-reply", b"<html>"), "not an RFC 3161"),
        ((200, "application/timestamp-reply", b"x" * 300_000), "larger than"),
    ],
)
def test_tsa_failures_name_the_url(reply: tuple[int, str, bytes], message: str) -> None:
    with serving(lambda _query: reply) as served, pytest.raises(InputError, match=message) as caught:
        request_timestamp(ENVELOPE, served.url)
    assert served.url in caught.value.reason


def test_unreachable_tsa_and_bad_urls(tmp_path: Path) -> None:
    with serving(lambda _q: (200, "x", b"")) as served:
        url = served.url
    with pytest.raises(InputError, match=f"{url}: cannot reach it"):
        request_timestamp(ENVELOPE, url, timeout=2)
    for bad in (f"file://{tmp_path}/x", "ftp://127.0.0.1/", "not a url", "http://[::1/", "https://"):
        with pytest.raises(InputError, match="not an http"):
            request_timestamp(ENVELOPE, bad)


def test_nothing_is_written_when_the_token_does_not_verify(other_tsa: LocalTsa, chain: Path, outdir: Path) -> None:
    with serving(other_tsa.respond) as served, pytest.raises(IntegrityError):
        timestamp_report(outdir, served.url, trust=load_tsa_trust(chain))
    assert not (outdir / TIMESTAMP_FILE).exists()
    with serving(other_tsa.respond) as served:
        stored = timestamp_report(outdir, served.url)
    assert (outdir / TIMESTAMP_FILE).exists() and not stored.verified


# ---------------------------------------------------------------------------- CLI


def test_cli_timestamp_then_check(tsa: LocalTsa, chain: Path, outdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serving(tsa.respond) as served:
        assert main(["report", "timestamp", str(outdir), "--tsa-url", served.url, "--tsa-cert", str(chain)]) == 0
    assert "genTime 2026-12-01T12:00:00+00:00, verified" in capsys.readouterr().out
    assert main(["report", "check-timestamp", str(outdir), "--tsa-cert", str(chain)]) == EXIT_CLEAN
    printed = capsys.readouterr().out
    assert "genTime 2026-12-01T12:00:00+00:00" in printed and "VERIFIED" in printed


def test_cli_check_fails_a_token_from_another_tsa(
    other_tsa: LocalTsa, chain: Path, outdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serving(other_tsa.respond) as served:
        assert main(["report", "timestamp", str(outdir), "--tsa-url", served.url]) == EXIT_CLEAN
    assert "NOT verified" in capsys.readouterr().out
    assert main(["report", "check-timestamp", str(outdir), "--tsa-cert", str(chain)]) == EXIT_INTEGRITY
    assert capsys.readouterr().out.startswith("FAILED: ")
    with serving(other_tsa.respond) as served:
        code = main(["report", "timestamp", str(outdir), "--tsa-url", served.url, "--tsa-cert", str(chain)])
    assert code == EXIT_INTEGRITY


def test_cli_tsa_errors_exit_2_naming_the_url(outdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serving(lambda _query: (503, "text/plain", b"busy")) as served:
        assert main(["report", "timestamp", str(outdir), "--tsa-url", served.url]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert served.url in err and "HTTP 503" in err and len(err.strip().splitlines()) == 1
    assert not (outdir / TIMESTAMP_FILE).exists()


def test_cli_check_without_a_token_or_with_a_bad_chain(
    chain: Path, outdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "check-timestamp", str(outdir), "--tsa-cert", str(chain)]) == EXIT_INTEGRITY
    assert "no time-stamp token" in capsys.readouterr().out
    assert main(["report", "check-timestamp", str(outdir), "--tsa-cert", str(tmp_path / "none.pem")]) == EXIT_INPUT


def test_a_real_report_round_trip_and_a_new_run_replaces_the_token(
    tsa: LocalTsa, chain: Path, tmp_path: Path, keyring: Keyring, auditor_key: SigningKey
) -> None:
    out = tmp_path / "signed"
    replay(ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, auditor_key, out, now=REPLAY_NOW)
    with serving(tsa.respond) as served:
        timestamp_report(out, served.url, trust=load_tsa_trust(chain))
    assert verify_report_timestamp(out / REPORT_FILE, load_tsa_trust(chain)) == GEN_TIME
    assert verify_report(out / REPORT_FILE, keyring).ok  # the token beside the report changes nothing there
    replay(ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, auditor_key, out, now=REPLAY_NOW + timedelta(days=1))
    assert not (out / TIMESTAMP_FILE).exists()  # a report file: replaced with the rest, never "foreign"


def test_a_slow_tsa_times_out() -> None:
    def slow(_query: bytes) -> tuple[int, str, bytes]:
        time.sleep(1.0)
        return 200, "application/timestamp-reply", b""

    with serving(slow) as served, pytest.raises(InputError, match=f"{served.url}: cannot reach it: .*timed out"):
        request_timestamp(ENVELOPE, served.url, timeout=0.3)


def test_a_tsa_that_hangs_up_mid_reply() -> None:
    def truncated(_query: bytes) -> tuple[int, str, bytes]:
        raise ConnectionResetError  # the handler dies: the client sees the connection closed without a reply

    with serving(truncated) as served, pytest.raises(InputError, match=f"{served.url}: cannot reach it"):
        request_timestamp(ENVELOPE, served.url, timeout=5)


def test_backdated_report_by_a_key_expired_before_the_tsa_time_fails_report_verify_with_tsa_cert(
    tsa: LocalTsa, tmp_path: Path
) -> None:
    """An expired key backdates a report into its window; the TSA token shows when it really existed."""
    import json as _json

    from audit.pipeline import replay
    from audit.report.publish import REPORT_FILE
    from audit.report.timestamp import load_tsa_trust
    from audit.report.verify import verify_report
    from audit.signing.keys import load_keyring, load_private_key
    from fixtures.passphrase import FIXTURE_PASSPHRASE
    from tests.conftest import ACCESS_LOG, APPROVALS_LOG, KEYS, POLICIES

    out = tmp_path / "report"
    claimed = datetime(2026, 5, 1, tzinfo=UTC)  # what the signer writes as generated_at
    auditor = load_private_key(KEYS / "auditor.key", FIXTURE_PASSPHRASE)
    replay(ACCESS_LOG, load_keyring(KEYS / "keyring.json"), APPROVALS_LOG, POLICIES, auditor, out, now=claimed)
    envelope = (out / REPORT_FILE).read_bytes()
    (out / "report.tsr").write_bytes(tsa.token(hashlib.sha256(envelope).digest()))  # genTime 2026-12-01
    chain = tmp_path / "tsa.pem"
    chain.write_bytes(tsa.chain_pem())
    ring = _json.loads((KEYS / "keyring.json").read_text())
    for entry in ring["keys"]:
        if entry["key_id"] == auditor.key_id:
            entry["not_after"] = "2026-06-01T00:00:00Z"  # the key expired before the report existed
    expired_ring = tmp_path / "keyring.json"
    expired_ring.write_text(_json.dumps(ring))
    keyring = load_keyring(expired_ring)
    assert verify_report(out / REPORT_FILE, keyring, now=claimed).ok  # without the token the backdating passes
    with pytest.raises(SignatureError, match="expired at 2026-12-01"):
        verify_report(out / REPORT_FILE, keyring, tsa=load_tsa_trust(chain))
    fresh = load_keyring(KEYS / "keyring.json")
    result = verify_report(out / REPORT_FILE, fresh, tsa=load_tsa_trust(chain))
    assert result.ok and any(c.name == "report.tsr" and c.ok for c in result.checks)
