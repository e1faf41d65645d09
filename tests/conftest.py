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


@pytest.fixture
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
