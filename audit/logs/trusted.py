"""Authenticate one checkpoint file handed in on its own (a pin, or the end of a proof).

What it does: reads a checkpoint envelope (the bytes of a ``checkpoints/NNNNNNNN.json``
file, copied out of a log) and checks everything that can be checked without the
log: DSSE envelope, canonical encoding, payload type, an Ed25519 signature by a
keyring key, a valid canonical checkpoint body naming that key, a ``time`` no later
than the reader's clock plus :data:`~audit.logs.checkpoint.CLOCK_SKEW` (the signer
cannot post-date a pin), and the key's status at that ``time``. A checkpoint file is
read through :mod:`audit.reading`: a regular file of at most
:data:`~audit.logs.checkpoint.MAX_CHECKPOINT_BYTES`. The result, :class:`SignedCheckpoint`, is what
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
from datetime import UTC, datetime
from pathlib import Path

import orjson
from pydantic import ValidationError

from audit.canonical import is_canonical
from audit.errors import InputError, IntegrityError, SignatureError
from audit.logs.checkpoint import (
    CHECKPOINT_PAYLOAD_TYPE,
    CLOCK_SKEW,
    MAX_CHECKPOINT_BYTES,
    CheckpointBody,
    format_time,
    parse_checkpoint_payload,
)
from audit.reading import read_bytes
from audit.records import describe_validation_error
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


def read_checkpoint(raw: bytes, keyring: Keyring, *, path: str | Path, now: datetime | None = None) -> SignedCheckpoint:
    """Authenticate checkpoint file bytes; the error names ``path``.

    ``now`` is the reader's clock (default: the current time); a checkpoint dated
    more than :data:`~audit.logs.checkpoint.CLOCK_SKEW` after it is an IntegrityError.
    """
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
        raise IntegrityError(f"signed body is not a checkpoint: {describe_validation_error(exc)}", path=path) from None
    if not is_canonical(verified.payload):
        raise IntegrityError("signed body is not canonical (RFC 8785) JSON", path=path)
    if body.key_id != verified.key_id:
        raise SignatureError(f"body names key {body.key_id} but is signed by {verified.key_id}", path=path)
    clock = now or datetime.now(UTC)
    if body.time > clock + CLOCK_SKEW:
        raise IntegrityError(
            f"dated {format_time(body.time)}, in the future: later than the clock "
            f"{format_time(clock.replace(microsecond=0))} "
            f"plus {int(CLOCK_SKEW.total_seconds() // 60)} minutes",
            path=path,
        )
    status = keyring.status(verified.key_id, at=body.time, purpose=purpose_for_record_type(body.record_type))
    if status is not KeyStatus.ok:
        when = body.time.strftime("%Y-%m-%dT%H:%M:%SZ")
        raise SignatureError(f"signed by key {verified.key_id}, {status.value} at {when}", path=path)
    return SignedCheckpoint(path=str(path), raw=raw, body=body, key_id=verified.key_id)


def load_checkpoint(path: str | Path, keyring: Keyring, *, now: datetime | None = None) -> SignedCheckpoint:
    """Read and authenticate a checkpoint file (see :func:`read_checkpoint`).

    InputError if it is not a regular file of at most :data:`MAX_CHECKPOINT_BYTES`.
    """
    p = Path(path)
    raw = read_bytes(p, max_bytes=MAX_CHECKPOINT_BYTES)
    return read_checkpoint(raw, keyring, path=p, now=now)
