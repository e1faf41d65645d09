"""Residency scan of OCI with the real ``oci`` SDK against a local recorded-response server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from audit.cli.app import main
from audit.errors import EXIT_INPUT, EXIT_INTEGRITY, EXIT_VIOLATIONS
from tests.conftest import FIXTURES, POLICIES

RESIDENCY = FIXTURES / "residency"
RECORDED: list[dict[str, Any]] = json.loads((RESIDENCY / "oci-recorded.json").read_text())
EXPECTED = json.loads((RESIDENCY / "expected-findings.json").read_text())
TENANCY = "ocid1.tenancy.oc1..aaaaresidencyaudit"
USER = "ocid1.user.oc1..auditor"
FINGERPRINT = ":".join(["3f"] * 16)


@dataclass
class Recorded:
    """What the server replays and what it saw."""

    deny: bool = False
    requests: list[tuple[str, str]] = field(default_factory=list)
    signatures: list[str] = field(default_factory=list)


def _handler(state: Recorded) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _json(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("opc-request-id", "test-request")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            region, _, path = url.path.lstrip("/").partition("/")
            path = "/" + path
            compartment = parse_qs(url.query).get("compartmentId", [None])[0]
            state.requests.append((region, path))
            auth = self.headers.get("authorization", "")
            state.signatures.append(auth)
            if state.deny or f'keyId="{TENANCY}/{USER}/{FINGERPRINT}"' not in auth:
                self._json(
                    401,
                    {
                        "code": "NotAuthenticated",
                        "message": "The required information to complete "
                        "authentication was not provided or was incorrect.",
                    },
                )
                return
            for entry in RECORDED:
                if (entry["region"], entry["path"], entry.get("compartmentId")) == (region, path, compartment):
                    self._json(200, entry["body"])
                    return
            self._json(404, {"code": "NotAuthorizedOrNotFound", "message": f"no recorded response for {path}"})

        def log_message(self, *args: object) -> None:
            return

    return Handler


@pytest.fixture
def oci_server() -> Iterator[tuple[str, Recorded]]:
    state = Recorded()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/{{region}}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def oci_config(tmp_path: Path) -> Path:
    """An SDK config with a throwaway RSA key (generated for this test only)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "oci_api_key.pem"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_file.chmod(0o600)
    config = tmp_path / "config"
    config.write_text(
        f"[DEFAULT]\nuser={USER}\nfingerprint={FINGERPRINT}\ntenancy={TENANCY}\n"
        f"region=us-ashburn-1\nkey_file={key_file}\n"
    )
    return config


def _scan(config: Path, endpoint: str, *extra: str) -> list[str]:
    return [
        "residency",
        "scan",
        "--provider",
        "oci",
        "--oci-config",
        str(config),
        "--oci-endpoint",
        endpoint,
        "--as-of",
        "2022-06-30",
        "--policy",
        str(POLICIES),
        *extra,
    ]


def test_oci_scan_through_the_sdk_finds_singapore_copies(
    oci_server: tuple[str, Recorded], oci_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint, state = oci_server
    rc = main(_scan(oci_config, endpoint, "--format", "json"))
    document = json.loads(capsys.readouterr().out)
    assert rc == EXIT_VIOLATIONS
    names = {s["resource"]: s["name"] for s in document["stores"]}
    labels = sorted(
        (
            {"rule_id": f["rule_id"], "commitment": f["commitment"], "store": names[f["resource"]]}
            for f in document["findings"]
        ),
        key=lambda d: (d["commitment"], d["rule_id"], d["store"]),
    )
    assert labels == sorted(EXPECTED["oci-recorded"], key=lambda d: (d["commitment"], d["rule_id"], d["store"]))
    # subscribed READY regions only; the deleted compartment and the terminated backup are skipped
    assert document["scopes"] == [
        {"provider": "oci", "account": TENANCY, "regions": ["ap-singapore-1", "us-ashburn-1"], "source": "oci api"}
    ]
    assert not any(region == "eu-frankfurt-1" for region, _ in state.requests)
    assert "us-user-db-0" not in names.values()
    copy = next(s for s in document["stores"] if s["name"] == "us-user-db-1-copy")
    assert copy["copy_of"] == "ocid1.volumebackup.oc1.iad.ususerdb1"
    boot = next(s for s in document["stores"] if s["name"] == "web-1-boot")
    assert boot["classification"]["subject_regions"] == []  # from a defined tag
    assert all(sig.startswith("Signature ") and 'algorithm="rsa-sha256"' in sig for sig in state.signatures)


def test_oci_regions_option_limits_the_scan(
    oci_server: tuple[str, Recorded], oci_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint, state = oci_server
    rc = main(_scan(oci_config, endpoint, "--regions", "us-ashburn-1", "--format", "json"))
    document = json.loads(capsys.readouterr().out)
    # the replication target in Singapore is not listed, but the copy is still judged from the source
    assert rc == EXIT_VIOLATIONS
    assert {(f["rule_id"], f["region"]) for f in document["findings"]} == {
        ("copy-outside-us", "ap-singapore-1"),
        ("singapore-after-deadline", "ap-singapore-1"),
    }
    assert {region for region, _ in state.requests} == {"us-ashburn-1"}


def test_oci_authentication_failure_is_exit_3_naming_region(
    oci_server: tuple[str, Recorded], oci_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint, state = oci_server
    state.deny = True
    rc = main(_scan(oci_config, endpoint, "--regions", "ap-singapore-1"))
    captured = capsys.readouterr()
    assert rc == EXIT_INTEGRITY
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: oci us-ashburn-1: ListCompartments failed: HTTP 401 NotAuthenticated")


def test_oci_unreachable_endpoint_is_exit_3(oci_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_port
    server.server_close()  # nothing listens on this port any more
    rc = main(
        _scan(oci_config, f"http://127.0.0.1:{port}/{{region}}", "--regions", "us-ashburn-1", "--oci-attempts", "1")
    )
    err = capsys.readouterr().err.strip()
    assert rc == EXIT_INTEGRITY
    assert err.startswith("error: oci us-ashburn-1: ListCompartments failed:") and len(err.splitlines()) == 1


def test_oci_missing_config_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(_scan(tmp_path / "absent", "http://127.0.0.1:9/{region}"))
    assert rc == EXIT_INPUT
    assert "OCI configuration" in capsys.readouterr().err
