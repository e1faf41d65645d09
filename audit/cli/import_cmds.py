"""``residency-audit import SOURCE FILES...``: vendor access logs into a sealed log.

One sub-command per source (``cloudtrail``, ``oci-audit``, ``gcp-access-transparency``,
``ocsf``), each converting, enriching and sealing with the same options;
``cloudtrail`` can first validate CloudTrail digest files offline, and reads
``s3://bucket/prefix`` in CloudTrail's bucket layout (logs and digests).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from audit.cli.console import out, signing_key
from audit.cli.state import logger
from audit.errors import EXIT_CLEAN, InputError, IntegrityError

if TYPE_CHECKING:  # the importers load when an import runs, not at start-up
    from audit.importers.cloudtrail_digest import DigestReport

import_app = typer.Typer(
    help="Import vendor access logs (CloudTrail, OCI Audit, GCP Access Transparency, OCSF) into a sealed log.",
    no_args_is_help=True,
)

Files = Annotated[list[Path], typer.Argument(help="Vendor log files (plain or gzip; JSON, JSON Lines or Parquet).")]
Directory = Annotated[Path, typer.Option("--directory", help="People directory (CSV or JSON).")]
Catalog = Annotated[Path, typer.Option("--catalog", help="Data catalogue (YAML).")]
KeyPath = Annotated[Path, typer.Option("--key", help="Producer's private signing key.")]
OutDir = Annotated[Path, typer.Option("--out", help="Log directory to create (must not exist or be empty).")]
Origin = Annotated[str | None, typer.Option(help="Log origin name (default: SOURCE-import).")]
SegmentSize = Annotated[int, typer.Option(min=1, help="Records per segment.")]
SkipInvalid = Annotated[
    bool, typer.Option("--skip-invalid", help="Skip bad records, listing each in the import report; don't fail.")
]


def _import(
    source: str,
    files: list[Path],
    directory: Path,
    catalog: Path,
    key_path: Path,
    out_dir: Path,
    origin: str | None,
    segment_size: int,
    skip_invalid: bool,
    digests: DigestReport | None = None,
) -> int:
    from audit.importers.enrichment import load_enrichment
    from audit.importers.run import IMPORT_REPORT_FILE, SOURCES, run_import

    enrichment = load_enrichment(directory, catalog)
    key = signing_key(key_path)
    result = run_import(
        SOURCES[source],
        files,
        enrichment,
        key=key,
        out=out_dir,
        origin=origin,
        segment_size=segment_size,
        skip_invalid=skip_invalid,
        digests=digests.summary() if digests is not None else None,
    )
    stats = result.stats
    out_of_scope = sum(stats.out_of_scope.values())
    logger().info("import.done", source=source, events=stats.events, records=stats.records, skipped=len(stats.skipped))
    out.print(
        f"imported {stats.events} event(s) from {stats.records} {SOURCES[source].vendor} record(s) in "
        f"{len(files)} file(s): "
        f"{out_of_scope} out of scope, {len(stats.skipped)} skipped, {stats.unresolved['principal']} unresolved "
        f"principal(s), {stats.unresolved['resource']} unresolved resource(s)",
        markup=False,
    )
    out.print(
        f"sealed into {out_dir} (root {result.seal.root}); {IMPORT_REPORT_FILE} sha256 {result.report_sha256} "
        f"is recorded in the log origin {result.origin!r}",
        markup=False,
    )
    return EXIT_CLEAN


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise InputError(f"--expect-end: {value!r} is not an RFC 3339 time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@import_app.command("cloudtrail")
def import_cloudtrail(
    files: Files,
    directory: Directory,
    catalog: Catalog,
    key_path: KeyPath,
    out_dir: OutDir,
    origin: Origin = None,
    segment_size: SegmentSize = 10000,
    skip_invalid: SkipInvalid = False,
    digests: Annotated[
        Path | None, typer.Option("--digests", help="Validate the files against the CloudTrail digest files here.")
    ] = None,
    public_keys: Annotated[
        Path | None, typer.Option("--public-keys", help="CloudTrail public keys (aws cloudtrail list-public-keys).")
    ] = None,
    expect_end: Annotated[
        str | None, typer.Option("--expect-end", help="Digests must reach this time (detects a truncated tail).")
    ] = None,
) -> int:
    """AWS CloudTrail files, or s3://bucket/prefix in CloudTrail's layout; optionally validate digests first."""
    from audit.sources.s3 import cloudtrail_objects, is_s3_url, s3_url

    run = partial(
        _cloudtrail,
        public_keys=public_keys,
        expect_end=expect_end,
        directory=directory,
        catalog=catalog,
        key_path=key_path,
        out_dir=out_dir,
        origin=origin,
        segment_size=segment_size,
        skip_invalid=skip_invalid,
    )
    if not any(is_s3_url(f) for f in files):
        return run(files, digests)
    if len(files) != 1:
        raise InputError("give one s3://bucket/prefix, or local files, not both")
    with cloudtrail_objects(s3_url(files[0])) as (logs, found):
        # The digest files delivered beside the logs are used when public keys are given.
        return run(logs, digests if digests is not None or public_keys is None else found)


