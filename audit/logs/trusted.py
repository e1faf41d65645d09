"""Authenticate one checkpoint file handed in on its own (a pin, or the end of a proof).

What it does: reads a checkpoint envelope (the bytes of a ``checkpoints/NNNNNNNN.json``
file, copied out of a log) and checks everything that can be checked without the
log: DSSE envelope, canonical encoding, payload type, an Ed25519 signature by a
keyring key, a valid canonical checkpoint body naming that key, and the key's
status at the body's ``time``. The result, :class:`SignedCheckpoint`, is what
``log verify --trusted-checkpoint`` pins the log to and what proofs are checked
against.

What it does not do: it does not look at any log directory (that is
:mod:`audit.logs.verify`), and it does not decide whether a checkpoint is
*newer* than another (callers compare ``tree_size``/``time``). Errors: a file
that is not a checkpoint at all is an :class:`InputError` (exit 2); a checkpoint
that does not authenticate is an :class:`IntegrityError` (exit 3).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import orjson
from pydantic import ValidationError

from audit.canonical import is_canonical
from audit.errors import InputError, IntegrityError, SignatureError
from audit.logs.checkpoint import CHECKPOINT_PAYLOAD_TYPE, CheckpointBody, parse_checkpoint_payload
from audit.records import describe_validation_error, open_input
from audit.signing.dsse import envelope_bytes, parse_envelope, verify_envelope
from audit.signing.keys import Keyring, KeyStatus, purpose_for_record_type


@dataclass(frozen=True)
class SignedCheckpoint:
    """An authenticated checkpoint: its file bytes, signed body and signing key."""

    path: str
    raw: bytes
    body: CheckpointBody
    key_id: str

    @property
    def sha256(self) -> str:
        """SHA-256 hex of the file bytes (what the next checkpoint's ``previous`` names)."""
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def tree_size(self) -> int:
        """Number of leaves the checkpoint commits to."""
        return self.body.tree_size

    @property
    def root(self) -> str:
        """Hex root of the tree of ``tree_size`` leaves."""
        return self.body.root

    def describe(self) -> str:
        """``PATH (origin 'o', index i, size n)`` for messages."""
        body = self.body
        return f"{self.path} (origin {body.origin!r}, index {body.index}, size {body.tree_size})"


def read_checkpoint(raw: bytes, keyring: Keyring, *, path: str | Path) -> SignedCheckpoint:
    """Authenticate checkpoint file bytes; the error names ``path``."""
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"not a checkpoint: undecodable JSON ({exc})", path=path) from None
    envelope = parse_envelope(raw, path=path)
    if envelope_bytes(envelope) != raw:
        raise InputError("not a checkpoint file: the envelope is not canonical (RFC 8785) JSON", path=path)
    if envelope.payloadType != CHECKPOINT_PAYLOAD_TYPE:
        raise InputError(f"not a checkpoint: payloadType {envelope.payloadType!r}", path=path)
    verified = verify_envelope(envelope, keyring, expected_type=CHECKPOINT_PAYLOAD_TYPE, path=path)
    try:
        body = parse_checkpoint_payload(verified.payload)
    except ValidationError as exc:
        raise IntegrityError(f"signed body is not a checkpoint: {describe_validation_error(exc)}",
                             path=path) from None
    if not is_canonical(verified.payload):
        raise IntegrityError("signed body is not canonical (RFC 8785) JSON", path=path)
    if body.key_id != verified.key_id:
        raise SignatureError(f"body names key {body.key_id} but is signed by {verified.key_id}", path=path)
    status = keyring.status(verified.key_id, at=body.time, purpose=purpose_for_record_type(body.record_type))
    if status is not KeyStatus.ok:
        when = body.time.strftime("%Y-%m-%dT%H:%M:%SZ")
        raise SignatureError(f"signed by key {verified.key_id}, {status.value} at {when}", path=path)
    return SignedCheckpoint(path=str(path), raw=raw, body=body, key_id=verified.key_id)


def load_checkpoint(path: str | Path, keyring: Keyring) -> SignedCheckpoint:
    """Read and authenticate a checkpoint file (see :func:`read_checkpoint`)."""
    p = open_input(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=p) from None
    return read_checkpoint(raw, keyring, path=p)
