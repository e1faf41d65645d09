"""``residency-audit log ...``: seal and verify tamper-evident logs."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer

from audit.cli.console import OutputFormat, log, out, signing_key
from audit.errors import EXIT_CLEAN, EXIT_INTEGRITY, InputError
from audit.logs.verify import VerificationReport, verify_log
from audit.logs.writer import seal
from audit.pipeline import ACCESS_RECORD_TYPE, sealable_records
from audit.replay.approvals import APPROVAL_RECORD_TYPE
from audit.signing.keys import load_keyring

log_app = typer.Typer(help="Seal and verify tamper-evident access logs.", no_args_is_help=True)


class RecordType(StrEnum):
    """What a sealed log holds."""

    access_event = ACCESS_RECORD_TYPE
    approval = APPROVAL_RECORD_TYPE


@log_app.command("seal")
def log_seal(
    events: Annotated[Path, typer.Argument(help="JSON Lines file of records to seal.")],
    key_path: Annotated[Path, typer.Option("--key", help="Producer's private signing key.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Log directory to create (must not exist).")],
    segment_size: Annotated[int, typer.Option(min=1, help="Records per segment.")] = 10000,
    record_type: Annotated[RecordType, typer.Option(help="What the records are.")] = RecordType.access_event,
    origin: Annotated[str | None, typer.Option(help="Log origin name (default: the directory name).")] = None,
) -> int:
    """Seal a JSON Lines file into a segmented, signed Merkle log."""
    key = signing_key(key_path)
    result = seal(
        sealable_records(events, record_type.value), out=out_dir, key=key, origin=origin or out_dir.name,
        record_type=record_type.value, segment_size=segment_size,
    )
    log.info("log.sealed", out=str(out_dir), tree_size=result.tree_size, segments=result.segments)
    out.print(f"sealed {result.tree_size} records in {result.segments} segment(s) into {out_dir}; root {result.root}",
              markup=False)
    return EXIT_CLEAN


def _print_verification(logdir: Path, report: VerificationReport, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        doc = {
            "log": str(logdir), "ok": report.ok, "tree_size": report.tree_size, "root": report.root,
            "segments": report.segments, "origin": report.origin, "record_type": report.record_type,
            "problems": [
                {"code": p.code, "segment": p.segment, "line": p.line, "message": p.message} for p in report.problems
            ],
        }
        out.print(orjson.dumps(doc).decode(), markup=False)
        return
    if report.ok:
        out.print(f"OK {logdir}: {report.tree_size} records in {report.segments} segment(s), root {report.root}",
                  markup=False)
        return
    for p in report.problems:
        where = p.segment or str(logdir)
        if p.line is not None:
            where += f":{p.line}"
        out.print(f"FAIL {where}: {p.code}: {p.message}", markup=False)
    out.print(f"{len(report.problems)} problem(s) in {logdir}", markup=False)


@log_app.command("verify")
def log_verify(
    logdir: Annotated[Path, typer.Argument(help="Sealed log directory.")],
    keyring_path: Annotated[Path, typer.Option("--keyring", help="Trusted public keys.")],
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.text,
) -> int:
    """Verify a sealed log: hashes, Merkle roots, checkpoint chain and signatures."""
    if not logdir.is_dir():
        raise InputError("no such log directory", path=logdir)
    report = verify_log(logdir, load_keyring(keyring_path))
    _print_verification(logdir, report, fmt)
    return EXIT_CLEAN if report.ok else EXIT_INTEGRITY
