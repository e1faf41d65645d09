"""RFC 3161 time-stamp tokens for signed reports: request one from a TSA, store it, verify it offline.

The token covers the SHA-256 of the report's signed envelope (``report.intoto.json``,
its exact bytes) and proves that envelope existed no later than the token's
``genTime``, on the word of the time-stamp authority (TSA) whose certificate chain
the verifier trusts. Requests and verification use the ``rfc3161-client`` package
(Trail of Bits, used by sigstore-python): it builds the query, parses the response,
checks the CMS signature with OpenSSL against the given roots at ``genTime``, the
TSA certificate's critical timeStamping EKU, the nonce and the message imprint.

:func:`request_timestamp` POSTs an ``application/timestamp-query`` (http or https
only, with a timeout and a cap on the response size) and returns the response only
if it grants a token over this envelope with the nonce asked for; failures are
:class:`~audit.errors.InputError` naming the URL. :func:`verify_timestamp` checks
a stored response against a :class:`TsaTrust` (from a PEM file, :func:`load_tsa_trust`)
and returns ``genTime``; anything that does not verify is an
:class:`~audit.errors.IntegrityError`. This module does not verify the report's own
signature or subjects (see :mod:`audit.report.verify`) and does not check TSA
certificate revocation.
"""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    Verifier,
    VerifierBuilder,
    decode_timestamp_response,
)

from audit.errors import InputError, IntegrityError
from audit.fsio import atomic_write
from audit.reading import MiB, read_bytes
from audit.report.publish import REPORT_FILE, TIMESTAMP_FILE

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_RESPONSE_BYTES",
    "TIMESTAMP_FILE",
    "StoredTimestamp",
    "TsaTrust",
    "load_tsa_trust",
    "request_timestamp",
    "timestamp_report",
    "verify_report_timestamp",
    "verify_timestamp",
]

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
DEFAULT_TIMEOUT_S = 30.0
"""Seconds to wait for the TSA to connect and for each read."""
MAX_RESPONSE_BYTES = 256 * 1024
"""A time-stamp response (a token with its certificate chain) is a few KiB; anything above this is refused."""
MAX_CHAIN_BYTES = 1 * MiB
"""A PEM file of TSA certificates is at most this."""


@dataclass(frozen=True)
class TsaTrust:
    """What a verifier trusts: root CAs, intermediates, and (if given) the one TSA certificate to accept."""

    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    tsa_certificate: x509.Certificate | None = None


@dataclass(frozen=True)
class StoredTimestamp:
    """A token written beside a report: where, its ``genTime``, and whether it was verified against a chain."""

    path: Path
    gen_time: datetime
    verified: bool


def envelope_digest(envelope: bytes) -> bytes:
    """The message imprint a report's token must carry: SHA-256 of the envelope's bytes."""
    return hashlib.sha256(envelope).digest()


# ---------------------------------------------------------------------------- trust


def load_tsa_trust(path: Path) -> TsaTrust:
    """Read a PEM file of certificates: self-signed ones are roots, a timeStamping leaf is pinned, the rest chain.

    The file must hold at least one self-signed root (OpenSSL verifies only full
    chains). Raises :class:`InputError` naming the file.
    """
    data = read_bytes(path, max_bytes=MAX_CHAIN_BYTES)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise InputError(f"not a PEM file of X.509 certificates: {exc}", path=path) from None
    roots = tuple(c for c in certs if c.subject == c.issuer)
    if not roots:
        raise InputError(
            "holds no self-signed root certificate",
            path=path,
            hint="give the TSA certificate with its whole chain, up to and including its root CA",
        )
    leaves = [c for c in certs if c.subject != c.issuer and _is_tsa(c)]
    if len(leaves) > 1:
        raise InputError(f"holds {len(leaves)} time-stamping certificates; give one TSA's chain", path=path)
    intermediates = tuple(c for c in certs if c not in roots and c not in leaves)
    return TsaTrust(roots, intermediates, leaves[0] if leaves else None)


def _is_tsa(cert: x509.Certificate) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.TIME_STAMPING in eku


# ---------------------------------------------------------------------------- verify


def _decode(token: bytes) -> TimeStampResponse:
    try:
        response = decode_timestamp_response(token)
        _ = response.tst_info.gen_time  # the token must be there, not only a status
    except ValueError as exc:
        raise IntegrityError(f"not an RFC 3161 time-stamp response: {exc}") from None
    return response


def _imprint_problem(response: TimeStampResponse, digest: bytes) -> str | None:
    """Why the token's message imprint is not SHA-256 ``digest``, or None."""
    imprint = response.tst_info.message_imprint
    if imprint.hash_algorithm != SHA256_OID:
        return f"the token's message imprint uses {imprint.hash_algorithm.dotted_string}, not SHA-256"
    if imprint.message != digest:
        return f"the token covers {imprint.message.hex()}, not this envelope ({digest.hex()})"
    return None


def _verifier(trust: TsaTrust) -> Verifier:
    builder = VerifierBuilder()
    for root in trust.roots:
        builder = builder.add_root_certificate(root)
    for intermediate in trust.intermediates:
        builder = builder.add_intermediate_certificate(intermediate)
    if trust.tsa_certificate is not None:
        builder = builder.tsa_certificate(trust.tsa_certificate)
    return builder.build()


