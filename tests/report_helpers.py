"""A signed report of the fixture log, made once per test module that asks for one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from audit.pipeline import ReplayOutcome, replay
from audit.signing.keys import load_keyring, load_private_key
from fixtures.passphrase import FIXTURE_PASSPHRASE
from tests.conftest import ACCESS_LOG, APPROVALS_LOG, KEYS, POLICIES

NOW = datetime(2022, 6, 30, tzinfo=UTC)


def fixture_report(out: Path, *, now: datetime = NOW) -> ReplayOutcome:
    """Replay the sealed fixture log with the repository's policy into ``out``."""
    keyring = load_keyring(KEYS / "keyring.json")
    key = load_private_key(KEYS / "auditor.key", FIXTURE_PASSPHRASE)
    return replay(ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, key, out, now=now)
