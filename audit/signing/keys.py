"""Ed25519 signing keys on disk and the keyring of trusted public keys.

What it does:

* creates Ed25519 signing keys (random, or from a fixed seed for test fixtures),
* writes private keys as PKCS#8 PEM — encrypted with a passphrase (PBES2:
  PBKDF2-HMAC-SHA256 at 600,000 iterations, AES-256-CBC; :mod:`audit.signing.pkcs8`),
  or unencrypted with file mode 0600 — atomically and never over an existing file;
  re-encrypts keys written with a weaker work factor,
* loads private keys with precise :class:`~audit.errors.KeyMaterialError`
  diagnostics (missing, encrypted without passphrase, wrong passphrase, wrong key
  type, unencrypted key readable by others),
* models the keyring (``{"keys": [...]}`` JSON): trusted public keys with a
  validity window and an optional revocation time, and answers "what is the
  status of key K at time T",
* edits keyrings (add a key, revoke one) and refuses to sign with a key that is
  not valid at the signing time (:func:`require_signing_key_valid`).

What it does not do: it never logs, prints or puts key bytes into error messages;
it does not sign the keyring (it must come from a trusted place); it does not
sign or verify envelopes (see :mod:`audit.signing.dsse`); it does not
decide what time a signature was made at (callers pass the signed time to
:meth:`Keyring.status`).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

import orjson
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints, ValidationError, model_validator

from audit.enums import KeyPurpose as KeyPurpose
from audit.enums import RecordType
from audit.errors import InputError, KeyMaterialError, SignatureError
from audit.fsio import atomic_write
from audit.models import UtcDatetime
from audit.reading import open_regular, read_bytes
from audit.records import describe_validation_error, open_input, validate
from audit.signing.pkcs8 import KDF_ITERATIONS, encrypted_pkcs8_pem, pbkdf2_iterations

PASSPHRASE_ENV = "RESIDENCY_AUDIT_KEY_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
"""Environment variable holding the passphrase that protects private key files."""

KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A key id: lowercase hex SHA-256 of the raw 32-byte Ed25519 public key."""

_SEED_LEN = 32
_MIN_KEY_ID_PREFIX = 8
_MAX_KEYRING_BYTES = 16 * 1024 * 1024


def key_id_for(public_key: Ed25519PublicKey) -> str:
    """Lowercase hex SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(public_key.public_bytes_raw()).hexdigest()


@dataclass(frozen=True, repr=False)
class SigningKey:
    """An Ed25519 private key and its key id. ``repr`` shows the key id only."""

    private: Ed25519PrivateKey = field(compare=False)
    key_id: str
    #: Loaded from a file encrypted with a weak key derivation (as versions before 0.2
    #: wrote them: PBKDF2 with 2,048 iterations); re-encrypt it.
    weak_encryption: bool = field(default=False, compare=False)

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature (64 bytes) over ``data``; deterministic per RFC 8032."""
        return self.private.sign(data)

    @property
    def public(self) -> Ed25519PublicKey:
        """The matching public key."""
        return self.private.public_key()

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r})"

    __str__ = __repr__


def _from_private(private: Ed25519PrivateKey) -> SigningKey:
    return SigningKey(private=private, key_id=key_id_for(private.public_key()))


def generate_signing_key() -> SigningKey:
    """A fresh random Ed25519 signing key."""
    return _from_private(Ed25519PrivateKey.generate())


def signing_key_from_seed(seed: bytes) -> SigningKey:
    """Signing key derived from a 32-byte seed.

    FOR DETERMINISTIC TEST FIXTURES ONLY: anyone who knows the seed has the key.
    Production keys come from :func:`generate_signing_key`.
    """
    if len(seed) != _SEED_LEN:
        raise KeyMaterialError(f"seed must be {_SEED_LEN} bytes, got {len(seed)}")
    return _from_private(Ed25519PrivateKey.from_private_bytes(seed))


