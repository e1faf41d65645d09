"""Offline validation of CloudTrail log files against CloudTrail digest files.

CloudTrail delivers, per trail and region, an hourly *digest file* listing the
SHA-256 of every log file delivered in that hour (``logFiles[].hashValue``, over the
uncompressed content), chained to the previous digest by ``previousDigestSignature``
and ``previousDigestHashValue``, and signed with SHA256withRSA. The signature is the
hex string in the digest object's S3 metadata (``x-amz-meta-signature``); offline it
is read from a sidecar file ``<digest file>.signature``. The signed string is, as AWS
documents it::

    digestEndTime "\\n" digestS3Bucket "/" digestS3Object "\\n"
    hex(SHA-256(uncompressed digest file)) "\\n" previousDigestSignature

(``previousDigestSignature`` is the text ``null`` for the first digest of a chain).
Public keys come from a file in the shape of ``aws cloudtrail list-public-keys``
output, fetched beforehand from a trusted place.

:func:`validate_digests` reports every problem, each with a stable code: modified,
missing (deleted) or unlisted log files, bad or missing signatures, unknown or
out-of-window keys, broken chain links, gaps in the chain with the exact number of
missing hourly digests (AWS's ``validate-logs`` merges consecutive gaps and needs
network access), and a truncated tail when an expected end time is given. It does
not fetch anything, parse log records, or import events.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from audit.errors import InputError
from audit.models import UtcDatetime
from audit.reading import DEFAULT_LIMITS, open_maybe_gzip
from audit.records import describe_validation_error, open_input

SIGNATURE_SUFFIX = ".signature"
DEFAULT_PERIOD = timedelta(hours=1)
_DATE_DIRS = re.compile(r"/\d{4}/\d{2}/\d{2}/")
_STAMP = re.compile(r"_\d{8}T\d{6}Z\.json(\.gz)?$")


class _Vendor(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class DigestLogFile(_Vendor):
    """One log file a digest vouches for (field names are AWS's)."""

    s3Bucket: str
    s3Object: str
    hashValue: str
    hashAlgorithm: str = "SHA-256"


class Digest(_Vendor):
    """The fields of a CloudTrail digest file this validator uses."""

    awsAccountId: str
    digestStartTime: UtcDatetime
    digestEndTime: UtcDatetime
    digestS3Bucket: str
    digestS3Object: str
    digestPublicKeyFingerprint: str
    digestSignatureAlgorithm: str
    previousDigestS3Bucket: str | None = None
    previousDigestS3Object: str | None = None
    previousDigestHashValue: str | None = None
    previousDigestSignature: str | None = None
    logFiles: tuple[DigestLogFile, ...] = ()


class PublicKeyEntry(_Vendor):
    """One key of ``aws cloudtrail list-public-keys`` output (``Value`` is base64 DER)."""

    Value: str
    Fingerprint: str
    ValidityStartTime: UtcDatetime | None = None
    ValidityEndTime: UtcDatetime | None = None


class PublicKeyList(_Vendor):
    """The public keys file."""

    PublicKeyList: tuple[PublicKeyEntry, ...] = Field(min_length=1)


@dataclass(frozen=True)
class DigestProblem:
    """One integrity problem: stable code, the file concerned, a message, a count where it applies."""

    code: str
    file: str
    message: str
    count: int | None = None


@dataclass(frozen=True)
class _Loaded:
    path: Path
    digest: Digest
    raw_end: str
    sha256: str
    signature: str | None


@dataclass(frozen=True)
class DigestReport:
    """Outcome of a validation."""

    problems: tuple[DigestProblem, ...]
    digests: int
    log_files: int
    chains: int

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> dict[str, Any]:
        """Counts for the import report."""
        return {"digests": self.digests, "log_files": self.log_files, "chains": self.chains, "verified": self.ok}


# ------------------------------------------------------------------ loading


MAX_DIGEST_BYTES = 64 << 20
"""A digest file (one JSON object naming log files) inflates to at most this: real ones are kilobytes."""


def _read_maybe_gzip(path: Path) -> bytes:
    limits = replace(DEFAULT_LIMITS, max_decompressed_bytes=MAX_DIGEST_BYTES)
    with open_maybe_gzip(path, limits=limits) as fh:
        try:
            data = fh.read(MAX_DIGEST_BYTES + 1)
        except (OSError, EOFError) as exc:
            raise InputError(f"cannot decompress: {exc}", path=path) from None
    if len(data) > MAX_DIGEST_BYTES:
        raise InputError(f"is more than the limit of {MAX_DIGEST_BYTES} bytes", path=path)
    return data


def uncompressed_sha256(path: Path) -> str:
    """SHA-256 hex of a file's content, decompressed first if it is gzip."""
    digest = hashlib.sha256()
    with open_maybe_gzip(path) as stream:
        try:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
        except (OSError, EOFError) as exc:
            raise InputError(f"cannot decompress: {exc}", path=path) from None
    return digest.hexdigest()


def load_public_keys(path: Path) -> dict[str, tuple[rsa.RSAPublicKey, PublicKeyEntry]]:
    """RSA public keys by fingerprint from a ``list-public-keys`` JSON file."""
    path = open_input(path)
    try:
        doc = PublicKeyList.model_validate(orjson.loads(path.read_bytes()))
    except orjson.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc}", path=path) from None
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc), path=path) from None
    keys: dict[str, tuple[rsa.RSAPublicKey, PublicKeyEntry]] = {}
    for number, entry in enumerate(doc.PublicKeyList):
        try:
            key = serialization.load_der_public_key(base64.b64decode(entry.Value, validate=True))
        except (ValueError, binascii.Error, UnsupportedAlgorithm):
            raise InputError(f"PublicKeyList[{number}].Value is not a base64 DER public key", path=path) from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise InputError(f"PublicKeyList[{number}] is not an RSA key", path=path)
        keys[entry.Fingerprint] = (key, entry)
    return keys


