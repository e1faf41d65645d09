"""Residency scan of AWS: moto-seeded estates (real boto3 calls), and a permission error from a local endpoint."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from moto import mock_aws

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INTEGRITY, EXIT_VIOLATIONS
from audit.policy import load_policy
from audit.residency.models import ResidencySettings, ScanResult
from audit.residency.providers.aws import AwsProvider, bucket_region
from audit.residency.scanner import scan, settings_from_policy
from fixtures.estate import AwsEstate, load_estate, seed_aws_estate
from tests.conftest import FIXTURES, POLICIES

RESIDENCY = FIXTURES / "residency"
EXPECTED = json.loads((RESIDENCY / "expected-findings.json").read_text())
AS_OF = "2022-06-30"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no real AWS configuration (profiles, endpoints)."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


def _settings() -> ResidencySettings:
    return settings_from_policy(load_policy(POLICIES), as_of=date.fromisoformat(AS_OF))


def _labels(result: ScanResult) -> list[dict[str, str]]:
    names = {s.resource: s.name for s in result.stores}
    return sorted(
        (
            {"rule_id": f.rule_id, "commitment": f.commitment, "store": names.get(f.resource, f.resource)}
            for f in result.findings
        ),
        key=lambda d: (d["commitment"], d["rule_id"], d["store"]),
    )


def _expected(name: str) -> list[dict[str, str]]:
    return sorted(EXPECTED[name], key=lambda d: (d["commitment"], d["rule_id"], d["store"]))


def _scan_args(estate: AwsEstate, *extra: str) -> list[str]:
    return [
        "residency",
        "scan",
        "--provider",
        "aws",
        "--regions",
        ",".join(estate.regions()),
        "--as-of",
        AS_OF,
        "--policy",
        str(POLICIES),
        *extra,
    ]


@pytest.mark.usefixtures("aws_env")
def test_compliant_estate_scans_clean_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    estate = load_estate(RESIDENCY / "aws-estate-compliant.yaml")
    with mock_aws():
        seed_aws_estate(estate)
        rc = main(_scan_args(estate, "--format", "json"))
    document = json.loads(capsys.readouterr().out)
    assert rc == EXIT_CLEAN
    assert document["findings"] == []
    kinds = sorted({s["kind"] for s in document["stores"]})
    assert kinds == ["backup-vault", "ebs-snapshot", "rds-snapshot", "s3-bucket"]
    assert document["summary"]["stores"] == 9 and document["summary"]["unclassified"] == 0
    build = next(s for s in document["stores"] if s["name"] == "build-artifacts")
    assert build["region"] == "us-east-1"  # moto returns no LocationConstraint for us-east-1


@pytest.mark.usefixtures("aws_env")
def test_violating_estate_fires_each_rule_once_with_resource_and_commitment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    estate = load_estate(RESIDENCY / "aws-estate-violating.yaml")
    with mock_aws():
        seed_aws_estate(estate)
        rc = main(
            _scan_args(
                estate,
                "--provider",
                "inventory",
                "--inventory",
                str(RESIDENCY / "inventory-violating.yaml"),
                "--format",
                "json",
            )
        )
    document = json.loads(capsys.readouterr().out)
    assert rc == EXIT_VIOLATIONS
    findings = document["findings"]
    rule_ids = [f["rule_id"] for f in findings]
    assert sorted(rule_ids) == sorted(
        {
            "store-not-on-oci",
            "oci-outside-us",
            "copy-outside-us",
            "singapore-after-deadline",
            "own-dc-not-phased-out",
            "unclassified-store",
        }
    )
    by_rule = {f["rule_id"]: f for f in findings}
    assert by_rule["store-not-on-oci"]["resource"] == "arn:aws:s3:::us-user-media"
    assert by_rule["store-not-on-oci"]["region"] == "us-east-1"
    assert by_rule["copy-outside-us"]["resource"] == "arn:aws:s3:::us-user-media-replica"
    assert by_rule["copy-outside-us"]["region"] == "eu-west-1"
    assert by_rule["singapore-after-deadline"]["commitment"] == "C4"
    sea = by_rule["singapore-after-deadline"]["resource"]
    assert sea.startswith("arn:aws:ec2:ap-southeast-1:123456789012:snapshot/snap-")
    assert by_rule["unclassified-store"]["status"] == "unknown"
    assert by_rule["unclassified-store"]["resource"] == "arn:aws:rds:us-west-2:123456789012:snapshot:ops-db-snap"
    assert by_rule["own-dc-not-phased-out"]["commitment"] == "C6"
    names = {s["resource"]: s.get("name") for s in document["stores"]}
    labels = sorted(
        ({"rule_id": f["rule_id"], "commitment": f["commitment"], "store": names[f["resource"]]} for f in findings),
        key=lambda d: (d["commitment"], d["rule_id"], d["store"]),
    )
    assert labels == _expected("violating")


@pytest.mark.usefixtures("aws_env")
def test_june_2022_estate_matches_labels() -> None:
    estate = load_estate(RESIDENCY / "aws-estate-2022-06.yaml")
    with mock_aws():
        seed_aws_estate(estate)
        result = scan([AwsProvider(regions=estate.regions())], _settings())
    assert _labels(result) == _expected("aws-2022-06")


@pytest.mark.usefixtures("aws_env")
def test_backup_plan_ebs_and_rds_copies_are_followed() -> None:
    estate = AwsEstate.model_validate(
        {
            "description": "copies of US data leaving the US by every mechanism",
            "backup_vaults": [
                {"name": "us-vault", "region": "us-east-1", "tags": {"data-subject-region": "US"}},
                {"name": "eu-vault", "region": "eu-west-1"},
            ],
            "backup_plans": [{"name": "nightly", "region": "us-east-1", "vault": "us-vault", "copy_to": ["eu-vault"]}],
            "ebs_snapshots": [
                {
                    "id": "us-disk",
                    "region": "us-east-1",
                    "tags": {"data-subject-region": "US"},
                    "copies": [{"id": "us-disk-eu", "region": "eu-west-1", "copy_tags": False}],
                }
            ],
            "rds_snapshots": [
                {
                    "id": "us-db",
                    "region": "us-west-2",
                    "tags": {"data-subject-region": "US"},
                    "copies": [{"id": "us-db-eu", "region": "eu-west-1"}],
                }
            ],
        }
    )
    with mock_aws():
        seed_aws_estate(estate)
        result = scan([AwsProvider(regions=estate.regions())], _settings())
    stores = {s.name: s for s in result.stores}
    vault = stores["us-vault"]
    assert [(c.kind, c.region) for c in vault.copies] == [("backup-copy", "eu-west-1")]
    disk_copy = stores["us-disk-eu"]  # untagged copy, linked by its "[Copied snap-... from us-east-1]" description
    assert disk_copy.copy_of == stores["us-disk"].resource
    assert disk_copy.classification is not None and disk_copy.classification.source == "inherited"
    labels = {
        (f.rule_id, stores_name)
        for f in result.findings
        for stores_name in [next(s.name for s in result.stores if s.resource == f.resource)]
    }
    assert ("copy-outside-us", "eu-vault") in labels
    assert ("copy-outside-us", "us-disk-eu") in labels
    # moto records no SourceDBSnapshotIdentifier: the RDS copy is judged on its copied tags instead
    assert ("store-not-on-oci", "us-db-eu") in labels
    assert not any(f.rule_id == "unclassified-store" for f in result.findings)


@pytest.mark.usefixtures("aws_env")
def test_every_enabled_region_is_scanned_without_regions() -> None:
    estate = AwsEstate.model_validate(
        {
            "description": "one bucket far away",
            "s3_buckets": [{"name": "far-away-media", "region": "sa-east-1", "tags": {"data-subject-region": "US"}}],
        }
    )
    with mock_aws():
        seed_aws_estate(estate)
        provider = AwsProvider()
        result = scan([provider], _settings())
    assert "sa-east-1" in provider.scope().regions and len(provider.scope().regions) > 10
    assert [(f.rule_id, f.region) for f in result.findings] == [("store-not-on-oci", "sa-east-1")]


def test_bucket_region_of_location_constraints() -> None:
    assert bucket_region(None) == "us-east-1"
    assert bucket_region("") == "us-east-1"
    assert bucket_region("EU") == "eu-west-1"
    assert bucket_region("ap-southeast-1") == "ap-southeast-1"


class _DenyingAws(BaseHTTPRequestHandler):
    """STS answers who we are; every other call is refused with S3's AccessDenied."""

    def _send(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        if b"Action=GetCallerIdentity" in self.rfile.read(length):
            self._send(
                200,
                (
                    '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                    "<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/auditor</Arn>"
                    "<UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account></GetCallerIdentityResult>"
                    "<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
                ),
            )
        else:
            self.do_GET()

    def do_GET(self) -> None:
        self._send(
            403, "<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>r-2</RequestId></Error>"
        )

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def denying_endpoint(aws_env: None) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DenyingAws)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_permission_error_is_exit_3_naming_provider_and_region(
    denying_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", denying_endpoint)  # honoured by boto3 itself
    rc = main(["residency", "scan", "--provider", "aws", "--regions", "us-east-1", "--policy", str(POLICIES)])
    captured = capsys.readouterr()
    assert rc == EXIT_INTEGRITY
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    assert lines[0].startswith("error: aws us-east-1: s3 list_buckets failed: AccessDenied")
    assert "violation" not in captured.out  # never a clean (or any) result


def test_profile_that_does_not_exist_is_an_input_error(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    rc = main(["residency", "scan", "--provider", "aws", "--regions", "us-east-1", "--policy", str(POLICIES)])
    assert rc == 2
    assert "no-such-profile" in capsys.readouterr().err