def passphrase_from_env() -> bytes | None:
    """The passphrase from ``RESIDENCY_AUDIT_KEY_PASSPHRASE`` (UTF-8); unset or empty is None."""
    value = os.environ.get(PASSPHRASE_ENV)
    if not value:
        return None
    return value.encode("utf-8")


def public_key_pem(key: Ed25519PublicKey) -> str:
    """PEM ``SubjectPublicKeyInfo`` text of a public key (ends with a newline)."""
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def write_private_key(path: Path, key: SigningKey, passphrase: bytes | None, *, replace: bool = False) -> None:
    """Write ``key`` as PKCS#8 PEM, encrypted with ``passphrase`` (PBKDF2-HMAC-SHA256, 600,000 rounds) or not.

    The file is created with mode 0600 in both cases (the process umask can only
    narrow it) and written atomically; it never replaces an existing file
    (:class:`InputError`) unless ``replace`` is given (re-encryption).
    """
    path = Path(path)
    if not replace and (path.exists() or path.is_symlink()):
        raise InputError("refusing to overwrite an existing file", path=path)
    if passphrase is not None:
        if not passphrase:
            raise KeyMaterialError("empty passphrase", path=path)
        data = encrypted_pkcs8_pem(key.private, passphrase)
    else:
        data = key.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    atomic_write(path, data, mode=0o600, exclusive=not replace)


def reencrypt_private_key(path: Path, passphrase: bytes) -> SigningKey:
    """Load a key (any supported format) and write it back encrypted with the current KDF, in place."""
    key = load_private_key(path, passphrase)
    write_private_key(path, key, passphrase, replace=True)
    return key


def _type_name(key: object) -> str:
    name = type(key).__name__
    for suffix in ("PrivateKey", "PublicKey"):
        if name.endswith(suffix) and name != suffix:
            return name[: -len(suffix)]
    return name


def load_private_key(path: Path, passphrase: bytes | None) -> SigningKey:
    """Load an Ed25519 PKCS#8 PEM private key (encrypted, or unencrypted with a private file mode).

    Raises :class:`KeyMaterialError` naming ``path`` if the file is missing or
    unreadable, is encrypted and no passphrase was given, the passphrase is wrong,
    it is not an Ed25519 key, or it is unencrypted and its mode allows any group
    or other access. A passphrase given for an unencrypted key is ignored. A key
    encrypted with fewer than :data:`KDF_ITERATIONS` PBKDF2 iterations (as versions
    before 0.2 wrote them) is marked :attr:`SigningKey.weak_encryption`.
    Messages never contain key bytes.
    """
    path = Path(path)
    try:
        with open_regular(path, max_bytes=_MAX_KEY_FILE) as fh:
            info = os.fstat(fh.fileno())
            data = fh.read(_MAX_KEY_FILE + 1)
    except InputError as exc:
        raise KeyMaterialError(exc.reason.replace("no such file", "no such key file"), path=path) from None
    except OSError as exc:
        raise KeyMaterialError(f"cannot read key file: {exc.strerror}", path=path) from None
    loaded, encrypted = _load_pkcs8(path, data, passphrase, stat.S_IMODE(info.st_mode))
    iterations = pbkdf2_iterations(data) if encrypted else None
    weak = encrypted and (iterations is None or iterations < KDF_ITERATIONS)  # unknown work factor: re-encrypt
    if not isinstance(loaded, Ed25519PrivateKey):
        raise KeyMaterialError(f"not an Ed25519 private key (found {_type_name(loaded)})", path=path)
    key = _from_private(loaded)
    return SigningKey(private=key.private, key_id=key.key_id, weak_encryption=weak)


_MAX_KEY_FILE = 64 * 1024


