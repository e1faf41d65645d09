"""Build an AWS estate from a declarative description, for the demo and tests on moto.

An estate file (YAML, validated by pydantic) lists S3 buckets with tags and
replication targets, AWS Backup vaults and plans with copy actions, RDS snapshots
and EBS snapshots with their cross-region copies. :func:`seed_aws_estate` creates
them with ordinary boto3 calls in whatever AWS the environment points at;
:func:`moto_estate` does so inside moto's in-process ``mock_aws`` (moto is a
development dependency: the context manager raises ImportError without it). Not
meant for real accounts: it creates resources.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from audit.models import NonEmpty
from audit.residency.providers.inventory import load_model_file


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BucketSpec(_Spec):
    """An S3 bucket; ``replicate_to`` names buckets of this estate."""

    name: NonEmpty
    region: NonEmpty
    tags: dict[str, str] = Field(default_factory=dict)
    replicate_to: tuple[NonEmpty, ...] = ()


class VaultSpec(_Spec):
    """An AWS Backup vault."""

    name: NonEmpty
    region: NonEmpty
    tags: dict[str, str] = Field(default_factory=dict)


class PlanSpec(_Spec):
    """A backup plan whose one rule backs up into ``vault`` and copies to ``copy_to`` vaults."""

    name: NonEmpty
    region: NonEmpty
    vault: NonEmpty
    copy_to: tuple[NonEmpty, ...] = ()


class SnapshotCopySpec(_Spec):
    """A cross-region copy of a snapshot (tags are copied with it unless ``copy_tags`` is false)."""

    id: NonEmpty
    region: NonEmpty
    copy_tags: bool = True


class _SnapshotSpec(_Spec):
    id: NonEmpty
    region: NonEmpty
    tags: dict[str, str] = Field(default_factory=dict)
    copies: tuple[SnapshotCopySpec, ...] = ()


class RdsSnapshotSpec(_SnapshotSpec):
    """An RDS DB snapshot (of a small instance created for it) and its copies."""


class EbsSnapshotSpec(_SnapshotSpec):
    """An EBS snapshot (of a 1 GiB volume created for it, named by its Name tag) and its copies."""


class AwsEstate(_Spec):
    """A whole estate."""

    description: NonEmpty
    s3_buckets: tuple[BucketSpec, ...] = ()
    backup_vaults: tuple[VaultSpec, ...] = ()
    backup_plans: tuple[PlanSpec, ...] = ()
    rds_snapshots: tuple[RdsSnapshotSpec, ...] = ()
    ebs_snapshots: tuple[EbsSnapshotSpec, ...] = ()

    def regions(self) -> tuple[str, ...]:
        """Every region the estate uses (including copy destinations)."""
        found = {b.region for b in self.s3_buckets} | {v.region for v in self.backup_vaults}
        for rds in self.rds_snapshots:
            found |= {rds.region, *(c.region for c in rds.copies)}
        for ebs in self.ebs_snapshots:
            found |= {ebs.region, *(c.region for c in ebs.copies)}
        return tuple(sorted(found))


def load_estate(path: Path) -> AwsEstate:
    """Load and validate an estate file."""
    return load_model_file(path, AwsEstate)


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def seed_aws_estate(estate: AwsEstate) -> None:
    """Create the estate with boto3 in the AWS the environment points at."""
    import boto3

    session = boto3.Session()
    account = session.client("sts", region_name="us-east-1").get_caller_identity()["Account"]
    buckets = {b.name: b for b in estate.s3_buckets}
    for bucket in estate.s3_buckets:
        s3 = session.client("s3", region_name=bucket.region)
        kwargs: dict[str, Any] = {"Bucket": bucket.name}
        if bucket.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": bucket.region}
        s3.create_bucket(**kwargs)
        if bucket.tags:
            s3.put_bucket_tagging(Bucket=bucket.name, Tagging={"TagSet": _tag_list(bucket.tags)})
    for bucket in estate.s3_buckets:
        if not bucket.replicate_to:
            continue
        s3 = session.client("s3", region_name=bucket.region)
        s3.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"})
        rules = [
            {"ID": f"to-{target}", "Status": "Enabled", "Priority": n, "Filter": {"Prefix": ""},
             "DeleteMarkerReplication": {"Status": "Disabled"},
             "Destination": {"Bucket": f"arn:aws:s3:::{buckets[target].name}"}}
            for n, target in enumerate(bucket.replicate_to, start=1)
        ]
        s3.put_bucket_replication(Bucket=bucket.name, ReplicationConfiguration={
            "Role": f"arn:aws:iam::{account}:role/s3-replication", "Rules": rules})
    vaults = {}
    for vault in estate.backup_vaults:
        backup = session.client("backup", region_name=vault.region)
        vaults[vault.name] = backup.create_backup_vault(BackupVaultName=vault.name, BackupVaultTags=vault.tags)
    for plan in estate.backup_plans:
        session.client("backup", region_name=plan.region).create_backup_plan(BackupPlan={
            "BackupPlanName": plan.name,
            "Rules": [{"RuleName": f"{plan.name}-daily", "TargetBackupVaultName": plan.vault,
                       "CopyActions": [{"DestinationBackupVaultArn": vaults[t]["BackupVaultArn"]}
                                       for t in plan.copy_to]}],
        })
    for snap in estate.rds_snapshots:
        rds = session.client("rds", region_name=snap.region)
        rds.create_db_instance(DBInstanceIdentifier=f"{snap.id}-db", DBInstanceClass="db.t3.micro",
                               Engine="postgres", MasterUsername="audit", MasterUserPassword="not-a-secret-1",
                               AllocatedStorage=20)
        made = rds.create_db_snapshot(DBInstanceIdentifier=f"{snap.id}-db", DBSnapshotIdentifier=snap.id,
                                      Tags=_tag_list(snap.tags))
        for copy in snap.copies:
            session.client("rds", region_name=copy.region).copy_db_snapshot(
                SourceDBSnapshotIdentifier=made["DBSnapshot"]["DBSnapshotArn"], TargetDBSnapshotIdentifier=copy.id,
                SourceRegion=snap.region, CopyTags=copy.copy_tags,
            )
        # the snapshot is what the estate describes: drop the instance and its automated backups
        rds.delete_db_instance(DBInstanceIdentifier=f"{snap.id}-db", SkipFinalSnapshot=True,
                               DeleteAutomatedBackups=True)
    for ebs in estate.ebs_snapshots:
        ec2 = session.client("ec2", region_name=ebs.region)
        volume = ec2.create_volume(AvailabilityZone=f"{ebs.region}a", Size=1)
        tags = {"Name": ebs.id, **ebs.tags}
        made = ec2.create_snapshot(VolumeId=volume["VolumeId"], TagSpecifications=[
            {"ResourceType": "snapshot", "Tags": _tag_list(tags)}])
        for copy in ebs.copies:
            copy_tags = {**(tags if copy.copy_tags else {}), "Name": copy.id}
            session.client("ec2", region_name=copy.region).copy_snapshot(
                SourceSnapshotId=made["SnapshotId"], SourceRegion=ebs.region,
                Description=f"[Copied {made['SnapshotId']} from {ebs.region}]",
                TagSpecifications=[{"ResourceType": "snapshot", "Tags": _tag_list(copy_tags)}],
            )


_AWS_ENV_CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION")


@contextmanager
def moto_estate(estate: AwsEstate) -> Iterator[None]:
    """The estate inside moto's in-process AWS (no network); real AWS settings are masked meanwhile."""
    from unittest import mock

    from moto import mock_aws

    masked = {k: v for k, v in os.environ.items() if k not in _AWS_ENV_CLEARED and not k.startswith("AWS_ENDPOINT")}
    env = {**masked, "AWS_DEFAULT_REGION": "us-east-1", "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}
    with mock.patch.dict(os.environ, env, clear=True), mock_aws():
        seed_aws_estate(estate)
        yield
