"""DSSE v1 envelopes (Dead Simple Signing Envelope) signed with Ed25519.

What it does: computes the DSSE pre-authentication encoding (PAE), builds and
parses envelopes ``{"payload", "payloadType", "signatures": [{"keyid", "sig"}]}``
(standard base64, with padding), serialises them canonically (RFC 8785, via
:func:`audit.canonical.canonical_bytes`), and verifies them against a
:class:`~audit.signing.keys.Keyring`.

What it does not do: it does not check key validity windows or revocation —
only the caller knows the time a payload was signed, so after
:func:`verify_envelope` the caller asks ``keyring.status(key_id, at=signed_time)``.
It does not interpret the payload. Signatures whose ``keyid`` is not in the
keyring are not tried against every key (the key id is the lookup).

Error choice for :func:`parse_envelope`: it raises :class:`InputError` by
default (a file the user handed us is malformed, exit 2); pass
``integrity=True`` for envelopes that live inside a sealed artefact, where a
malformed envelope means tampering and :class:`IntegrityError` (exit 3) is
raised instead.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidSignature
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from audit.canonical import canonical_bytes
from audit.errors import InputError, IntegrityError, SignatureError
from audit.records import describe_validation_error
from audit.signing.keys import Keyring, SigningKey

ED25519_SIGNATURE_LEN = 64


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 PAE: ``DSSEv1 SP len(type) SP type SP len(body) SP body``.

    Lengths are ASCII decimal byte counts; the type is UTF-8 encoded.
    """
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def b64encode(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """Strict, canonical standard base64; ValueError otherwise.

    Only the alphabet ``A-Za-z0-9+/`` with ``=`` padding, and only the one
    encoding a standard encoder produces (unused low bits must be zero), so that
    every byte of an envelope is significant.
    """
    try:
        raw = text.encode("ascii")
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("not standard base64") from None
    if base64.b64encode(decoded) != raw:
        raise ValueError("not canonical standard base64")
    return decoded


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Signature(_Strict):
    """One DSSE signature: the signing key's id and the base64 signature."""

    keyid: str
    sig: str

    @field_validator("sig")
    @classmethod
    def _sig_is_base64(cls, value: str) -> str:
        b64decode(value)
        return value

    def sig_bytes(self) -> bytes:
        """The decoded signature bytes."""
        return b64decode(self.sig)


class Envelope(_Strict):
    """A DSSE envelope: base64 payload, its type, and at least one signature."""

    payload: str
    payloadType: str  # field name fixed by the DSSE spec
    signatures: tuple[Signature, ...] = Field(min_length=1)

    @field_validator("payload")
    @classmethod
    def _payload_is_base64(cls, value: str) -> str:
        b64decode(value)
        return value

    def payload_bytes(self) -> bytes:
        """The decoded payload bytes."""
        return b64decode(self.payload)


@dataclass(frozen=True)
class VerifiedPayload:
    """A payload whose signature verified, and the id of the key that signed it."""

    payload: bytes
    key_id: str


def sign_envelope(payload: bytes, payload_type: str, key: SigningKey) -> Envelope:
    """Envelope with one Ed25519 signature by ``key`` over ``pae(payload_type, payload)``."""
    sig = key.sign(pae(payload_type, payload))
    return Envelope(
        payload=b64encode(payload),
        payloadType=payload_type,
        signatures=(Signature(keyid=key.key_id, sig=b64encode(sig)),),
    )


def envelope_bytes(envelope: Envelope) -> bytes:
    """Canonical (RFC 8785) JSON bytes of an envelope, as written to disk (no newline)."""
    return canonical_bytes(envelope)


def parse_envelope(raw: bytes, *, path: str | Path, integrity: bool = False) -> Envelope:
    """Parse envelope JSON bytes; the error names ``path``.

    Raises :class:`InputError`, or :class:`IntegrityError` when ``integrity`` is
    True (use that for envelopes inside a sealed log), on malformed JSON, a
    non-object, missing/unknown/mistyped fields, or invalid base64.
    """
    error = IntegrityError if integrity else InputError
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise error(f"malformed envelope JSON: {exc}", path=path) from None
    if not isinstance(value, dict):
        raise error("envelope is not a JSON object", path=path)
    try:
        return Envelope.model_validate(value)
    except ValidationError as exc:
        raise error(f"malformed envelope: {describe_validation_error(exc)}", path=path) from None


def verify_envelope(
    envelope: Envelope,
    keyring: Keyring,
    *,
    expected_type: str,
    path: str | Path | None = None,
) -> VerifiedPayload:
    """Check payloadType and an Ed25519 signature over PAE by a key in ``keyring``.

    The first signature whose ``keyid`` is in the keyring and verifies wins.
    Raises :class:`~audit.errors.IntegrityError` (naming ``path`` if given) with reason
    ``unexpected payloadType ...``, ``unknown key <id>`` (a :class:`~audit.errors.SignatureError`: no signature by a
    keyring key) or ``bad signature by key <id>`` (keyring key(s) present but
    none verifies). Does not check key validity windows or revocation.
    """
    if envelope.payloadType != expected_type:
        raise IntegrityError(
            f"unexpected payloadType {envelope.payloadType!r} (expected {expected_type!r})",
            path=path,
        )
    payload = envelope.payload_bytes()
    message = pae(envelope.payloadType, payload)
    bad: list[str] = []
    for signature in envelope.signatures:
        entry = keyring.get(signature.keyid)
        if entry is None:
            continue
        sig = signature.sig_bytes()
        if len(sig) == ED25519_SIGNATURE_LEN:
            try:
                entry.key().verify(sig, message)
            except InvalidSignature:
                pass
            else:
                return VerifiedPayload(payload=payload, key_id=signature.keyid)
        bad.append(signature.keyid)
    if bad:
        raise SignatureError(f"bad signature by key {', '.join(bad)}", path=path)
    unknown = ", ".join(sig.keyid or "(empty keyid)" for sig in envelope.signatures)
    raise SignatureError(f"unknown key {unknown}", path=path)
