"""Sealed logs in S3: ``s3://bucket/prefix`` streamed into a temporary local directory.

:func:`local_log_dir` yields a local directory for a LOGDIR argument: a local path
as it is, or for ``s3://bucket/prefix`` a temporary directory holding every object
under the prefix at its relative path, downloaded one object at a time with
``download_fileobj`` (constant memory), and removed afterwards. The verifier then
reads that directory like any other: nothing downloaded is trusted before it
verifies. Honours the standard AWS environment (``AWS_PROFILE``, ``AWS_REGION``,
``AWS_ENDPOINT_URL``). Object keys that would escape the directory are refused.
Does not verify or parse logs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from audit.errors import InputError, ScanError

SCHEME = "s3://"


def parse_s3_url(spec: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix`` (prefix normalised to end with ``/`` or be empty)."""
    rest = spec[len(SCHEME):]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise InputError("S3 URL has no bucket (expected s3://bucket/prefix)", path=spec)
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def _relative(key: str, prefix: str, spec: str) -> PurePosixPath | None:
    rel = PurePosixPath(key[len(prefix):])
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


def download_prefix(spec: str, dest: Path) -> int:
    """Download every object under the URL's prefix into ``dest``; return how many."""
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
                target = dest.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as fh:
                    client.download_fileobj(bucket, item["Key"], fh)
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