def _load_pkcs8(path: Path, data: bytes, passphrase: bytes | None, mode: int) -> tuple[object, bool]:
    """A PEM key and whether it was encrypted (the old, weak format)."""
    try:
        loaded: object = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # cryptography signals "password required" with TypeError
        if passphrase is None:
            raise KeyMaterialError(f"key is encrypted: set {PASSPHRASE_ENV}", path=path) from None
        try:
            return serialization.load_pem_private_key(data, password=passphrase), True
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise KeyMaterialError("cannot decrypt key: wrong passphrase or corrupt key file", path=path) from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyMaterialError("not a PEM private key (or a corrupt one)", path=path) from None
    if mode & 0o077:
        raise KeyMaterialError(
            f"refusing unencrypted private key readable by others (mode {mode:04o}); chmod 600", path=path
        )
    return loaded, False


class KeyStatus(StrEnum):
    """Whether a key may be trusted for a signature made at a given time, for a purpose."""

    ok = "ok"
    unknown = "unknown"
    revoked = "revoked"
    not_yet_valid = "not_yet_valid"
    expired = "expired"
    wrong_purpose = "wrong_purpose"


ALL_PURPOSES: tuple[KeyPurpose, ...] = tuple(KeyPurpose)


def purpose_for_record_type(record_type: str | None) -> KeyPurpose:
    """The key purpose a sealed log of ``record_type`` records must be signed for."""
    return KeyPurpose.approvals if record_type == RecordType.approval else KeyPurpose.log


