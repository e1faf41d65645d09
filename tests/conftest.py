"""Shared paths and fixture keys for the test-suite."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from audit.signing.keys import PASSPHRASE_ENV, Keyring, SigningKey, load_keyring, load_private_key
from fixtures.passphrase import FIXTURE_PASSPHRASE

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
POLICIES = REPO / "policies"
KEYS = FIXTURES / "keys"
ACCESS_LOG = FIXTURES / "logs" / "access"
APPROVALS_LOG = FIXTURES / "logs" / "approvals"


@pytest.fixture
def keyring() -> Keyring:
    return load_keyring(KEYS / "keyring.json")


@pytest.fixture(scope="session")
def auditor_key() -> SigningKey:
    return load_private_key(KEYS / "auditor.key", FIXTURE_PASSPHRASE)


@pytest.fixture
def fixture_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the CLI find the fixture keys' passphrase in the environment."""
    monkeypatch.setenv(PASSPHRASE_ENV, FIXTURE_PASSPHRASE.decode())


@pytest.fixture
def access_log_copy(tmp_path: Path) -> Path:
    """A private copy of the sealed fixture access log, safe to tamper with."""
    dest = tmp_path / "access"
    shutil.copytree(ACCESS_LOG, dest)
    return dest


def flip_byte(path: Path, offset: int) -> None:
    """Change one byte of a file in place."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


# Tests that take seconds each (a cloud SDK against a local server, a dask cluster, a whole-domain
# enumeration, the demo): `make test-fast` skips them with `-m "not slow"`; `make test` runs all.
SLOW_MODULES = frozenset(
    {
        "test_residency_aws.py",
        "test_residency_oci.py",
        "test_residency_report.py",
        "test_parallel.py",
        "test_benchmark.py",
        "test_policy_prove.py",
        "test_sarif.py",
        "test_policy_diff.py",
        "test_fixtures.py",
        "test_eu_pack.py",
    }
)
SLOW_TESTS = frozenset(
    {
        "test_shadowed_unreachable_and_undeclared_values",
        "test_shipped_pack_lints_clean",
        "test_canonical_bytes_equal_rfc8785_for_any_json_value",
        "test_demo_runs_end_to_end",
        "test_cached_decisions_equal_uncached_over_the_access_domain",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SLOW_MODULES or item.name.split("[")[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