def _digest_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise InputError("no such digest directory", path=directory)
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name.endswith((".json", ".json.gz")))


def _load(path: Path, problems: list[DigestProblem]) -> _Loaded | None:
    content = _read_maybe_gzip(path)
    try:
        value = orjson.loads(content)
        digest = Digest.model_validate(value)
    except orjson.JSONDecodeError as exc:
        problems.append(DigestProblem("digest-malformed", str(path), f"malformed JSON: {exc}"))
        return None
    except ValidationError as exc:
        problems.append(DigestProblem("digest-malformed", str(path), describe_validation_error(exc)))
        return None
    sig_path = path.with_name(path.name + SIGNATURE_SUFFIX)
    signature: str | None = None
    if sig_path.is_file():
        try:
            signature = sig_path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(DigestProblem("digest-bad-signature", str(sig_path), f"unreadable signature file: {exc}"))
            return None
    return _Loaded(path, digest, str(value["digestEndTime"]), hashlib.sha256(content).hexdigest(), signature)


def signing_string(digest: Digest, raw_end: str, content_sha256: str) -> bytes:
    """The string CloudTrail signs for one digest file (AWS's documented layout)."""
    previous = digest.previousDigestSignature if digest.previousDigestSignature is not None else "null"
    return f"{raw_end}\n{digest.digestS3Bucket}/{digest.digestS3Object}\n{content_sha256}\n{previous}".encode()


def _check_signature(
    item: _Loaded, keys: dict[str, tuple[rsa.RSAPublicKey, PublicKeyEntry]], problems: list[DigestProblem]
) -> None:
    d = item.digest
    where = str(item.path)
    if item.signature is None:
        problems.append(DigestProblem("digest-signature-missing", where, f"no {item.path.name}{SIGNATURE_SUFFIX}"))
        return
    if d.digestSignatureAlgorithm != "SHA256withRSA":
        problems.append(
            DigestProblem("digest-bad-signature", where, f"unsupported algorithm {d.digestSignatureAlgorithm!r}")
        )
        return
    found = keys.get(d.digestPublicKeyFingerprint)
    if found is None:
        problems.append(
            DigestProblem("digest-unknown-key", where, f"no public key with fingerprint {d.digestPublicKeyFingerprint}")
        )
        return
    key, entry = found
    if (entry.ValidityStartTime and d.digestEndTime < entry.ValidityStartTime) or (
        entry.ValidityEndTime and d.digestEndTime > entry.ValidityEndTime
    ):
        problems.append(
            DigestProblem("digest-key-not-valid", where, f"key {entry.Fingerprint} was not valid at {item.raw_end}")
        )
        return
    try:
        key.verify(
            bytes.fromhex(item.signature),
            signing_string(d, item.raw_end, item.sha256),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError):
        problems.append(DigestProblem("digest-bad-signature", where, "SHA256withRSA signature does not verify"))