def _load_public_pem(text: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm):
        raise ValueError("not a PEM SubjectPublicKeyInfo public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"not an Ed25519 public key (found {_type_name(key)})")
    return key


class KeyringEntry(BaseModel):
    """One trusted public key with its validity window (bounds inclusive, UTC)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: KeyId
    public_key: str
    label: str | None = None
    not_before: UtcDatetime | None = None
    not_after: UtcDatetime | None = None
    revoked_at: UtcDatetime | None = None
    #: What the key may sign. A keyring *file* must name them for every key
    #: (:func:`load_keyring` refuses one that does not; ``keyring migrate`` writes
    #: them out); code that builds entries gets every purpose unless it says otherwise.
    purposes: tuple[KeyPurpose, ...] = Field(default=ALL_PURPOSES, min_length=1)

    _key: Ed25519PublicKey | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_key(self) -> Self:
        key = _load_public_pem(self.public_key)
        actual = key_id_for(key)
        if actual != self.key_id:
            raise ValueError(f"key_id does not match the public key (its id is {actual})")
        if self.not_before is not None and self.not_after is not None and self.not_before > self.not_after:
            raise ValueError("not_before is after not_after")
        self._key = key
        return self

    def key(self) -> Ed25519PublicKey:
        """The parsed Ed25519 public key."""
        if self._key is None:  # pragma: no cover - set by the validator
            self._key = _load_public_pem(self.public_key)
        return self._key

    def status(self, at: datetime, purpose: KeyPurpose | None = None) -> KeyStatus:
        """Status of this key for a signature made at ``at`` (timezone-aware) for ``purpose``."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise InputError("key status needs a timezone-aware time")
        if self.revoked_at is not None:
            # A revoked key is treated as compromised: nothing it signed is trusted,
            # whatever time the signature claims.
            return KeyStatus.revoked
        if purpose is not None and purpose not in self.purposes:
            return KeyStatus.wrong_purpose
        if self.not_before is not None and at < self.not_before:
            return KeyStatus.not_yet_valid
        if self.not_after is not None and at > self.not_after:
            return KeyStatus.expired
        return KeyStatus.ok


class Keyring(BaseModel):
    """The trusted public keys; key ids are unique."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    keys: tuple[KeyringEntry, ...]

    _by_id: dict[str, KeyringEntry] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _index(self) -> Self:
        by_id: dict[str, KeyringEntry] = {}
        for entry in self.keys:
            if entry.key_id in by_id:
                raise ValueError(f"duplicate key_id {entry.key_id}")
            by_id[entry.key_id] = entry
        self._by_id = by_id
        return self

    def get(self, key_id: str) -> KeyringEntry | None:
        """The entry for ``key_id``, or None."""
        return self._by_id.get(key_id)

    def status(self, key_id: str, at: datetime, purpose: KeyPurpose | None = None) -> KeyStatus:
        """Status of ``key_id`` for a signature made at ``at`` for ``purpose``.

        ``revoked`` wins whenever ``revoked_at`` is set (regardless of ``at``);
        ``not_before``/``not_after`` are inclusive bounds; a key not listed for
        ``purpose`` is ``wrong_purpose``.
        """
        entry = self.get(key_id)
        if entry is None:
            return KeyStatus.unknown
        return entry.status(at, purpose)

    def public_key(self, key_id: str) -> Ed25519PublicKey:
        """The public key for ``key_id``; :class:`~audit.errors.SignatureError` if it is not in the keyring."""
        entry = self.get(key_id)
        if entry is None:
            raise SignatureError(f"unknown key {key_id}")
        return entry.key()


def _describe_status(entry: KeyringEntry, status: KeyStatus) -> str:
    if status is KeyStatus.revoked and entry.revoked_at is not None:
        return f"revoked at {entry.revoked_at.isoformat()}"
    if status is KeyStatus.expired and entry.not_after is not None:
        return f"expired (not_after {entry.not_after.isoformat()})"
    if status is KeyStatus.not_yet_valid and entry.not_before is not None:
        return f"not yet valid (not_before {entry.not_before.isoformat()})"
    if status is KeyStatus.wrong_purpose:
        return f"not trusted for this purpose (its purposes: {', '.join(entry.purposes)})"
    return status.value


def entry_for_public_key(
    pem: str,
    *,
    label: str | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    purposes: tuple[KeyPurpose, ...] = ALL_PURPOSES,
) -> KeyringEntry:
    """A keyring entry for a PEM Ed25519 public key (its key id computed); InputError if it is not one."""
    try:
        key = _load_public_pem(pem)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    try:
        return KeyringEntry(
            key_id=key_id_for(key),
            public_key=public_key_pem(key),
            label=label,
            not_before=not_before,
            not_after=not_after,
            purposes=purposes,
        )
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc)) from None


def require_signing_key_valid(
    keyring: Keyring, key: SigningKey, at: datetime, purpose: KeyPurpose | None = None
) -> None:
    """Refuse (:class:`KeyMaterialError`) to sign at ``at`` with a key the keyring would not trust then.

    That is a key absent from the keyring, revoked, outside its validity window, or
    not listed for ``purpose``.
    """
    entry = keyring.get(key.key_id)
    if entry is None:
        raise KeyMaterialError(f"refusing to sign: key {key.key_id} is not in the keyring")
    status = entry.status(at, purpose)
    if status is not KeyStatus.ok:
        when = at.astimezone(UTC).isoformat()
        raise KeyMaterialError(f"refusing to sign at {when}: key {key.key_id} is {_describe_status(entry, status)}")


def add_key(keyring: Keyring, entry: KeyringEntry) -> Keyring:
    """A keyring with ``entry`` added; :class:`InputError` if its key id is already present."""
    if keyring.get(entry.key_id) is not None:
        raise InputError(f"key {entry.key_id} is already in the keyring")
    return Keyring(keys=(*keyring.keys, entry))


def resolve_key_id(keyring: Keyring, prefix: str) -> str:
    """The key id in ``keyring`` starting with ``prefix`` (at least 8 hex digits); InputError otherwise."""
    prefix = prefix.lower()
    if len(prefix) < _MIN_KEY_ID_PREFIX:
        raise InputError(f"key id {prefix!r} is too short: give at least 8 hex digits")
    matches = [entry.key_id for entry in keyring.keys if entry.key_id.startswith(prefix)]
    if not matches:
        raise InputError(f"no key {prefix} in the keyring")
    if len(matches) > 1:
        raise InputError(f"key id prefix {prefix} is ambiguous ({len(matches)} keys)")
    return matches[0]


def revoke_key(keyring: Keyring, key_id: str, at: datetime) -> Keyring:
    """A keyring where ``key_id`` is revoked at ``at`` (kept if already revoked earlier).

    Revocation means compromise: once ``revoked_at`` is set, nothing the key ever
    signed is trusted (see :meth:`KeyringEntry.status`).
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise InputError("revocation time must be timezone-aware")
    entry = keyring.get(key_id)
    if entry is None:
        raise InputError(f"no key {key_id} in the keyring")
    when = at.astimezone(UTC)
    if entry.revoked_at is not None and entry.revoked_at <= when:
        return keyring
    value = entry.model_dump(mode="json", exclude_none=True)
    value["revoked_at"] = when
    revoked = KeyringEntry.model_validate(value)
    return Keyring(keys=tuple(revoked if e.key_id == key_id else e for e in keyring.keys))


def _keyring_document(path: Path) -> tuple[Path, dict[str, Any]]:
    p = open_input(path)
    raw = read_bytes(p, max_bytes=_MAX_KEYRING_BYTES)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc}", path=p) from None
    if not isinstance(value, dict):
        raise InputError("keyring is not a JSON object", path=p)
    return p, value


