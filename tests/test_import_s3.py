"""``import cloudtrail s3://bucket/prefix``: the CloudTrail bucket layout (logs and digests), with moto."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INPUT
from audit.importers.run import IMPORT_REPORT_FILE
from tests.conftest import FIXTURES, KEYS

CT = FIXTURES / "sources" / "cloudtrail"
SAMPLES = FIXTURES / "sources"
TRAIL = "trail/AWSLogs/111122223333/CloudTrail/us-east-1/2021/12/06/"
DIGESTS = "trail/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2021/12/06/"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def _bucket(signature_in_metadata: bool = False) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="org-trail")
    for path in sorted((CT / "logs").iterdir()):
        s3.upload_file(str(path), "org-trail", TRAIL + path.name)
    for path in sorted((CT / "digests").glob("*.json.gz")):
        sidecar = path.with_name(path.name + ".signature").read_text().strip()
        extra = {"Metadata": {"signature": sidecar, "signature-algorithm": "SHA256withRSA"}}
        s3.upload_file(str(path), "org-trail", DIGESTS + path.name, ExtraArgs=extra if signature_in_metadata else None)
        if not signature_in_metadata:
            s3.upload_file(str(path) + ".signature", "org-trail", DIGESTS + path.name + ".signature")
    s3.put_object(Bucket="org-trail", Key="trail/README.txt", Body=b"not a trail object")


def _cli(spec: str, out: Path, *extra: str) -> int:
    return main(
        [
            "import",
            "cloudtrail",
            spec,
            "--directory",
            str(SAMPLES / "directory.csv"),
            "--catalog",
            str(SAMPLES / "catalog.yaml"),
            "--key",
            str(KEYS / "log-producer.key"),
            "--out",
            str(out),
            *extra,
        ]
    )


@pytest.mark.usefixtures("aws_env", "fixture_passphrase")
@pytest.mark.parametrize("signature_in_metadata", [True, False], ids=["as-cloudtrail-delivers", "sidecar-objects"])
def test_import_cloudtrail_from_s3_validates_digests_and_matches_a_local_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], signature_in_metadata: bool
) -> None:
    local = [str(p) for p in sorted((CT / "logs").iterdir())]
    assert (
        main(
            [
                "import",
                "cloudtrail",
                *local,
                "--directory",
                str(SAMPLES / "directory.csv"),
                "--catalog",
                str(SAMPLES / "catalog.yaml"),
                "--key",
                str(KEYS / "log-producer.key"),
                "--out",
                str(tmp_path / "local"),
            ]
        )
        == EXIT_CLEAN
    )
    with mock_aws():
        _bucket(signature_in_metadata)
        assert _cli("s3://org-trail/trail", tmp_path / "s3", "--public-keys", str(CT / "public-keys.json")) == 0
    assert "digest file(s)" in capsys.readouterr().out
    remote = json.loads((tmp_path / "s3" / IMPORT_REPORT_FILE).read_bytes())
    here = json.loads((tmp_path / "local" / IMPORT_REPORT_FILE).read_bytes())
    assert remote["files"] == here["files"] and remote["events"] == here["events"] > 0
    assert remote["cloudtrail_digests"] is not None


@pytest.mark.usefixtures("aws_env", "fixture_passphrase")
def test_s3_prefix_without_cloudtrail_logs_is_an_input_error(tmp_path: Path) -> None:
    with mock_aws():
        _bucket()
        assert _cli("s3://org-trail/elsewhere", tmp_path / "log") == EXIT_INPUT
    assert not (tmp_path / "log").exists()