def _cloudtrail(
    files: list[Path],
    digests: Path | None,
    public_keys: Path | None,
    expect_end: str | None,
    directory: Path,
    catalog: Path,
    key_path: Path,
    out_dir: Path,
    origin: str | None,
    segment_size: int,
    skip_invalid: bool,
) -> int:
    from audit.importers.cloudtrail_digest import validate_digests

    report: DigestReport | None = None
    if digests is None:
        if public_keys is not None or expect_end is not None:
            raise InputError("--public-keys and --expect-end need --digests")
    else:
        if public_keys is None:
            raise InputError("--digests needs --public-keys", path=digests)
        report = validate_digests(
            files, digests, public_keys, expect_end=_parse_time(expect_end) if expect_end is not None else None
        )
        for problem in report.problems:
            count = f" ({problem.count} missing)" if problem.count is not None else ""
            out.print(f"FAIL {problem.file}: {problem.code}{count}: {problem.message}", markup=False)
        if not report.ok:
            raise IntegrityError(
                f"CloudTrail digest validation failed ({len(report.problems)} problem(s)); nothing imported",
                path=digests,
            )
        out.print(
            f"OK {report.digests} digest file(s) in {report.chains} chain(s) vouch for {report.log_files} log file(s)",
            markup=False,
        )
    return _import(
        "cloudtrail", files, directory, catalog, key_path, out_dir, origin, segment_size, skip_invalid, report
    )


@import_app.command("oci-audit")
def import_oci_audit(
    files: Files,
    directory: Directory,
    catalog: Catalog,
    key_path: KeyPath,
    out_dir: OutDir,
    origin: Origin = None,
    segment_size: SegmentSize = 10000,
    skip_invalid: SkipInvalid = False,
) -> int:
    """OCI Audit events (CloudEvents), JSON Lines or a JSON array."""
    return _import("oci-audit", files, directory, catalog, key_path, out_dir, origin, segment_size, skip_invalid)


@import_app.command("gcp-access-transparency")
def import_gcp_access_transparency(
    files: Files,
    directory: Directory,
    catalog: Catalog,
    key_path: KeyPath,
    out_dir: OutDir,
    origin: Origin = None,
    segment_size: SegmentSize = 10000,
    skip_invalid: SkipInvalid = False,
) -> int:
    """Google Cloud and Workspace Access Transparency records (Cloud Logging entries, Reports API activities)."""
    return _import(
        "gcp-access-transparency", files, directory, catalog, key_path, out_dir, origin, segment_size, skip_invalid
    )


@import_app.command("ocsf")
def import_ocsf(
    files: Files,
    directory: Directory,
    catalog: Catalog,
    key_path: KeyPath,
    out_dir: OutDir,
    origin: Origin = None,
    segment_size: SegmentSize = 10000,
    skip_invalid: SkipInvalid = False,
) -> int:
    """OCSF API Activity (6003) and Datastore Activity (6005) events, JSON Lines or a JSON array."""
    return _import("ocsf", files, directory, catalog, key_path, out_dir, origin, segment_size, skip_invalid)
