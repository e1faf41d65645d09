"""AWS stores via boto3: S3 buckets, AWS Backup vaults and copy plans, RDS and EBS snapshots.

Honours the standard AWS environment (``AWS_PROFILE``, ``AWS_REGION`` /
``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL`` and the credential chain), so it runs
against AWS, a moto server or LocalStack alike. Scans every enabled region, or the
regions given. What each store's copies are:

* S3: the destinations of its replication rules (their region looked up with
  ``GetBucketLocation``; ``null``/empty means ``us-east-1``, ``EU`` means ``eu-west-1``);
* Backup vaults: the copy actions of every backup plan rule that targets the vault;
* RDS snapshots: cross-region copies name their source (``SourceDBSnapshotIdentifier``);
* EBS snapshots: copies are recognised by AWS's ``[Copied snap-… from REGION]``
  description (EBS records no source id); an unrecognised copy is judged on its own tags.

Any permission, credential or network failure is a :class:`ScanError` naming the
region and call: a partial scan is never reported as clean. Does not judge stores.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from audit.errors import InputError, ScanError
from audit.report.residency import ScanScope
from audit.residency.models import DataStore, ResidencySettings, StoreCopy
from audit.residency.places import classify

DEFAULT_REGION = "us-east-1"
_EBS_COPY = re.compile(r"Copied (snap-[0-9a-f]+) from ([a-z0-9-]+)")
_MISSING_OK = {"NoSuchTagSet", "ReplicationConfigurationNotFoundError", "NoSuchBucket"}


def bucket_region(location: str | None) -> str:
    """Region of a bucket from its ``LocationConstraint`` (none or empty is us-east-1)."""
    if not location:
        return DEFAULT_REGION
    return "eu-west-1" if location == "EU" else location


def _tags(pairs: list[dict[str, str]] | None) -> dict[str, str]:
    return {p["Key"]: p["Value"] for p in pairs or ()}


def _arn_region(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] or None if len(parts) > 3 else None


@dataclass
class AwsProvider:
    """Lists AWS stores in ``regions`` (every enabled region when empty)."""

    regions: tuple[str, ...] = ()
    _account: str = field(default="unknown", init=False)
    _scanned: tuple[str, ...] = field(default=(), init=False)
    _session: Any = field(default=None, init=False, repr=False)
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, init=False, repr=False)

    def scope(self) -> ScanScope:
        return ScanScope(provider="aws", account=self._account, regions=self._scanned, source="aws api")

    # ------------------------------------------------------------------ plumbing

    def _client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self._session.client(service, region_name=region)
        return self._clients[key]

    def _call(
        self,
        region: str,
        service: str,
        operation: str,
        call: Callable[..., Any],
        *,
        missing_ok: bool = False,
        **kwargs: Any,
    ) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return call(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "ClientError"))
            if missing_ok and code in _MISSING_OK:
                return None
            raise ScanError(
                "aws", region, f"{service} {operation}", f"{code}: {error.get('Message', '')}".strip()
            ) from None
        except BotoCoreError as exc:
            raise ScanError("aws", region, f"{service} {operation}", str(exc)) from None

    def _pages(self, region: str, service: str, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        client = self._client(service, region)
        pages = client.get_paginator(operation).paginate(**kwargs)
        iterator = iter(pages)

        def next_page() -> Any:
            return next(iterator, None)

        while True:
            page = self._call(region, service, operation, next_page)
            if page is None:
                return
            yield page

    # ------------------------------------------------------------------ scan

    def scan(self, settings: ResidencySettings) -> Iterator[DataStore]:
        import boto3
        from botocore.exceptions import BotoCoreError

        try:
            self._session = boto3.Session()
        except BotoCoreError as exc:  # e.g. AWS_PROFILE names a profile that does not exist
            raise InputError(f"AWS configuration: {exc}") from None
        home = os.environ.get("AWS_REGION") or self._session.region_name or DEFAULT_REGION
        sts = self._client("sts", home)
        self._account = self._call(home, "sts", "GetCallerIdentity", sts.get_caller_identity)["Account"]
        self._scanned = tuple(self.regions) or self._enabled_regions(home)
        yield from self._s3(home, settings)
        for region in self._scanned:
            yield from self._backup(region, settings)
            yield from self._rds(region, settings)
            yield from self._ebs(region, settings)

    def _enabled_regions(self, home: str) -> tuple[str, ...]:
        ec2 = self._client("ec2", home)
        regions = self._call(home, "ec2", "DescribeRegions", ec2.describe_regions)["Regions"]
        return tuple(sorted(r["RegionName"] for r in regions if r.get("OptInStatus") != "not-opted-in"))

    def _partition(self, region: str) -> str:
        return str(self._session.get_partition_for_region(region))

    def _store(
        self,
        region: str,
        resource: str,
        name: str,
        kind: str,
        tags: dict[str, str],
        settings: ResidencySettings,
        **extra: Any,
    ) -> DataStore:
        return DataStore(
            provider="aws",
            account=self._account,
            region=region,
            resource=resource,
            name=name,
            kind=kind,
            tags=tags,
            classification=classify(tags, settings),
            source=f"aws:{kind}",
            **extra,
        )

    # ------------------------------------------------------------------ S3

    def _s3(self, home: str, settings: ResidencySettings) -> Iterator[DataStore]:
        buckets = [b for page in self._pages(home, "s3", "list_buckets") for b in page.get("Buckets", ())]
        regions: dict[str, str] = {}
        for bucket in buckets:
            regions[bucket["Name"]] = bucket.get("BucketRegion") or self._location(home, bucket["Name"])
        wanted = set(self._scanned)
        for name in sorted(regions):
            region = regions[name]
            if region not in wanted:
                continue
            s3 = self._client("s3", region)
            tagging = self._call(region, "s3", "GetBucketTagging", s3.get_bucket_tagging, Bucket=name, missing_ok=True)
            replication = self._call(
                region, "s3", "GetBucketReplication", s3.get_bucket_replication, Bucket=name, missing_ok=True
            )
            copies = self._replication_copies(home, replication, regions)
            yield self._store(
                region,
                f"arn:{self._partition(region)}:s3:::{name}",
                name,
                "s3-bucket",
                _tags((tagging or {}).get("TagSet")),
                settings,
                copies=copies,
            )

    def _location(self, home: str, bucket: str) -> str:
        s3 = self._client("s3", home)
        answer = self._call(home, "s3", "GetBucketLocation", s3.get_bucket_location, Bucket=bucket)
        return bucket_region(answer.get("LocationConstraint"))

    def _replication_copies(
        self, home: str, replication: dict[str, Any] | None, known: dict[str, str]
    ) -> tuple[StoreCopy, ...]:
        if not replication:
            return ()
        copies = []
        for rule in replication.get("ReplicationConfiguration", {}).get("Rules", ()):
            if rule.get("Status") != "Enabled":
                continue
            arn = rule["Destination"]["Bucket"]
            name = arn.rsplit(":", 1)[-1]
            region = known.get(name) or self._foreign_location(home, name)
            copies.append(StoreCopy(kind="replication", target=arn, provider="aws", region=region))
        return tuple(copies)

    def _foreign_location(self, home: str, bucket: str) -> str | None:
        """Region of a destination bucket this account does not list (``None`` if not visible)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._client("s3", home).get_bucket_location(Bucket=bucket)
        except ClientError:
            return None  # another account's bucket we may not read: its place stays unknown
        except BotoCoreError as exc:
            raise ScanError("aws", home, "s3 GetBucketLocation", str(exc)) from None
        return bucket_region(answer.get("LocationConstraint"))

    # ------------------------------------------------------------------ AWS Backup

    def _backup(self, region: str, settings: ResidencySettings) -> Iterator[DataStore]:
        backup = self._client("backup", region)
        copies: dict[str, list[StoreCopy]] = defaultdict(list)
        for page in self._pages(region, "backup", "list_backup_plans"):
            for plan in page.get("BackupPlansList", ()):
                body = self._call(
                    region, "backup", "GetBackupPlan", backup.get_backup_plan, BackupPlanId=plan["BackupPlanId"]
                )
                for rule in body["BackupPlan"].get("Rules", ()):
                    for action in rule.get("CopyActions", ()):
                        target = action["DestinationBackupVaultArn"]
                        copies[rule["TargetBackupVaultName"]].append(
                            StoreCopy(kind="backup-copy", target=target, provider="aws", region=_arn_region(target))
                        )
        for page in self._pages(region, "backup", "list_backup_vaults"):
            for vault in page.get("BackupVaultList", ()):
                arn = vault["BackupVaultArn"]
                tags = self._call(region, "backup", "ListTags", backup.list_tags, ResourceArn=arn)
                yield self._store(
                    region,
                    arn,
                    vault["BackupVaultName"],
                    "backup-vault",
                    dict(tags.get("Tags", {})),
                    settings,
                    copies=tuple(copies.get(vault["BackupVaultName"], ())),
                )

    # ------------------------------------------------------------------ RDS

    def _rds(self, region: str, settings: ResidencySettings) -> Iterator[DataStore]:
        rds = self._client("rds", region)
        for page in self._pages(region, "rds", "describe_db_snapshots"):
            for snap in page.get("DBSnapshots", ()):
                arn = snap["DBSnapshotArn"]
                pairs = snap.get("TagList")
                if pairs is None:
                    pairs = self._call(
                        region, "rds", "ListTagsForResource", rds.list_tags_for_resource, ResourceName=arn
                    )["TagList"]
                source = snap.get("SourceDBSnapshotIdentifier")
                copy_of = source if snap.get("SourceRegion") and str(source).startswith("arn:") else None
                yield self._store(
                    region, arn, snap["DBSnapshotIdentifier"], "rds-snapshot", _tags(pairs), settings, copy_of=copy_of
                )

    # ------------------------------------------------------------------ EBS

    def _ebs(self, region: str, settings: ResidencySettings) -> Iterator[DataStore]:
        partition = self._partition(region)
        for page in self._pages(region, "ec2", "describe_snapshots", OwnerIds=["self"]):
            for snap in page.get("Snapshots", ()):
                if snap.get("OwnerId") != self._account:
                    continue
                tags = _tags(snap.get("Tags"))
                copy_of = None
                match = _EBS_COPY.search(snap.get("Description") or "")
                if match is not None:
                    copy_of = f"arn:{partition}:ec2:{match.group(2)}:{self._account}:snapshot/{match.group(1)}"
                sid = snap["SnapshotId"]
                yield self._store(
                    region,
                    f"arn:{partition}:ec2:{region}:{self._account}:snapshot/{sid}",
                    tags.get("Name", sid),
                    "ebs-snapshot",
                    tags,
                    settings,
                    copy_of=copy_of,
                )
