"""``residency-audit demo``: the whole pipeline on the bundled seed-scenario fixtures.

Seals the fixture events and approvals with the fixture (TEST-ONLY) keys, verifies
the log, replays it, writes the signed report and verifies it against the log,
policy and approvals. Refuses to write into a non-empty directory it did not create.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from audit.errors import InputError, IntegrityError
from audit.logs.verify import verify_log
from audit.logs.writer import seal
from audit.pipeline import (
    ACCESS_RECORD_TYPE,
    REPORT_FILE,
    ReplayOutcome,
    integrity_failure,
    replay,
    sealable_records,
    verify_report,
)
from audit.replay.approvals import APPROVAL_RECORD_TYPE
from audit.signing.keys import load_keyring, load_private_key

#: Passphrase of the fixture keys in fixtures/keys/. Public on purpose: those keys
#: are labelled TEST-ONLY and must never sign anything real.
FIXTURE_PASSPHRASE = b"residency-audit-fixtures-TEST-ONLY"
MARKER = ".residency-audit-demo"

__all__ = ["FIXTURE_PASSPHRASE", "run_demo"]


def _prepare(out_dir: Path) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise InputError("demo output path exists and is not a directory", path=out_dir)
        if any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
            raise InputError("refusing to reuse a non-empty directory not made by the demo", path=out_dir)
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    (out_dir / MARKER).write_text("created by residency-audit demo; safe to delete\n")


def run_demo(out_dir: Path, fixtures: Path, policy: Path, *, say: Callable[[str], None]) -> ReplayOutcome:
    """Run every stage; raise on any failure (the pipeline must work end to end)."""
    keys = fixtures / "keys"
    if not keys.is_dir():
        raise InputError("fixture keys not found (run from the repository root or pass --fixtures)", path=keys)
    keyring = load_keyring(keys / "keyring.json")
    producer = load_private_key(keys / "log-producer.key", FIXTURE_PASSPHRASE)
    approvals_producer = load_private_key(keys / "approvals-producer.key", FIXTURE_PASSPHRASE)
    auditor = load_private_key(keys / "auditor.key", FIXTURE_PASSPHRASE)
    _prepare(out_dir)
    log_dir, approvals_dir, report_dir = out_dir / "log", out_dir / "approvals-log", out_dir / "report"

    sealed = seal(
        sealable_records(fixtures / "events.jsonl", ACCESS_RECORD_TYPE), out=log_dir, key=producer,
        origin="demo-access-log", record_type=ACCESS_RECORD_TYPE, segment_size=500,
    )
    say(f"1/5 sealed {sealed.tree_size} access events into {sealed.segments} segments ({log_dir})")
    approvals = seal(
        sealable_records(fixtures / "approvals.jsonl", APPROVAL_RECORD_TYPE), out=approvals_dir, key=approvals_producer,
        origin="demo-approvals", record_type=APPROVAL_RECORD_TYPE, segment_size=500,
    )
    say(f"2/5 sealed {approvals.tree_size} approvals ({approvals_dir})")
    report = verify_log(log_dir, keyring, record_type=ACCESS_RECORD_TYPE)
    if not report.ok:
        raise integrity_failure("demo access log", log_dir, report)
    say(f"3/5 verified the access log: root {report.root}")
    outcome = replay(log_dir, keyring, approvals_dir, policy, auditor, report_dir)
    say(f"4/5 replayed {outcome.statement.predicate.summary.events} events; signed report in {report_dir}")
    check = verify_report(
        report_dir / REPORT_FILE, keyring, log=log_dir, policy=policy, approvals=approvals_dir
    )
    if not check.ok:
        failed = next(c for c in check.checks if not c.ok)
        raise IntegrityError(f"demo report did not verify: {failed.name}: {failed.detail}", path=report_dir)
    say(f"5/5 verified the signed report (key {check.key_id}) against log, policy and approvals")
    return outcome