def _without_purposes(value: dict[str, Any]) -> list[str]:
    keys = value.get("keys")
    entries = keys if isinstance(keys, list) else []
    return [
        str(e.get("key_id", f"#{n}")) for n, e in enumerate(entries, 1) if isinstance(e, dict) and "purposes" not in e
    ]


def load_keyring(path: Path) -> Keyring:
    """Read and validate a keyring JSON file (``{"keys": [...]}``); InputError naming the path.

    An entry without ``purposes`` (a keyring from before purposes existed, whose keys
    were silently trusted for everything) is refused with the command that fixes it.
    """
    p, value = _keyring_document(path)
    keyring = validate(Keyring, value, path=p, line=None)
    legacy = _without_purposes(value)
    if legacy:
        raise InputError(
            f"key {legacy[0][:16]}… names no purposes (older keyrings trusted such keys for every purpose)",
            path=p,
            hint=f"run `residency-audit keyring migrate {p}` to write them out, then narrow them",
        )
    return keyring


def keyring_key_ids(path: Path) -> list[str]:
    """The key ids a keyring file lists, read without validating its entries (for ``keyring migrate``)."""
    _, value = _keyring_document(path)
    keys = value.get("keys")
    return [str(e["key_id"]) for e in keys if isinstance(e, dict) and "key_id" in e] if isinstance(keys, list) else []


def migrate_keyring(path: Path, assign: Mapping[str, tuple[KeyPurpose, ...]]) -> tuple[Keyring, list[str]]:
    """The keyring with every entry's purposes written out, and the ids of the entries that gained them.

    An entry without ``purposes`` gets ``assign[key_id]`` if given, else every
    purpose — what older versions silently trusted it for, now visible. Entries
    that name purposes keep them unless ``assign`` names them too.
    """
    p, value = _keyring_document(path)
    keys = value.get("keys")
    if not isinstance(keys, list):
        return validate(Keyring, value, path=p, line=None), []
    migrated: list[str] = []
    entries: list[Any] = []
    for entry in keys:
        if isinstance(entry, dict):
            key_id = str(entry.get("key_id"))
            if key_id in assign or "purposes" not in entry:
                entry = {**entry, "purposes": [str(v) for v in assign.get(key_id, ALL_PURPOSES)]}
                migrated.append(key_id)
        entries.append(entry)
    unknown = sorted(set(assign) - {str(e.get("key_id")) for e in keys if isinstance(e, dict)})
    if unknown:
        raise InputError(f"no key {unknown[0]} in the keyring", path=p)
    return validate(Keyring, {**value, "keys": entries}, path=p, line=None), migrated


def write_keyring(path: Path, keyring: Keyring) -> None:
    """Write ``keyring`` as indented JSON (mode 0644, atomic; replaces an existing file).

    The keyring holds public keys only and is not signed, so its bytes need not be
    canonical.
    """
    value = keyring.model_dump(mode="json", exclude_none=True)
    data = orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n"
    atomic_write(Path(path), data, mode=0o644, exclusive=False)
