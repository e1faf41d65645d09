"""Keys, keyring and DSSE envelopes (including interop with securesystemslib)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey  # type: ignore[attr-defined]

from audit.cli.app import main
from audit.errors import InputError, IntegrityError, KeyMaterialError
from audit.logs.writer import seal
from audit.signing.dsse import (
    Signature,
    envelope_bytes,
    pae,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)
from audit.signing.keys import (
    PASSPHRASE_ENV,
    Keyring,
    KeyringEntry,
    KeyStatus,
    SigningKey,
    add_key,
    entry_for_public_key,
    generate_signing_key,
    key_id_for,
    load_keyring,
    load_private_key,
    passphrase_from_env,
    public_key_pem,
    require_signing_key_valid,
    resolve_key_id,
    revoke_key,
    signing_key_from_seed,
    write_keyring,
    write_private_key,
)
from audit.signing.pkcs8 import KDF_ITERATIONS, pbkdf2_iterations

TYPE = "application/vnd.example+json"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def entry_for(key: SigningKey, **kwargs: Any) -> KeyringEntry:
    return KeyringEntry(key_id=key.key_id, public_key=public_key_pem(key.public), **kwargs)


@pytest.fixture
def key() -> SigningKey:
    return signing_key_from_seed(bytes(32))


@pytest.fixture
def ring(key: SigningKey) -> Keyring:
    return Keyring(keys=(entry_for(key),))


# ----------------------------------------------------------------------------- DSSE


def test_pae_matches_dsse_spec_example() -> None:
    # https://github.com/secure-systems-lab/dsse/blob/master/protocol.md#test-vectors
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("t\u00e9", "\u00e9".encode()) == b"DSSEv1 3 t\xc3\xa9 2 \xc3\xa9"
    assert pae("", b"") == b"DSSEv1 0  0 "


def test_seed_key_is_the_rfc8032_zero_seed_key(key: SigningKey) -> None:
    assert key.public.public_bytes_raw().hex() == ("3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29")
    assert key.key_id == key_id_for(key.public)
    assert key.key_id == "139e3940e64b5491722088d9a0d741628fc826e09475d341a780acde3c4b8070"


def test_sign_verify_round_trip(key: SigningKey, ring: Keyring) -> None:
    env = sign_envelope(b'{"a":1}', TYPE, key)
    raw = envelope_bytes(env)
    assert raw.startswith(b'{"payload":"eyJhIjoxfQ==","payloadType":')
    assert not raw.endswith(b"\n")
    parsed = parse_envelope(raw, path="x.json")
    assert parsed == env
    verified = verify_envelope(parsed, ring, expected_type=TYPE)
    assert verified.payload == b'{"a":1}'
    assert verified.key_id == key.key_id
    # Ed25519 is deterministic: the same input gives the same bytes.
    assert envelope_bytes(sign_envelope(b'{"a":1}', TYPE, key)) == raw


def test_tampered_payload_is_a_bad_signature(key: SigningKey, ring: Keyring) -> None:
    env = sign_envelope(b'{"a":1}', TYPE, key)
    forged = env.model_copy(update={"payload": base64.b64encode(b'{"a":2}').decode()})
    with pytest.raises(IntegrityError, match=f"bad signature by key {key.key_id}"):
        verify_envelope(forged, ring, expected_type=TYPE)


def test_flipped_signature_bit_is_a_bad_signature(key: SigningKey, ring: Keyring) -> None:
    env = sign_envelope(b"x", TYPE, key)
    sig = bytearray(env.signatures[0].sig_bytes())
    sig[10] ^= 1
    bad = Signature(keyid=key.key_id, sig=base64.b64encode(bytes(sig)).decode())
    forged = env.model_copy(update={"signatures": (bad,)})
    with pytest.raises(IntegrityError, match="bad signature"):
        verify_envelope(forged, ring, expected_type=TYPE)


def test_unknown_key(ring: Keyring) -> None:
    other = signing_key_from_seed(b"\x01" * 32)
    env = sign_envelope(b"x", TYPE, other)
    with pytest.raises(IntegrityError, match=f"^unknown key {other.key_id}$"):
        verify_envelope(env, ring, expected_type=TYPE)


def test_unexpected_payload_type(key: SigningKey, ring: Keyring) -> None:
    env = sign_envelope(b"x", "application/other", key)
    with pytest.raises(IntegrityError, match="unexpected payloadType 'application/other'"):
        verify_envelope(env, ring, expected_type=TYPE, path="env.json")


def test_second_signature_by_known_key_is_enough(key: SigningKey, ring: Keyring) -> None:
    other = signing_key_from_seed(b"\x02" * 32)
    mine = sign_envelope(b"x", TYPE, key)
    theirs = sign_envelope(b"x", TYPE, other)
    both = mine.model_copy(update={"signatures": theirs.signatures + mine.signatures})
    assert verify_envelope(both, ring, expected_type=TYPE).key_id == key.key_id


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "malformed envelope JSON"),
        (b"[]", "not a JSON object"),
        (b'{"payload":"eA==","payloadType":"t","signatures":[]}', "signatures"),
        (b'{"payload":"eA==","payloadType":"t","signatures":[{"keyid":"k","sig":"eA=="}],"x":1}', "unknown field"),
        (b'{"payload":"e A","payloadType":"t","signatures":[{"keyid":"k","sig":"eA=="}]}', "base64"),
        # "eB==" decodes like "eA==" but is not what an encoder produces.
        (b'{"payload":"eB==","payloadType":"t","signatures":[{"keyid":"k","sig":"eA=="}]}', "canonical"),
        (b'{"payload":"eA==","payloadType":"t","signatures":[{"keyid":"k","sig":"eA"}]}', "base64"),
    ],
)
def test_parse_envelope_errors(raw: bytes, reason: str) -> None:
    with pytest.raises(InputError, match=reason) as info:
        parse_envelope(raw, path="some/env.json")
    assert str(info.value).startswith("some/env.json: ")
    with pytest.raises(IntegrityError, match=reason):
        parse_envelope(raw, path="some/env.json", integrity=True)


def test_securesystemslib_envelope_verifies_with_ours(key: SigningKey, ring: Keyring) -> None:
    sslib_key = SSlibKey.from_crypto(key.public, keyid=key.key_id)
    signer = CryptoSigner(key.private, sslib_key)
    theirs = SslibEnvelope(payload=b'{"hello":"world"}', payload_type=TYPE, signatures={})
    theirs.sign(signer)
    raw = json.dumps(theirs.to_dict()).encode()
    verified = verify_envelope(parse_envelope(raw, path="theirs.json"), ring, expected_type=TYPE)
    assert verified.payload == b'{"hello":"world"}'
    assert verified.key_id == key.key_id


def test_our_envelope_verifies_with_securesystemslib(key: SigningKey) -> None:
    ours = sign_envelope(b'{"hello":"world"}', TYPE, key)
    theirs = SslibEnvelope.from_dict(json.loads(envelope_bytes(ours)))
    assert theirs.pae() == pae(TYPE, b'{"hello":"world"}')
    sslib_key = SSlibKey.from_crypto(key.public, keyid=key.key_id)
    accepted = theirs.verify([sslib_key], 1)
    assert list(accepted) == [key.key_id]
    # and securesystemslib rejects it once tampered
    theirs.payload = b'{"hello":"mars"}'
    with pytest.raises(VerificationError):
        theirs.verify([sslib_key], 1)


# ----------------------------------------------------------------------------- keys on disk


def test_repr_does_not_reveal_key_material(key: SigningKey) -> None:
    raw = key.private.private_bytes_raw()
    text = repr(key) + str(key) + repr([key]) + f"{key}"
    assert key.key_id in repr(key)
    for form in (raw.hex(), base64.b64encode(raw).decode(), repr(raw)):
        assert form not in text
    assert "private" not in repr(key)


def test_encrypted_key_round_trip(tmp_path: Path) -> None:
    key = generate_signing_key()
    path = tmp_path / "sub" / "k.pem"
    write_private_key(path, key, b"correct horse")
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    assert pbkdf2_iterations(path.read_bytes()) == KDF_ITERATIONS == 600_000
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)  # encrypted keys may be readable; the passphrase protects them
    loaded = load_private_key(path, b"correct horse")
    assert loaded.key_id == key.key_id
    assert loaded.private.private_bytes_raw() == key.private.private_bytes_raw()
    assert [p.name for p in path.parent.iterdir()] == ["k.pem"]  # no temp file left


def test_wrong_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    write_private_key(path, generate_signing_key(), b"right")
    with pytest.raises(KeyMaterialError, match="wrong passphrase") as info:
        load_private_key(path, b"wrong")
    assert str(info.value).startswith(f"{path}: ")


def test_encrypted_key_without_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    write_private_key(path, generate_signing_key(), b"right")
    with pytest.raises(KeyMaterialError, match=f"key is encrypted: set {PASSPHRASE_ENV}"):
        load_private_key(path, None)


def test_unencrypted_key_0600_accepted(tmp_path: Path) -> None:
    key = signing_key_from_seed(b"\x07" * 32)
    path = tmp_path / "k.pem"
    write_private_key(path, key, None)
    assert b"BEGIN PRIVATE KEY" in path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_private_key(path, None).key_id == key.key_id
    # a passphrase given for an unencrypted key is ignored
    assert load_private_key(path, b"unused").key_id == key.key_id


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_unencrypted_key_readable_by_others_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "k.pem"
    write_private_key(path, generate_signing_key(), None)
    os.chmod(path, mode)
    with pytest.raises(KeyMaterialError) as info:
        load_private_key(path, None)
    assert str(info.value) == (
        f"{path}: refusing unencrypted private key readable by others (mode {mode:04o}); chmod 600"
    )


def test_write_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(b"precious")
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_private_key(path, generate_signing_key(), None)
    assert path.read_bytes() == b"precious"


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyMaterialError, match="no such key file") as info:
        load_private_key(tmp_path / "nope.pem", None)
    assert str(tmp_path / "nope.pem") in str(info.value)


def test_not_an_ed25519_key(tmp_path: Path) -> None:
    path = tmp_path / "ec.pem"
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    os.chmod(path, 0o600)
    with pytest.raises(KeyMaterialError, match="not an Ed25519 private key"):
        load_private_key(path, None)
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"hello")
    os.chmod(garbage, 0o600)
    with pytest.raises(KeyMaterialError, match="not a PEM private key"):
        load_private_key(garbage, None)


def test_error_messages_never_contain_key_bytes(tmp_path: Path) -> None:
    key = generate_signing_key()
    path = tmp_path / "k.pem"
    write_private_key(path, key, None)
    os.chmod(path, 0o644)
    with pytest.raises(KeyMaterialError) as info:
        load_private_key(path, None)
    pem = path.read_text()
    body = "".join(pem.splitlines()[1:-1])
    assert body not in str(info.value)
    assert key.private.private_bytes_raw().hex() not in str(info.value)


def test_passphrase_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    assert passphrase_from_env() is None
    monkeypatch.setenv(PASSPHRASE_ENV, "")
    assert passphrase_from_env() is None
    monkeypatch.setenv(PASSPHRASE_ENV, "s\u00e9cret")
    assert passphrase_from_env() == "s\u00e9cret".encode()


def test_seed_must_be_32_bytes() -> None:
    with pytest.raises(KeyMaterialError, match="32 bytes"):
        signing_key_from_seed(b"short")


# ----------------------------------------------------------------------------- keyring


def test_keyring_status_windows(key: SigningKey) -> None:
    nb, na = T0, T0 + timedelta(days=30)
    ring = Keyring(keys=(entry_for(key, not_before=nb, not_after=na),))
    assert ring.status(key.key_id, at=nb) is KeyStatus.ok  # inclusive lower bound
    assert ring.status(key.key_id, at=na) is KeyStatus.ok  # inclusive upper bound
    assert ring.status(key.key_id, at=nb - timedelta(seconds=1)) is KeyStatus.not_yet_valid
    assert ring.status(key.key_id, at=na + timedelta(seconds=1)) is KeyStatus.expired
    assert ring.status("0" * 64, at=nb) is KeyStatus.unknown
    assert KeyStatus.not_yet_valid == "not_yet_valid"


def test_revoked_wins_regardless_of_time(key: SigningKey) -> None:
    ring = Keyring(keys=(entry_for(key, not_before=T0, revoked_at=T0 + timedelta(days=10)),))
    for at in (T0 - timedelta(days=1), T0, T0 + timedelta(days=5), T0 + timedelta(days=50)):
        assert ring.status(key.key_id, at=at) is KeyStatus.revoked


def test_keyring_lookup(key: SigningKey, ring: Keyring) -> None:
    assert ring.get(key.key_id) is ring.keys[0]
    assert ring.get("f" * 64) is None
    assert ring.public_key(key.key_id).public_bytes_raw() == key.public.public_bytes_raw()
    with pytest.raises(IntegrityError, match="unknown key"):
        ring.public_key("f" * 64)


def test_keyring_entry_validation(key: SigningKey) -> None:
    other = signing_key_from_seed(b"\x03" * 32)
    with pytest.raises(ValidationError, match="key_id does not match"):
        KeyringEntry(key_id=other.key_id, public_key=public_key_pem(key.public))
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(ValidationError, match="not an Ed25519 public key"):
        KeyringEntry(key_id=key.key_id, public_key=ec_pem)
    with pytest.raises(ValidationError, match="not a PEM"):
        KeyringEntry(key_id=key.key_id, public_key="nope")
    with pytest.raises(ValidationError, match="timezone"):
        KeyringEntry(key_id=key.key_id, public_key=public_key_pem(key.public), not_before=datetime(2024, 1, 1))
    with pytest.raises(ValidationError, match="duplicate key_id"):
        Keyring(keys=(entry_for(key), entry_for(key)))


def test_keyring_file_round_trip(tmp_path: Path, key: SigningKey) -> None:
    ring = Keyring(keys=(entry_for(key, label="producer", not_before=T0), entry_for(generate_signing_key())))
    path = tmp_path / "keyring.json"
    write_keyring(path, ring)
    data = json.loads(path.read_text())
    assert list(data) == ["keys"]
    assert data["keys"][0]["not_before"] == "2024-01-01T00:00:00Z"
    assert "revoked_at" not in data["keys"][0]
    assert load_keyring(path) == ring
    write_keyring(path, Keyring(keys=ring.keys[:1]))  # replacing is allowed
    assert len(load_keyring(path).keys) == 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{", "malformed JSON"),
        (b"[]", "not a JSON object"),
        (b'{"keys": [{"key_id": "x", "public_key": "y"}]}', "keys.0"),
        (b'{"keys": [], "extra": 1}', "unknown field"),
    ],
)
def test_load_keyring_errors(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "keyring.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=reason) as info:
        load_keyring(path)
    assert str(info.value).startswith(f"{path}")
    with pytest.raises(InputError, match="no such file"):
        load_keyring(tmp_path / "missing.json")


# ----------------------------------------------------------------------------- key lifecycle


def test_require_signing_key_valid_refuses_outside_the_window(key: SigningKey) -> None:
    ring = Keyring(keys=(entry_for(key, not_before=T0, not_after=T0 + timedelta(days=30)),))
    require_signing_key_valid(ring, key, T0)
    require_signing_key_valid(ring, key, T0 + timedelta(days=30))  # inclusive
    with pytest.raises(KeyMaterialError, match=r"refusing to sign at .*expired \(not_after 2024-01-31"):
        require_signing_key_valid(ring, key, T0 + timedelta(days=31))
    with pytest.raises(KeyMaterialError, match="not yet valid"):
        require_signing_key_valid(ring, key, T0 - timedelta(seconds=1))
    with pytest.raises(KeyMaterialError, match="not in the keyring"):
        require_signing_key_valid(ring, signing_key_from_seed(b"\x05" * 32), T0)
    revoked = revoke_key(ring, key.key_id, T0 + timedelta(days=60))
    with pytest.raises(KeyMaterialError, match="revoked at 2024-03-01"):
        require_signing_key_valid(revoked, key, T0)


def test_seal_refuses_a_key_outside_its_window_before_writing(tmp_path: Path, key: SigningKey) -> None:
    ring = Keyring(keys=(entry_for(key, not_after=T0 - timedelta(days=1)),))
    with pytest.raises(KeyMaterialError, match="expired"):
        seal([b'{"a":1}'], out=tmp_path / "log", key=key, origin="o", record_type="t", time=T0, keyring=ring)
    assert not (tmp_path / "log").exists()


def test_add_revoke_resolve(key: SigningKey) -> None:
    ring = add_key(Keyring(keys=()), entry_for_public_key(public_key_pem(key.public), label="p", not_before=T0))
    assert ring.keys[0].key_id == key.key_id and ring.keys[0].label == "p"
    with pytest.raises(InputError, match="already in the keyring"):
        add_key(ring, entry_for(key))
    with pytest.raises(InputError, match="not a PEM"):
        entry_for_public_key("garbage")
    with pytest.raises(InputError, match="not_before is after not_after"):
        entry_for_public_key(public_key_pem(key.public), not_before=T0, not_after=T0 - timedelta(days=1))
    assert resolve_key_id(ring, key.key_id[:8].upper()) == key.key_id
    with pytest.raises(InputError, match="at least 8"):
        resolve_key_id(ring, key.key_id[:4])
    with pytest.raises(InputError, match="no key"):
        resolve_key_id(ring, "ffffffff")
    first = revoke_key(ring, key.key_id, T0 + timedelta(days=2))
    assert first.keys[0].revoked_at == T0 + timedelta(days=2)
    assert revoke_key(first, key.key_id, T0 + timedelta(days=9)) == first  # the earliest revocation stands
    assert revoke_key(first, key.key_id, T0 + timedelta(days=1)).keys[0].revoked_at == T0 + timedelta(days=1)
    assert first.status(key.key_id, at=T0) is KeyStatus.revoked


def test_keyring_cli_add_list_revoke(tmp_path: Path, key: SigningKey, capsys: pytest.CaptureFixture[str]) -> None:
    pub = tmp_path / "key.pub"
    pub.write_text(public_key_pem(key.public))
    ring = tmp_path / "ring.json"
    assert (
        main(
            [
                "keyring",
                "add",
                str(ring),
                str(pub),
                "--label",
                "producer",
                "--not-before",
                "2024-01-01T00:00:00Z",
                "--not-after",
                "2024-12-31",
            ]
        )
        == 2
    )
    assert "--purpose" in capsys.readouterr().err
    assert (
        main(
            [
                "keyring",
                "add",
                str(ring),
                str(pub),
                "--label",
                "producer",
                "--not-before",
                "2024-01-01T00:00:00Z",
                "--not-after",
                "2024-12-31",
                "--purpose",
                "log",
            ]
        )
        == 0
    )
    assert f"added key {key.key_id}" in capsys.readouterr().out
    assert main(["keyring", "add", str(ring), str(pub), "--purpose", "log"]) == 2
    assert "already in the keyring" in capsys.readouterr().err
    assert main(["keyring", "list", str(ring), "--at", "2024-06-01", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)["keys"]
    assert [(k["key_id"], k["status"], k["not_after"], k["purposes"]) for k in listed] == [
        (key.key_id, "ok", "2024-12-31T00:00:00Z", "log")
    ]
    assert main(["keyring", "list", str(ring), "--at", "2025-06-01"]) == 0
    assert "expired" in capsys.readouterr().out
    assert main(["keyring", "revoke", str(ring), key.key_id[:10], "--at", "2024-03-01T12:00:00+01:00"]) == 0
    assert "revoked key" in capsys.readouterr().out
    assert load_keyring(ring).keys[0].revoked_at == datetime(2024, 3, 1, 11, tzinfo=UTC)
    assert main(["keyring", "revoke", str(ring), "0123", "--at", "yesterday"]) == 2
    assert "at least 8 hex digits" in capsys.readouterr().err
    assert main(["keyring", "add", str(ring), str(tmp_path / "missing.pub"), "--purpose", "log"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_keygen_writes_encrypted_pkcs8_and_the_cli_seals_only_inside_the_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "pass phrase")
    key_path, ring = tmp_path / "producer.key", tmp_path / "ring.json"
    assert (
        main(
            ["keygen", "--out", str(key_path), "--keyring", str(ring), "--not-after", "2020-01-01", "--purpose", "log"]
        )
        == 0
    )
    assert key_path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    events = tmp_path / "events.jsonl"
    events.write_text(
        (Path(__file__).resolve().parent.parent / "fixtures" / "events.jsonl").read_text().splitlines()[0] + "\n"
    )
    args = ["log", "seal", str(events), "--key", str(key_path), "--out", str(tmp_path / "log"), "--keyring", str(ring)]
    capsys.readouterr()
    assert main(args) == 2
    assert "refusing to sign" in capsys.readouterr().err and not (tmp_path / "log").exists()


def _legacy_pkcs8(path: Path, key: SigningKey, passphrase: bytes) -> None:
    """A key file as versions before 0.2 wrote it: PKCS#8 PEM, BestAvailableEncryption (PBKDF2, 2,048 rounds)."""
    pem = key.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(passphrase)
    )
    path.write_bytes(pem)
    os.chmod(path, 0o600)


