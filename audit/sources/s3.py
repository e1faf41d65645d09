"""Sealed logs in S3: ``s3://bucket/prefix`` streamed into a temporary local directory.

:func:`local_log_dir` yields a local directory for a LOGDIR argument: a local path
as it is, or for ``s3://bucket/prefix`` a temporary directory holding every object
under the prefix at its relative path, downloaded one object at a time with
``download_fileobj`` (constant memory), and removed afterwards. The verifier then
reads that directory like any other: nothing downloaded is trusted before it
verifies. :func:`cloudtrail_objects` does the same for a CloudTrail bucket: the log
files and digest files under ``s3://bucket/prefix`` in CloudTrail's layout
(``AWSLogs/[o-ORG/]ACCOUNT/CloudTrail[-Digest]/REGION/YYYY/MM/DD/NAME.json.gz``), other
objects ignored. Honours the standard AWS environment (``AWS_PROFILE``, ``AWS_REGION``,
``AWS_ENDPOINT_URL``). Object keys that would escape the directory are refused.
Does not verify or parse logs.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from audit.errors import InputError, ScanError

SCHEME = "s3://"
CLOUDTRAIL_OBJECT = re.compile(
    r"(?:^|/)AWSLogs/(?:o-[a-z0-9]+/)?[0-9]{12}/(?P<kind>CloudTrail|CloudTrail-Digest)/[^/]+/"
    r"[0-9]{4}/[0-9]{2}/[0-9]{2}/(?P<name>[^/]+[.]json(?:[.]gz)?(?P<sidecar>[.]signature)?)$"
)
"""A CloudTrail log or digest object key (the layout CloudTrail delivers to its bucket)."""
Target = Callable[[str, PurePosixPath], Path | None]
OnMetadata = Callable[[str, dict[str, str], Path], None]


def parse_s3_url(spec: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix`` (prefix normalised to end with ``/`` or be empty)."""
    rest = spec[len(SCHEME) :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise InputError("S3 URL has no bucket (expected s3://bucket/prefix)", path=spec)
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def _relative(key: str, prefix: str, spec: str) -> PurePosixPath | None:
    rel = PurePosixPath(key[len(prefix) :])
    if key.endswith("/") or not rel.parts:
        return None  # a "directory" marker object
    if rel.is_absolute() or any(part in {"..", "."} for part in rel.parts) or "\\" in key:
        raise InputError(f"object key {key!r} would escape the log directory", path=spec)
    return rel


def _fail(exc: Exception, region: str | None, operation: str, spec: str) -> Exception:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "ClientError"))
        if code in {"NoSuchBucket", "404", "NoSuchKey"}:
            return InputError(f"{code}: {error.get('Message', 'not found')}", path=spec)
        return ScanError("s3", region, operation, f"{code}: {error.get('Message', '')}".strip())
    return ScanError("s3", region, operation, str(exc))


def download_prefix(spec: str, dest: Path, target: Target | None = None, on_metadata: OnMetadata | None = None) -> int:
    """Download every object under the URL's prefix into ``dest``; return how many.

    ``target`` maps an object (key, path relative to the prefix) to its local file, or
    None to skip it; by default the object keeps its relative path under ``dest``.
    ``on_metadata`` is called with each downloaded object's user metadata.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = parse_s3_url(spec)
    try:
        session = boto3.Session()
    except BotoCoreError as exc:
        raise InputError(f"AWS configuration: {exc}", path=spec) from None
    region = os.environ.get("AWS_REGION") or session.region_name
    client: Any = session.client("s3", region_name=region)
    count = 0
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", ()):
                rel = _relative(item["Key"], prefix, spec)
                if rel is None:
                    continue
                local = dest.joinpath(*rel.parts) if target is None else target(item["Key"], rel)
                if local is None:
                    continue
                local.parent.mkdir(parents=True, exist_ok=True)
                with local.open("xb") as fh:
                    client.download_fileobj(bucket, item["Key"], fh)
                if on_metadata is not None:
                    on_metadata(
                        item["Key"], client.head_object(Bucket=bucket, Key=item["Key"]).get("Metadata", {}), local
                    )
                count += 1
    except (ClientError, BotoCoreError) as exc:
        raise _fail(exc, region, f"s3://{bucket}/{prefix}", spec) from None
    return count


@contextmanager
def local_log_dir(spec: str | Path) -> Iterator[Path]:
    """A local directory for LOGDIR: the path itself, or a temporary copy of an S3 prefix."""
    text = str(spec)
    if not text.startswith(SCHEME):
        yield Path(spec)
        return
    with tempfile.TemporaryDirectory(prefix="residency-audit-s3-") as tmp:
        root = Path(tmp) / "log"
        root.mkdir()
        if download_prefix(text, root) == 0:
            raise InputError("no objects under this S3 prefix", path=text)
        yield root


def is_s3_url(spec: str | Path) -> bool:
    """Whether a path argument is an S3 URL (``s3://``; a Path makes it ``s3:/``)."""
    return str(spec).startswith("s3:/")


def s3_url(spec: str | Path) -> str:
    """An S3 URL as given, repairing the ``s3:/`` a Path makes of ``s3://``."""
    return SCHEME + str(spec)[len("s3:/") :].lstrip("/")


@contextmanager
def cloudtrail_objects(spec: str) -> Iterator[tuple[list[Path], Path | None]]:
    """Local copies of the CloudTrail log files (and the digest directory, if any) under an S3 prefix."""
    with tempfile.TemporaryDirectory(prefix="residency-audit-s3-") as tmp:
        logs, digests = Path(tmp) / "logs", Path(tmp) / "digests"
        names: set[str] = set()

        def target(key: str, rel: PurePosixPath) -> Path | None:
            match = CLOUDTRAIL_OBJECT.search(key)
            if match is None:
                return None
            if match["kind"] == "CloudTrail-Digest":
                local = digests.joinpath(*rel.parts)
                return None if local.exists() else local  # a sidecar already written from the metadata
            if match["sidecar"]:
                return None
            if match["name"] in names:
                raise InputError(f"two CloudTrail log objects are named {match['name']!r}", path=spec)
            names.add(match["name"])
            return logs / match["name"]

        def signature(key: str, metadata: dict[str, str], local: Path) -> None:
            # CloudTrail keeps a digest's signature in its object metadata; offline it is a sidecar file.
            sidecar = local.with_name(local.name + ".signature")
            if local.is_relative_to(digests) and "signature" in metadata and not sidecar.exists():
                sidecar.write_text(metadata["signature"], encoding="ascii")

        download_prefix(spec, Path(tmp), target, signature)
        files = sorted(logs.iterdir()) if logs.is_dir() else []
        if not files:
            raise InputError("no CloudTrail log files (AWSLogs/.../CloudTrail/...) under this S3 prefix", path=spec)
        yield files, digests if digests.is_dir() else None
