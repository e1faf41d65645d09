"""A local RFC 3161 time-stamp authority for offline tests: a CA, a TSA certificate, tokens, an HTTP server.

:class:`LocalTsa` makes a self-signed CA and a TSA certificate it issues (EKU
timeStamping, critical) with ``cryptography``, and answers a DER ``TimeStampReq``
with a ``TimeStampResp`` whose token is CMS SignedData over a TSTInfo, built with
asn1crypto (rfc3161-client parses and verifies tokens but cannot create them).
:func:`serving` serves a responder on 127.0.0.1 (port 0) from a thread that stops
when the block ends, or by itself after a deadline. Nothing here touches the network
beyond 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

from asn1crypto import algos, cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Responder = Callable[[bytes], tuple[int, str, bytes]]
"""Request body -> (HTTP status, content type, response body)."""

POLICY_OID = "1.3.6.1.4.1.99999.1"
GEN_TIME = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(GEN_TIME - timedelta(days=365))
        .not_valid_after(GEN_TIME + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    else:
        usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    return builder.add_extension(usage, critical=True).sign(issuer_key, hashes.SHA256())


@dataclass
class LocalTsa:
    """A CA and the TSA certificate it issued; :meth:`respond` answers time-stamp queries."""

    name: str = "Test TSA"
    gen_time: datetime = GEN_TIME
    issued_by: LocalTsa | None = None
    """Share this other TSA's CA (a sibling TSA under the same root) instead of making a CA."""

    def __post_init__(self) -> None:
        if self.issued_by is None:
            self.ca_key = ec.generate_private_key(ec.SECP256R1())
            self.ca = _certificate(f"{self.name} Root", self.ca_key, f"{self.name} Root", self.ca_key, ca=True)
        else:
            self.ca_key, self.ca = self.issued_by.ca_key, self.issued_by.ca
        self.key = ec.generate_private_key(ec.SECP256R1())
        root_name = self.ca.subject.rfc4514_string().removeprefix("CN=")
        self.cert = _certificate(self.name, self.key, root_name, self.ca_key, ca=False)
        self.serial = 0

    def chain_pem(self) -> bytes:
        """The TSA certificate then its CA, as a verifier would be given them."""
        return self.cert.public_bytes(Encoding.PEM) + self.ca.public_bytes(Encoding.PEM)

    def respond(self, query: bytes) -> tuple[int, str, bytes]:
        """Answer a DER TimeStampReq (the imprint and nonce it asks for) with a granted response."""
        request = tsp.TimeStampReq.load(query)
        imprint = request["message_imprint"]
        nonce = request["nonce"].native
        return 200, "application/timestamp-reply", self.token(imprint["hashed_message"].native, nonce=nonce)

    def token(self, digest: bytes, *, nonce: int | None = None, gen_time: datetime | None = None) -> bytes:
        """A granted TimeStampResp over a SHA-256 ``digest``, signed by this TSA."""
        self.serial += 1
        info = {
            "version": "v1",
            "policy": POLICY_OID,
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest},
            "serial_number": self.serial,
            "gen_time": gen_time or self.gen_time,
            "accuracy": {"seconds": 1},
        }
        if nonce is not None:
            info["nonce"] = nonce
        tst_info = tsp.TSTInfo(info)
        response = tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": self._signed(tst_info)})
        return bytes(response.dump())

    def _signed(self, tst_info: tsp.TSTInfo) -> cms.ContentInfo:
        content = tst_info.dump()
        cert = asn1_x509.Certificate.load(self.cert.public_bytes(Encoding.DER))
        signed_attrs = cms.CMSAttributes(
            [
                cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
                cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(content).digest()]}),
                cms.CMSAttribute(
                    {
                        "type": "signing_certificate_v2",
                        "values": [{"certs": [{"cert_hash": hashlib.sha256(cert.dump()).digest()}]}],
                    }
                ),
            ]
        )
        signature = self.key.sign(signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
        signer = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    {"issuer_and_serial_number": {"issuer": cert.issuer, "serial_number": cert.serial_number}}
                ),
                "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "signed_attrs": signed_attrs,
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
                "signature": signature,
            }
        )
        signed_data = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
                "encap_content_info": {"content_type": "tst_info", "content": cms.ParsableOctetString(content)},
                "certificates": [cert],
                "signer_infos": [signer],
            }
        )
        return cms.ContentInfo({"content_type": "signed_data", "content": signed_data})


def rejection() -> bytes:
    """A TimeStampResp that refuses the request (status rejection, no token)."""
    status = bytes(tsp.PKIStatusInfo({"status": "rejection", "status_string": ["bad request"]}).dump())
    return b"\x30" + bytes([len(status)]) + status  # asn1crypto insists on a token; the RFC does not


def _handler(responder: Responder, seen: list[bytes]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append(self.headers.get("Content-Type", "").encode() + b"\n" + body)
            status, content_type, reply = responder(body)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            return

    return Handler


@dataclass
class Served:
    """Where a responder is served, and the requests it received (content type, newline, body)."""

    url: str
    requests: list[bytes]


@contextmanager
def serving(responder: Responder, *, deadline_s: float = 30.0) -> Iterator[Served]:
    """Serve ``responder`` on 127.0.0.1 from a thread that stops at the end of the block (or after ``deadline_s``)."""
    seen: list[bytes] = []
    server = HTTPServer(("127.0.0.1", 0), _handler(responder, seen))
    server.timeout = 0.05
    stop = threading.Event()
    until = time.monotonic() + deadline_s

    def loop() -> None:
        while not stop.is_set() and time.monotonic() < until:
            server.handle_request()

    thread = threading.Thread(target=loop, name="local-tsa", daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_address[1]}/tsa", seen)
    finally:
        stop.set()
        thread.join(timeout=5)
        server.server_close()