def test_weak_pbkdf2_2048_key_still_loads_marked_weak(tmp_path: Path) -> None:
    key = generate_signing_key()
    path = tmp_path / "old.key"
    _legacy_pkcs8(path, key, b"pw")
    loaded = load_private_key(path, b"pw")
    assert loaded.key_id == key.key_id and loaded.weak_encryption
    fresh = tmp_path / "new.key"
    write_private_key(fresh, key, b"pw")
    assert not load_private_key(fresh, b"pw").weak_encryption


def test_weak_pbkdf2_2048_key_warns_then_keygen_reencrypt_makes_it_strong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "pw")
    key = generate_signing_key()
    path = tmp_path / "old.key"
    _legacy_pkcs8(path, key, b"pw")
    events = tmp_path / "events.jsonl"
    events.write_text(
        (Path(__file__).resolve().parent.parent / "fixtures" / "events.jsonl").read_text().splitlines()[0] + "\n"
    )
    assert main(["log", "seal", str(events), "--key", str(path), "--out", str(tmp_path / "log")]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("WARNING")]
    assert warning == [
        f"WARNING: {path} is encrypted with a weak key derivation (PKCS#8, PBKDF2 with 2,048 "
        f"iterations); re-encrypt it: residency-audit keygen --reencrypt {path}"
    ]
    assert main(["keygen", "--reencrypt", str(path)]) == 0
    assert f"key {key.key_id} in {path} re-encrypted" in capsys.readouterr().out
    reloaded = load_private_key(path, b"pw")
    assert reloaded.key_id == key.key_id and not reloaded.weak_encryption
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert main(["log", "seal", str(events), "--key", str(path), "--out", str(tmp_path / "log2")]) == 0
    assert "WARNING" not in capsys.readouterr().err