def _chain_key(d: Digest) -> tuple[str, str]:
    return d.digestS3Bucket, _STAMP.sub("", _DATE_DIRS.sub("/", d.digestS3Object))


def _period(chain: Sequence[_Loaded]) -> timedelta:
    spans = sorted(s for c in chain if (s := c.digest.digestEndTime - c.digest.digestStartTime) > timedelta(0))
    return spans[len(spans) // 2] if spans else DEFAULT_PERIOD


def _missing(gap: timedelta, period: timedelta) -> int:
    return max(1, round(gap / period))


def _check_chain(chain: Sequence[_Loaded], expect_end: datetime | None, problems: list[DigestProblem]) -> None:
    period = _period(chain)
    for prev, cur in itertools.pairwise(chain):
        p, c = prev.digest, cur.digest
        where = str(cur.path)
        if c.digestStartTime > p.digestEndTime:
            count = _missing(c.digestStartTime - p.digestEndTime, period)
            problems.append(
                DigestProblem(
                    "digests-missing",
                    where,
                    f"{count} digest file(s) missing between {prev.raw_end} and {c.digestStartTime.isoformat()}",
                    count,
                )
            )
        elif c.digestStartTime < p.digestEndTime:
            problems.append(DigestProblem("digest-chain-broken", where, f"overlaps the previous digest {prev.path}"))
        else:
            if c.previousDigestSignature != prev.signature:
                problems.append(
                    DigestProblem(
                        "digest-chain-broken",
                        where,
                        f"previousDigestSignature is not the signature of {prev.path.name}",
                    )
                )
            if c.previousDigestHashValue != prev.sha256:
                problems.append(
                    DigestProblem(
                        "digest-chain-broken", where, f"previousDigestHashValue is not the SHA-256 of {prev.path.name}"
                    )
                )
    last = chain[-1]
    if expect_end is not None and expect_end - last.digest.digestEndTime >= period:
        count = (expect_end - last.digest.digestEndTime) // period
        problems.append(
            DigestProblem(
                "digest-tail-missing",
                str(last.path),
                f"{count} digest file(s) missing after {last.raw_end} (expected up to {expect_end.isoformat()})",
                count,
            )
        )


def validate_digests(
    log_files: Sequence[Path], digests_dir: Path, public_keys: Path, *, expect_end: datetime | None = None
) -> DigestReport:
    """Check ``log_files`` against the digest files under ``digests_dir``; report every problem."""
    keys = load_public_keys(public_keys)
    problems: list[DigestProblem] = []
    loaded = [item for p in _digest_files(digests_dir) if (item := _load(p, problems)) is not None]
    if not loaded and not problems:
        raise InputError("no digest files (*.json, *.json.gz) found", path=digests_dir)
    chains: dict[tuple[str, str], list[_Loaded]] = defaultdict(list)
    for item in loaded:
        _check_signature(item, keys, problems)
        chains[_chain_key(item.digest)].append(item)
    for chain in chains.values():
        chain.sort(key=lambda c: (c.digest.digestEndTime, c.path.name))
        _check_chain(chain, expect_end, problems)
    local = {p.name: p for p in log_files}
    listed: set[str] = set()
    for item in loaded:
        for entry in item.digest.logFiles:
            name = entry.s3Object.rsplit("/", 1)[-1]
            listed.add(name)
            path = local.get(name)
            if path is None:
                problems.append(
                    DigestProblem(
                        "log-file-missing", str(item.path), f"log file {entry.s3Object} listed in the digest is missing"
                    )
                )
            elif entry.hashAlgorithm != "SHA-256" or uncompressed_sha256(path) != entry.hashValue.lower():
                problems.append(
                    DigestProblem("log-file-modified", str(path), f"SHA-256 differs from the digest {item.path.name}")
                )
    for name, path in sorted(local.items()):
        if name not in listed:
            problems.append(DigestProblem("log-file-unlisted", str(path), "no digest file lists this log file"))
    return DigestReport(tuple(problems), len(loaded), len(listed), len(chains))
