"""``residency-audit log ...``: seal, append, verify tamper-evident logs; prove and check proofs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from audit.cli.console import err, out, show, signing_key
from audit.cli.state import logger
from audit.enums import RecordType
from audit.errors import EXIT_CLEAN, EXIT_INTEGRITY, InputError
from audit.fsio import atomic_write
from audit.report.formats.choice import OutputFormat

if TYPE_CHECKING:  # each command imports the log machinery it uses when it runs, not at start-up
    from audit.logs.verify import Problem

log_app = typer.Typer(help="Seal, append, verify and prove tamper-evident access logs.", no_args_is_help=True)
prove_app = typer.Typer(help="Write RFC 9162 inclusion and consistency proofs as JSON files.", no_args_is_help=True)
log_app.add_typer(prove_app, name="prove")

KeyringOption = Annotated[Path, typer.Option("--keyring", help="Trusted public keys.")]
FormatOption = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]


@log_app.command("seal")
def log_seal(
    events: Annotated[Path, typer.Argument(help="JSON Lines file of records to seal.")],
    key_path: Annotated[Path, typer.Option("--key", help="Producer's private signing key.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Log directory to create (must not exist).")],
    segment_size: Annotated[int, typer.Option(min=1, help="Records per segment.")] = 10000,
    record_type: Annotated[RecordType, typer.Option(help="What the records are.")] = RecordType.access_event,
    origin: Annotated[str | None, typer.Option(help="Log origin name (default: the directory name).")] = None,
    keyring_path: Annotated[
        Path | None, typer.Option("--keyring", help="Refuse to seal unless the key is valid in this keyring now.")
    ] = None,
) -> int:
    """Seal a JSON Lines file into a segmented, signed Merkle log."""
    from audit.logs.record_types import sealable_records
    from audit.logs.writer import seal
    from audit.signing.keys import load_keyring

    key = signing_key(key_path)
    keyring = load_keyring(keyring_path) if keyring_path is not None else None
    result = seal(
        sealable_records(events, record_type.value),
        out=out_dir,
        key=key,
        origin=origin or out_dir.name,
        record_type=record_type.value,
        segment_size=segment_size,
        keyring=keyring,
        source=events,
        keep_index=True,
    )
    logger().info("log.sealed", out=str(out_dir), tree_size=result.tree_size, segments=result.segments)
    out.print(
        f"sealed {result.tree_size} records in {result.segments} segment(s) into {out_dir}; root {result.root}",
        markup=False,
    )
    return EXIT_CLEAN


@log_app.command("append")
def log_append(
    logdir: Annotated[Path, typer.Argument(help="Sealed log directory to extend.")],
    events: Annotated[Path, typer.Argument(help="JSON Lines file of records to append.")],
    key_path: Annotated[Path, typer.Option("--key", help="Producer's private signing key.")],
    keyring_path: Annotated[Path, typer.Option("--keyring", help="Trusted public keys (verifies the log first).")],
    segment_size: Annotated[int, typer.Option(min=1, help="Records per new segment.")] = 10000,
) -> int:
    """Verify a log, then append records as new signed segments; rerun the same command to resume a crash."""
    from audit.logs.append import append, prepare_append
    from audit.logs.record_types import sealable_records
    from audit.records import open_input, sha256_file
    from audit.signing.keys import load_keyring

    keyring = load_keyring(keyring_path)
    key = signing_key(key_path)
    plan = prepare_append(
        logdir, keyring, source_name=str(events), source_sha256=sha256_file(open_input(events)), keep_index=True
    )

    def records() -> Iterator[bytes]:
        return sealable_records(events, plan.record_type)

    result = append(plan, records, key=key, keyring=keyring, segment_size=segment_size)
    logger().info("log.appended", log=str(logdir), tree_size=result.tree_size, added=result.records_added)
    if result.unchanged:
        out.print(
            f"nothing added: {logdir} already ends with the records of {events} (appended before); "
            f"size {result.tree_size}, root {result.root}",
            markup=False,
        )
        return EXIT_CLEAN
    resumed = f" (resumed: {result.skipped} record(s) were already sealed)" if result.resumed else ""
    out.print(
        f"appended {result.records_added} records in {result.segments_added} segment(s) to {logdir}{resumed}; "
        f"size {result.tree_size}, root {result.root}",
        markup=False,
    )
    return EXIT_CLEAN


@log_app.command("verify")
def log_verify(
    logdir: Annotated[str, typer.Argument(help="Sealed log directory, or s3://bucket/prefix.")],
    keyring_path: KeyringOption,
    trusted_checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="A checkpoint file of this log kept from earlier: detects truncation, rollback, equivocation."
        ),
    ] = None,
    expect_size: Annotated[
        int | None, typer.Option(min=1, help="The log is known to hold at least this many records.")
    ] = None,
    require_complete: Annotated[
        bool, typer.Option("--require-complete", help="Exit 3 unless completeness is proven by a pin.")
    ] = False,
    fmt: FormatOption = OutputFormat.text,
) -> int:
    """Verify a sealed log: hashes, Merkle roots, checkpoint chain, signatures and, with a pin, completeness.

    Without --trusted-checkpoint or --expect-size the log can be verified but not
    proven complete (its tail could have been deleted with its checkpoints): the
    output says so, and the exit code is 0 unless --require-complete.
    """
    from audit.logs.index import INDEX_FILE, RowsDigest, index_disagreement
    from audit.logs.trusted import load_checkpoint
    from audit.logs.verify import Completeness, LogVerifier
    from audit.report.formats.logs import LogVerificationDocument
    from audit.signing.keys import load_keyring
    from audit.sources.s3 import local_log_dir

    keyring = load_keyring(keyring_path)
    pin = load_checkpoint(trusted_checkpoint, keyring) if trusted_checkpoint is not None else None
    with local_log_dir(logdir) as local:
        if not local.is_dir():
            raise InputError("no such log directory", path=logdir)
        verifier = LogVerifier(local, keyring, trusted_checkpoint=pin, expected_size=expect_size)
        rows = RowsDigest() if (local / INDEX_FILE).is_file() else None  # a kept index is checked in the same pass
        for segment in verifier.segments():
            if rows is not None:
                rows.feed(segment)
        report = verifier.report()
        stale = index_disagreement(local, report, rows) if report.ok and rows is not None else None
    show(fmt.to_format().render(LogVerificationDocument(logdir, report)))
    if not report.ok:
        return EXIT_INTEGRITY
    if stale is not None:  # derived data: said, never trusted, rebuilt by the next append
        err.print(f"WARNING: {logdir}/{INDEX_FILE}: {stale}; the next log append rebuilds it", markup=False)
    if require_complete and report.completeness is not Completeness.proven:
        return EXIT_INTEGRITY
    return EXIT_CLEAN


def _write_proof(path: Path, data: bytes, what: str) -> None:
    atomic_write(path, data)
    out.print(f"{what} written to {path}", markup=False)


@prove_app.command("inclusion")
def prove_inclusion_cmd(
    logdir: Annotated[Path, typer.Argument(help="Sealed log directory.")],
    event_id: Annotated[str, typer.Option("--event", help="event_id (or approval_id) of the record.")],
    keyring_path: KeyringOption,
    out_path: Annotated[Path, typer.Option("--out", help="Proof file to write (JSON).")],
    checkpoint: Annotated[
        int | None, typer.Option(min=0, help="Index of the checkpoint to prove against (default: the last).")
    ] = None,
) -> int:
    """Prove one record is in the tree a checkpoint signs (RFC 9162 audit path)."""
    from audit.logs.checkpoint import CHECKPOINTS_DIR
    from audit.logs.proofs import proof_bytes, prove_inclusion
    from audit.signing.keys import load_keyring

    proof = prove_inclusion(logdir, load_keyring(keyring_path), event_id=event_id, checkpoint_index=checkpoint)
    _write_proof(
        out_path,
        proof_bytes(proof),
        f"inclusion proof of {event_id} (leaf {proof.leaf_index}, {proof.segment}:{proof.line}) against "
        f"{CHECKPOINTS_DIR}/{proof.checkpoint.index:08d}.json (size {proof.checkpoint.tree_size})",
    )
    return EXIT_CLEAN


@prove_app.command("consistency")
def prove_consistency_cmd(
    old: Annotated[Path, typer.Argument(help="The older checkpoint file.")],
    new: Annotated[Path, typer.Argument(help="The newer checkpoint file.")],
    keyring_path: KeyringOption,
    out_path: Annotated[Path, typer.Option("--out", help="Proof file to write (JSON).")],
    logdir: Annotated[
        Path | None, typer.Option("--log", help="The log holding the leaves (default: the directory NEW is in).")
    ] = None,
) -> int:
    """Prove the OLD checkpoint's tree is a prefix of the NEW one's (RFC 9162 consistency proof)."""
    from audit.logs.checkpoint import CHECKPOINTS_DIR
    from audit.logs.proofs import proof_bytes, prove_consistency
    from audit.logs.trusted import load_checkpoint
    from audit.signing.keys import load_keyring

    keyring = load_keyring(keyring_path)
    old_cp, new_cp = load_checkpoint(old, keyring), load_checkpoint(new, keyring)
    if logdir is None:
        if new.resolve().parent.name != CHECKPOINTS_DIR:
            raise InputError("cannot tell which log NEW belongs to: pass --log LOGDIR", path=new)
        logdir = new.resolve().parent.parent
    proof = prove_consistency(logdir, keyring, old_cp, new_cp)
    _write_proof(
        out_path,
        proof_bytes(proof),
        f"consistency proof from size {proof.old.tree_size} to {proof.new.tree_size} ({len(proof.proof)} hash(es))",
    )
    return EXIT_CLEAN


def _print_check(subject: str, problems: list[Problem], fmt: OutputFormat, details: dict[str, Any]) -> int:
    from audit.report.formats.logs import ProofCheckDocument

    show(fmt.to_format().render(ProofCheckDocument(subject, problems, details)))
    return EXIT_INTEGRITY if problems else EXIT_CLEAN


@log_app.command("verify-inclusion")
def verify_inclusion_cmd(
    proof_path: Annotated[Path, typer.Argument(help="Inclusion proof file (from `log prove inclusion`).")],
    checkpoint: Annotated[Path, typer.Option(help="The checkpoint file the proof is against.")],
    keyring_path: KeyringOption,
    fmt: FormatOption = OutputFormat.text,
) -> int:
    """Check an inclusion proof with only the checkpoint file and the keyring (no log needed)."""
    from audit.logs.proofs import check_inclusion, load_inclusion_proof
    from audit.logs.trusted import load_checkpoint
    from audit.signing.keys import load_keyring

    signed = load_checkpoint(checkpoint, load_keyring(keyring_path))
    proof = load_inclusion_proof(proof_path)
    problems = check_inclusion(proof, signed)
    subject = (
        f"{proof.event_id} is leaf {proof.leaf_index} of {signed.describe()}, root {signed.root}"
        if not problems
        else str(proof_path)
    )
    return _print_check(
        subject,
        problems,
        fmt,
        {
            "event_id": proof.event_id,
            "leaf_index": proof.leaf_index,
            "tree_size": signed.tree_size,
            "root": signed.root,
            "origin": signed.body.origin,
        },
    )


@log_app.command("verify-consistency")
def verify_consistency_cmd(
    proof_path: Annotated[Path, typer.Argument(help="Consistency proof file (from `log prove consistency`).")],
    old: Annotated[Path, typer.Option(help="The older checkpoint file.")],
    new: Annotated[Path, typer.Option(help="The newer checkpoint file.")],
    keyring_path: KeyringOption,
    fmt: FormatOption = OutputFormat.text,
) -> int:
    """Check a consistency proof with only the two checkpoint files and the keyring (no log needed)."""
    from audit.logs.proofs import check_consistency, load_consistency_proof
    from audit.logs.trusted import load_checkpoint
    from audit.signing.keys import load_keyring

    keyring = load_keyring(keyring_path)
    old_cp, new_cp = load_checkpoint(old, keyring), load_checkpoint(new, keyring)
    problems = check_consistency(load_consistency_proof(proof_path), old_cp, new_cp)
    subject = f"{old_cp.describe()} is a prefix of {new_cp.describe()}" if not problems else str(proof_path)
    return _print_check(
        subject,
        problems,
        fmt,
        {
            "origin": new_cp.body.origin,
            "old_size": old_cp.tree_size,
            "new_size": new_cp.tree_size,
        },
    )
