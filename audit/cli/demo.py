"""``residency-audit demo``: the whole pipeline on the bundled seed-scenario fixtures.

Seals the fixture events and approvals with the fixture (TEST-ONLY) keys, verifies
the log, replays it, writes the signed report and verifies it against the log,
policy and approvals. Then scans residency as of June 2022 (the fixture inventory,
plus the fixture AWS estate seeded into moto's in-process mock when moto is
installed), folds the findings into the report, re-signs and re-verifies it.
Refuses to write into a non-empty directory it did not create.

The fixture keys' passphrase and the moto estate seeding are test scaffolding, so
they are not part of the ``audit`` package: the demo loads ``passphrase.py`` and
``estate.py`` by path from its ``--fixtures`` directory (as ``generate.py`` loads
its sibling scripts), which is why it runs from the repository root.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from types import ModuleType

from audit.errors import InputError, IntegrityError
from audit.logs.record_types import ACCESS_RECORD_TYPE, APPROVAL_RECORD_TYPE, sealable_records
from audit.logs.verify import verify_log
from audit.logs.writer import seal
from audit.pipeline import ReplayOutcome, integrity_failure, replay
from audit.policy import load_policy
from audit.report.publish import REPORT_FILE
from audit.report.verify import verify_report
from audit.residency.models import ScanResult
from audit.residency.providers.aws import AwsProvider
from audit.residency.providers.inventory import InventoryProvider
from audit.residency.report import add_residency_to_report
from audit.residency.scanner import scan, settings_from_policy, summarize
from audit.signing.keys import load_keyring, load_private_key

MARKER = ".residency-audit-demo"
DEMO_AS_OF = date(2022, 6, 30)
"""The residency stage judges stores as of the senators' letter (30 June 2022)."""

__all__ = ["run_demo"]


def _fixture_module(fixtures: Path, name: str) -> ModuleType:
    """``FIXTURES/<name>.py``, the demo's scaffolding kept out of the package, loaded by path."""
    path = fixtures / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_residency_audit_fixture_{name}", path)
    if not path.is_file() or spec is None or spec.loader is None:
        raise InputError("fixture module not found (run from the repository root or pass --fixtures)", path=path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic models resolve their annotations through it
    spec.loader.exec_module(module)
    return module


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
    passphrase: bytes = _fixture_module(fixtures, "passphrase").FIXTURE_PASSPHRASE
    producer = load_private_key(keys / "log-producer.key", passphrase)
    approvals_producer = load_private_key(keys / "approvals-producer.key", passphrase)
    auditor = load_private_key(keys / "auditor.key", passphrase)
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
    residency = _residency_scan(fixtures, policy, say)
    statement = add_residency_to_report(report_dir, keyring, auditor, residency)
    summary = summarize(residency)
    say(f"residency 1/2: scan as of {DEMO_AS_OF.isoformat()}: {summary.stores} stores, {summary.violations} "
        f"violation(s), {summary.unknown} unknown; folded into the signed report")
    check = verify_report(report_dir / REPORT_FILE, keyring, log=log_dir, policy=policy, approvals=approvals_dir)
    if not check.ok:
        failed = next(c for c in check.checks if not c.ok)
        raise IntegrityError(f"demo report did not verify: {failed.name}: {failed.detail}", path=report_dir)
    say(f"residency 2/2: verified the re-signed report with its residency section (key {check.key_id})")
    return ReplayOutcome(statement, report_dir)


def _residency_scan(fixtures: Path, policy: Path, say: Callable[[str], None]) -> ScanResult:
    """The June 2022 inventory, plus the AWS estate seeded into in-process moto when moto is installed."""
    folder = fixtures / "residency"
    settings = settings_from_policy(load_policy(policy), as_of=DEMO_AS_OF)
    inventory = InventoryProvider(paths=(folder / "inventory-2022-06.yaml",))
    if importlib.util.find_spec("moto") is None:
        say("    moto is not installed: residency scan of the inventory file only")
        return scan([inventory], settings)
    seeding = _fixture_module(fixtures, "estate")
    estate = seeding.load_estate(folder / "aws-estate-2022-06.yaml")
    regions: tuple[str, ...] = estate.regions()
    with seeding.moto_estate(estate):
        return scan([AwsProvider(regions=regions), inventory], settings)