def test_keygen_reencrypt_with_the_wrong_passphrase_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "old.key"
    _legacy_pkcs8(path, generate_signing_key(), b"right")
    before = path.read_bytes()
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    assert main(["keygen", "--reencrypt", str(path)]) == 2
    assert "wrong passphrase" in capsys.readouterr().err
    assert path.read_bytes() == before
    assert main(["keygen"]) == 2
    assert "keygen needs --out KEY" in capsys.readouterr().err


def test_weak_pbkdf2_2048_key_is_detected_by_its_iteration_count(tmp_path: Path) -> None:
    key = generate_signing_key()
    _legacy_pkcs8(tmp_path / "old.key", key, b"pw")
    assert pbkdf2_iterations((tmp_path / "old.key").read_bytes()) == 2048
    assert pbkdf2_iterations(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n") is None
    broken = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n!!\n-----END ENCRYPTED PRIVATE KEY-----\n"
    assert pbkdf2_iterations(broken) is None


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_new_encrypted_key_is_standard_pkcs8_that_openssl_decrypts(tmp_path: Path) -> None:
    key = generate_signing_key()
    path = tmp_path / "k.key"
    write_private_key(path, key, b"correct horse")
    shown = subprocess.run(
        ["openssl", "pkey", "-in", str(path), "-passin", "pass:correct horse", "-pubout"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown == public_key_pem(key.public)
    parsed = subprocess.run(
        ["openssl", "asn1parse", "-in", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert "PBES2" in parsed and "PBKDF2" in parsed and "hmacWithSHA256" in parsed and "aes-256-cbc" in parsed
    assert ":0927C0" in parsed  # INTEGER 600000


def test_weak_key_behind_bag_attributes_text_is_still_detected(tmp_path: Path) -> None:
    key = generate_signing_key()
    path = tmp_path / "old.key"
    _legacy_pkcs8(path, key, b"pw")
    path.write_bytes(b"Bag Attributes\n    localKeyID: 01\n" + path.read_bytes() + b"trailing words\n")
    os.chmod(path, 0o600)
    assert pbkdf2_iterations(path.read_bytes()) == 2048
    assert load_private_key(path, b"pw").weak_encryption