def verify_timestamp(token: bytes, envelope: bytes, trust: TsaTrust, *, path: Path | None = None) -> datetime:
    """Verify a stored response over ``envelope`` against ``trust``; return its ``genTime`` (UTC).

    Checks: the status is granted; the message imprint is the envelope's SHA-256;
    the CMS signature verifies with a chain to one of ``trust.roots``, valid at
    ``genTime``; the signer has a critical timeStamping EKU and, if ``trust`` pins
    one, is that TSA certificate. Raises :class:`IntegrityError` (with ``path``).
    """
    try:
        response = _decode(token)
    except IntegrityError as exc:
        raise IntegrityError(exc.reason, path=path) from None
    if response.status != PKIStatus.GRANTED:
        raise IntegrityError(f"the time-stamp response was not granted (status {response.status})", path=path)
    digest = envelope_digest(envelope)
    problem = _imprint_problem(response, digest)
    if problem is not None:
        raise IntegrityError(problem, path=path)
    try:
        _verifier(trust).verify(response, digest)
    except (VerificationError, ValueError) as exc:
        raise IntegrityError(f"the time-stamp token does not verify: {exc}", path=path) from None
    return response.tst_info.gen_time.astimezone(UTC)


def verify_report_timestamp(report_path: Path, trust: TsaTrust, *, envelope: bytes | None = None) -> datetime:
    """Verify the token stored beside a report (``report.tsr``) over its envelope; return ``genTime`` (UTC).

    A missing token, or one that does not verify, is an :class:`IntegrityError`;
    an unreadable envelope an :class:`InputError`.
    """
    if envelope is None:  # else: the bytes the caller verified the signature on
        envelope = read_bytes(report_path)
    token_path = report_path.with_name(TIMESTAMP_FILE)
    if not token_path.is_file():
        raise IntegrityError("no time-stamp token beside the report", path=token_path)
    return verify_timestamp(read_bytes(token_path, max_bytes=MAX_RESPONSE_BYTES), envelope, trust, path=token_path)


# ---------------------------------------------------------------------------- request


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket or a bad port
        host = None
    if host is None or parts.scheme not in ("http", "https"):
        raise InputError(f"time-stamp authority {url}: not an http:// or https:// URL")


def _post(url: str, query: bytes, *, timeout: float, max_bytes: int) -> bytes:
    """POST the query; the body of a 200 reply of at most ``max_bytes``. InputError naming the URL otherwise."""
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked to be http or https
        url, data=query, method="POST", headers={"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310 - as above
            body: bytes = reply.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        raise InputError(f"time-stamp authority {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise InputError(f"time-stamp authority {url}: cannot reach it: {reason or type(exc).__name__}") from None
    if len(body) > max_bytes:
        raise InputError(f"time-stamp authority {url}: response larger than {max_bytes} bytes")
    return body


def request_timestamp(
    envelope: bytes, tsa_url: str, *, timeout: float = DEFAULT_TIMEOUT_S, max_bytes: int = MAX_RESPONSE_BYTES
) -> bytes:
    """Ask the TSA at ``tsa_url`` for a token over SHA-256(``envelope``); the DER response.

    The response must be granted, over this envelope, with the nonce sent. This
    does not check who signed it (see :func:`verify_timestamp`). Raises
    :class:`InputError` naming the URL.
    """
    _check_url(tsa_url)
    query = TimestampRequestBuilder().data(envelope).hash_algorithm(HashAlgorithm.SHA256).build()
    body = _post(tsa_url, query.as_bytes(), timeout=timeout, max_bytes=max_bytes)
    try:
        response = _decode(body)
    except IntegrityError as exc:
        refusal = _refusal(body)
        raise InputError(f"time-stamp authority {tsa_url}: {refusal or exc.reason}") from None
    problem = _response_problem(response, envelope_digest(envelope), query.nonce)
    if problem is not None:
        raise InputError(f"time-stamp authority {tsa_url}: {problem}")
    return body


def _refusal(body: bytes) -> str | None:
    """Why a TSA refused, read from a response without a token (rfc3161-client parses only granted ones)."""
    from asn1crypto import core, tsp  # the only use of asn1crypto (ADR 0008), so imported only here

    class StatusOnly(core.Sequence):  # type: ignore[misc]  # TimeStampResp in asn1crypto requires the token
        _fields = [("status", tsp.PKIStatusInfo), ("token", core.Any, {"optional": True})]  # noqa: RUF012

    try:
        status = StatusOnly.load(body, strict=True)["status"].native
    except (ValueError, TypeError, KeyError):
        return None
    if status["status"] in ("granted", "granted_with_mods"):
        return None
    reasons = "; ".join([*(status["status_string"] or []), *sorted(status["fail_info"] or [])])
    return f"request refused (status {status['status']}: {reasons or 'no reason given'})"


def _response_problem(response: TimeStampResponse, digest: bytes, nonce: int | None) -> str | None:
    if response.status != PKIStatus.GRANTED:
        text = "; ".join(response.status_string) or "no reason given"
        return f"request refused (status {response.status}: {text})"
    if nonce is not None and response.tst_info.nonce != nonce:
        return "the response does not carry the nonce of the request (a replayed or misdirected answer)"
    return _imprint_problem(response, digest)


def timestamp_report(
    out_dir: Path, tsa_url: str, *, trust: TsaTrust | None = None, timeout: float = DEFAULT_TIMEOUT_S
) -> StoredTimestamp:
    """Get a token over ``OUT_DIR/report.intoto.json`` and write it atomically to ``OUT_DIR/report.tsr``.

    With ``trust`` the token must verify first (else :class:`IntegrityError`, and
    nothing is written). TSA or HTTP failures are :class:`InputError` naming the URL.
    """
    envelope = read_bytes(out_dir / REPORT_FILE)
    token = request_timestamp(envelope, tsa_url, timeout=timeout)
    target = out_dir / TIMESTAMP_FILE
    if trust is not None:
        gen_time = verify_timestamp(token, envelope, trust, path=target)
    else:
        gen_time = _decode(token).tst_info.gen_time.astimezone(UTC)
    atomic_write(target, token)
    return StoredTimestamp(target, gen_time, verified=trust is not None)
