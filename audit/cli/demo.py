"""``residency-audit demo``: the whole pipeline on the bundled seed-scenario data.

Seals the demo's events and approvals, verifies the log, replays it, writes the
signed report and verifies it against the log, policy and approvals. Then scans
residency as of June 2022, folds the findings into the report, re-signs and
re-verifies it. Refuses to write into a non-empty directory it did not create.

Two sources of data:

* by default, the data files shipped as package data (:func:`audit.resources.demo_data`)
  with three throwaway keys made for this run (only their public keyring is written,
  to ``OUT/keyring.json``) and the residency scan of the June 2022 inventory file;
* with ``--fixtures DIR`` (a repository checkout: ``make demo``), DIR's data files, its
  TEST-ONLY keys (passphrase from ``DIR/passphrase.py``) and, when moto is installed,
  its AWS estate seeded into moto's in-process mock by ``DIR/estate.py``.

The fixture passphrase and the moto seeding are test scaffolding, so they are not
part of the ``audit`` package; they are loaded by path from ``DIR``.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import ModuleType

from audit.errors import InputError, IntegrityError
from audit.logs.record_types import ACCESS_RECORD_TYPE, APPROVAL_RECORD_TYPE, sealable_records
from audit.logs.verify import verify_log
from audit.logs.writer import seal
from audit.pipeline import ReplayOutcome, integrity_failure, replay, store_rule_ids
from audit.policy import load_policy
from audit.report.publish import REPORT_FILE
from audit.report.verify import verify_report
from audit.residency.models import ScanResult
from audit.residency.providers.aws import AwsProvider
from audit.residency.providers.inventory import InventoryProvider
from audit.residency.report import add_residency_to_report
from audit.residency.scanner import scan, settings_from_policy, summarize
from audit.resources import DEMO_FILES, demo_data
from audit.signing.keys import (
    KeyPurpose,
    Keyring,
    SigningKey,
    entry_for_public_key,
    generate_signing_key,
    load_keyring,
    load_private_key,
    public_key_pem,
    write_keyring,
)

MARKER = ".residency-audit-demo"
KEYRING_FILE = "keyring.json"
"""The demo writes the public keyring that verifies its log and report here (in OUT)."""
DEMO_AS_OF = date(2022, 6, 30)
"""The residency stage judges stores as of the senators' letter (30 June 2022)."""

__all__ = ["run_demo"]


@dataclass(frozen=True)
class DemoKeys:
    """The three signers of a demo run and the keyring that trusts them."""

    keyring: Keyring
    producer: SigningKey
    approvals_producer: SigningKey
    auditor: SigningKey


