"""Encrypted PKCS#8 (RFC 5958) with PBES2: PBKDF2-HMAC-SHA256 at 600,000 iterations and AES-256-CBC.

``cryptography`` reads such files but writes encrypted PKCS#8 only with its own
fixed work factor (PBKDF2, 2,048 iterations) and offers a configurable work factor
only for PKCS#12 (whose integrity MAC stays at 2,048 iterations, so a passphrase
can still be guessed at that cost) and OpenSSH (bcrypt). This module writes the
DER of one fixed structure (RFC 8018 PBES2-params, appendix A.2 and B.2.2) with
``cryptography``'s PBKDF2 and AES; reading goes back through ``cryptography``'s
own parser, and the tests also decrypt it with the ``openssl`` command. ADR 0006
explains the choice. Reading DER is limited to finding the PBKDF2 iteration count
of a file in this one layout (to flag keys written with a weak work factor); it
never writes an unencrypted key.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

__all__ = ["KDF_ITERATIONS", "encrypted_pkcs8_pem", "pbkdf2_iterations"]

KDF_ITERATIONS = 600_000
"""PBKDF2-HMAC-SHA256 iterations for a new key: OWASP's figure for PBKDF2-SHA256."""

_OID_PBES2 = "1.2.840.113549.1.5.13"
_OID_PBKDF2 = "1.2.840.113549.1.5.12"
_OID_HMAC_SHA256 = "1.2.840.113549.2.9"
_OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"
_SALT_LEN = 16
_KEY_LEN = 32


def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + body


def _sequence(*items: bytes) -> bytes:
    return _der(0x30, b"".join(items))


def _octets(value: bytes) -> bytes:
    return _der(0x04, value)


def _integer(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))  # positive: leading 0 bit


def _oid(dotted: str) -> bytes:
    first, second, *rest = (int(part) for part in dotted.split("."))
    body = bytearray([40 * first + second])
    for value in rest:
        chunk = [value & 0x7F]
        value >>= 7
        while value:
            chunk.append(0x80 | (value & 0x7F))
            value >>= 7
        body += bytes(reversed(chunk))
    return _der(0x06, bytes(body))


def encrypted_pkcs8_pem(key: Ed25519PrivateKey, passphrase: bytes, *, iterations: int = KDF_ITERATIONS) -> bytes:
    """``-----BEGIN ENCRYPTED PRIVATE KEY-----`` PEM of ``key`` under ``passphrase``."""
    salt, iv = os.urandom(_SALT_LEN), os.urandom(16)
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=_KEY_LEN, salt=salt, iterations=iterations)
    plain = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(kdf.derive(passphrase)), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
    pbkdf2 = _sequence(
        _oid(_OID_PBKDF2),
        _sequence(_octets(salt), _integer(iterations), _sequence(_oid(_OID_HMAC_SHA256), b"\x05\x00")),
    )
    scheme = _sequence(_oid(_OID_AES256_CBC), _octets(iv))
    info = _sequence(_sequence(_oid(_OID_PBES2), _sequence(pbkdf2, scheme)), _octets(ciphertext))
    body = base64.b64encode(info).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    armoured = ["-----BEGIN ENCRYPTED PRIVATE KEY-----", *lines, "-----END ENCRYPTED PRIVATE KEY-----", ""]
    return "\n".join(armoured).encode("ascii")


def _read(data: bytes, pos: int, tag: int) -> tuple[int, int] | None:
    """(start of body, end of body) of the element at ``pos`` if it has ``tag``; None otherwise."""
    if pos + 2 > len(data) or data[pos] != tag:
        return None
    size, pos = data[pos + 1], pos + 2
    if size & 0x80:
        count = size & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            return None
        size, pos = int.from_bytes(data[pos : pos + count], "big"), pos + count
    return (pos, pos + size) if pos + size <= len(data) else None


def pbkdf2_iterations(pem: bytes) -> int | None:
    """The PBKDF2 iteration count of an encrypted PKCS#8 PEM in the PBES2/PBKDF2 layout, else None."""
    all_lines = [line.strip() for line in pem.splitlines()]
    header, footer = b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"-----END ENCRYPTED PRIVATE KEY-----"
    if header not in all_lines or footer not in all_lines:
        return None
    lines = all_lines[all_lines.index(header) : all_lines.index(footer) + 1]  # text around the block is ignored
    if len(lines) < 3:
        return None
    try:
        data = base64.b64decode(b"".join(lines[1:-1]), validate=True)
    except ValueError:
        return None
    pos = 0
    for tag, expected in (
        (0x30, None),
        (0x30, None),
        (0x06, _oid(_OID_PBES2)),
        (0x30, None),
        (0x30, None),
        (0x06, _oid(_OID_PBKDF2)),
        (0x30, None),
        (0x04, None),
    ):
        element = _read(data, pos, tag)
        if element is None:
            return None
        start, end = element
        if expected is not None and data[pos:end] != expected:
            return None
        pos = end if tag in (0x06, 0x04) else start  # step over leaves, into constructed elements
    element = _read(data, pos, 0x02)
    return int.from_bytes(data[element[0] : element[1]], "big") if element is not None else None