def _fixture_module(fixtures: Path, name: str) -> ModuleType:
    """``FIXTURES/<name>.py``, the demo's scaffolding kept out of the package, loaded by path."""
    path = fixtures / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_residency_audit_fixture_{name}", path)
    if not path.is_file() or spec is None or spec.loader is None:
        raise InputError("fixture module not found (check --fixtures)", path=path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic models resolve their annotations through it
    spec.loader.exec_module(module)
    return module


def _fixture_keys(fixtures: Path) -> DemoKeys:
    """The TEST-ONLY fixture keys, each loaded (and its PBKDF2 run) once per demo."""
    keys = fixtures / "keys"
    passphrase: bytes = _fixture_module(fixtures, "passphrase").FIXTURE_PASSPHRASE
    return DemoKeys(
        keyring=load_keyring(keys / "keyring.json"),
        producer=load_private_key(keys / "log-producer.key", passphrase),
        approvals_producer=load_private_key(keys / "approvals-producer.key", passphrase),
        auditor=load_private_key(keys / "auditor.key", passphrase),
    )


def _throwaway_keys() -> DemoKeys:
    """Three fresh keys that live only in this process: nothing secret ships with the package."""
    signers = {purpose: generate_signing_key() for purpose in KeyPurpose}
    entries = tuple(
        entry_for_public_key(public_key_pem(key.public), label=f"demo {purpose.value} (throwaway)", purposes=(purpose,))
        for purpose, key in signers.items()
    )
    return DemoKeys(
        Keyring(keys=entries), signers[KeyPurpose.log], signers[KeyPurpose.approvals], signers[KeyPurpose.report]
    )


def _prepare(out_dir: Path) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise InputError("demo output path exists and is not a directory", path=out_dir)
        if any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
            raise InputError("refusing to reuse a non-empty directory not made by the demo", path=out_dir)
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    (out_dir / MARKER).write_text("created by residency-audit demo; safe to delete\n")


def _data_dir(fixtures: Path | None) -> Path:
    data = fixtures if fixtures is not None else demo_data()
    if data is None:
        raise InputError("the demo's data files are missing from this installation: pass --fixtures DIR")
    for name in DEMO_FILES:
        if not (data / name).is_file():
            raise InputError(f"demo data file {name} not found (check --fixtures)", path=data / name)
    return data


def run_demo(out_dir: Path, fixtures: Path | None, policy: Path, *, say: Callable[[str], None]) -> ReplayOutcome:
    """Run every stage; raise on any failure (the pipeline must work end to end)."""
    data = _data_dir(fixtures)
    with_keys = fixtures is not None and (fixtures / "keys" / "keyring.json").is_file()
    keys = _fixture_keys(fixtures) if fixtures is not None and with_keys else _throwaway_keys()
    keyring = keys.keyring
    _prepare(out_dir)
    write_keyring(out_dir / KEYRING_FILE, keyring)
    log_dir, approvals_dir, report_dir = out_dir / "log", out_dir / "approvals-log", out_dir / "report"

    sealed = seal(
        sealable_records(data / "events.jsonl", ACCESS_RECORD_TYPE),
        out=log_dir,
        key=keys.producer,
        origin="demo-access-log",
        record_type=ACCESS_RECORD_TYPE,
        segment_size=500,
    )
    say(f"1/5 sealed {sealed.tree_size} access events into {sealed.segments} segments ({log_dir})")
    approvals = seal(
        sealable_records(data / "approvals.jsonl", APPROVAL_RECORD_TYPE),
        out=approvals_dir,
        key=keys.approvals_producer,
        origin="demo-approvals",
        record_type=APPROVAL_RECORD_TYPE,
        segment_size=500,
    )
    say(f"2/5 sealed {approvals.tree_size} approvals ({approvals_dir})")
    report = verify_log(log_dir, keyring, record_type=ACCESS_RECORD_TYPE)
    if not report.ok:
        raise integrity_failure("demo access log", log_dir, report)
    say(f"3/5 verified the access log: root {report.root}")
    outcome = replay(log_dir, keyring, approvals_dir, policy, keys.auditor, report_dir)
    say(f"4/5 replayed {outcome.statement.predicate.summary.events} events; signed report in {report_dir}")
    key_id = _verify(report_dir, keyring, log_dir, policy, approvals_dir)
    say(f"5/5 verified the signed report (key {key_id}) against log, policy and approvals")
    residency = _residency_scan(data, fixtures, policy, say)
    statement = add_residency_to_report(
        report_dir, keyring, keys.auditor, residency, store_rules=store_rule_ids(load_policy(policy))
    )
    summary = summarize(residency)
    say(
        f"residency 1/2: scan as of {DEMO_AS_OF.isoformat()}: {summary.stores} stores, {summary.violations} "
        f"violation(s), {summary.unknown} unknown; folded into the signed report"
    )
    key_id = _verify(report_dir, keyring, log_dir, policy, approvals_dir)
    say(f"residency 2/2: verified the re-signed report with its residency section (key {key_id})")
    return ReplayOutcome(statement, report_dir)


def _verify(report_dir: Path, keyring: Keyring, log_dir: Path, policy: Path, approvals_dir: Path) -> str:
    check = verify_report(report_dir / REPORT_FILE, keyring, log=log_dir, policy=policy, approvals=approvals_dir)
    if not check.ok:
        failed = next(c for c in check.checks if not c.ok)
        raise IntegrityError(f"demo report did not verify: {failed.name}: {failed.detail}", path=report_dir)
    return str(check.key_id)


def _residency_scan(data: Path, fixtures: Path | None, policy: Path, say: Callable[[str], None]) -> ScanResult:
    """The June 2022 inventory, plus (with --fixtures and moto installed) the AWS estate seeded into moto."""
    settings = settings_from_policy(load_policy(policy), as_of=DEMO_AS_OF)
    inventory = InventoryProvider(paths=(data / "residency" / "inventory-2022-06.yaml",))
    estate_file = fixtures / "residency" / "aws-estate-2022-06.yaml" if fixtures is not None else None
    if fixtures is None or estate_file is None or not (fixtures / "estate.py").is_file() or not estate_file.is_file():
        say("    residency scan of the inventory file only (the AWS estate needs --fixtures from a checkout)")
        return scan([inventory], settings)
    if importlib.util.find_spec("moto") is None:
        say("    moto is not installed: residency scan of the inventory file only")
        return scan([inventory], settings)
    seeding = _fixture_module(fixtures, "estate")
    estate = seeding.load_estate(estate_file)
    regions: tuple[str, ...] = estate.regions()
    with seeding.moto_estate(estate):
        return scan([AwsProvider(regions=regions), inventory], settings)
