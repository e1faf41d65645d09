"""The ``residency-audit`` command line (typer + rich).

This is the only layer that prints, catches :class:`~audit.errors.AuditError` and
sets exit codes: 0 clean, 1 violations found, 2 usage or input error, 3 integrity
failure, 4 internal error (a bug). Every error is one line on stderr, never a
traceback unless ``--debug`` asks for one.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer._click.exceptions import NoArgsIsHelpError

from audit.cli.console import err, finish_stdout, out, progress, purposes, signing_key
from audit.cli.conventions import build_command
from audit.cli.explain_cmd import explain_cmd
from audit.cli.hook_cmds import policy_hook
from audit.cli.import_cmds import import_app
from audit.cli.keyring_cmds import keyring_app
from audit.cli.log_cmds import log_app
from audit.cli.policy_cmds import policy_app
from audit.cli.report_cmds import report_app
from audit.cli.residency_cmds import residency_app
from audit.cli.schemas import schema_command
from audit.cli.state import STATE, apply_global, logger
from audit.cli.timestamp_cmds import timestamp_commands
from audit.enums import KeyPurpose
from audit.errors import (
    EXIT_CLEAN,
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_VIOLATIONS,
    AuditError,
    InputError,
    InternalError,
)
from audit.fsio import atomic_write
from audit.reading import DEFAULT_MAX_ERRORS
from audit.replay.options import CompletenessPin, Engine, Execution
from audit.resources import policy_dir

if TYPE_CHECKING:
    from audit.models import Finding

# Start-up imports only what building the commands needs: typer, rich's console, the
# option enums and defaults (audit.enums, audit.replay.options, ...). Each command
# imports the machinery it runs (pydantic models, cryptography, pycasbin, cloud SDKs)
# in its body; tests/test_startup.py keeps it that way.

app = typer.Typer(
    name="residency-audit",
    help="Check access to user data against public commitments: seal logs, replay, sign reports.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
# Command groups live in their own modules; register each here, one line apiece.
app.add_typer(log_app, name="log")
app.add_typer(report_app, name="report")
app.add_typer(keyring_app, name="keyring")
app.add_typer(residency_app, name="residency")
app.add_typer(policy_app, name="policy")
policy_app.command("hook")(policy_hook)
app.command("schema")(schema_command)
app.add_typer(import_app, name="import")
app.command("explain")(explain_cmd)
report_app.registered_commands += timestamp_commands.registered_commands  # report timestamp, check-timestamp


class LogFormat(StrEnum):
    console = "console"
    json = "json"


def _version(value: bool) -> None:
    if value:
        out.print(f"residency-audit {_installed_version()}", markup=False)
        raise typer.Exit(EXIT_CLEAN)


def _installed_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("residency-audit")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


@app.callback(epilog="Run `residency-audit COMMAND --help` for a command's options and examples.")
def _root(
    log_format: Annotated[LogFormat, typer.Option(help="Format of diagnostic logs on stderr.")] = LogFormat.console,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors; no warnings, no progress bars.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also info messages on stderr.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Print the traceback of an internal error.")] = False,
    max_errors: Annotated[
        int, typer.Option(min=1, help="List at most this many problems of an invalid record.")
    ] = DEFAULT_MAX_ERRORS,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Residency audit toolkit."""
    STATE.quiet, STATE.verbose, STATE.debug = quiet, verbose, debug
    STATE.log_json, STATE.max_errors = log_format is LogFormat.json, max_errors
    apply_global("", None)


# ---------------------------------------------------------------------------- keygen


@app.command()
def keygen(
    out_path: Annotated[Path | None, typer.Option("--out", help="Where to write the private key (PKCS#8 PEM).")] = None,
    reencrypt: Annotated[
        Path | None,
        typer.Option(help="Instead: re-encrypt this existing key in place with the current key derivation."),
    ] = None,
    keyring_path: Annotated[
        Path | None, typer.Option("--keyring", help="Add the public key to this keyring (created if missing).")
    ] = None,
    label: Annotated[str | None, typer.Option(help="Label for the keyring entry.")] = None,
    not_before: Annotated[datetime | None, typer.Option(help="Keyring entry valid from (UTC).")] = None,
    not_after: Annotated[datetime | None, typer.Option(help="Keyring entry valid until (UTC).")] = None,
    unencrypted: Annotated[
        bool, typer.Option("--unencrypted", help="Write the key unencrypted with mode 0600 (not recommended).")
    ] = False,
    purpose: Annotated[
        list[KeyPurpose], typer.Option(help="With --keyring: what the key may sign (log, approvals, report).")
    ] = [],  # noqa: B006 - typer reads the default; it is never mutated
) -> int:
    """Generate an Ed25519 signing key, encrypted with $RESIDENCY_AUDIT_KEY_PASSPHRASE (or re-encrypt one)."""
    from audit.signing.keys import (
        Keyring,
        add_key,
        entry_for_public_key,
        generate_signing_key,
        load_keyring,
        public_key_pem,
        write_keyring,
        write_private_key,
    )

    if reencrypt is not None:
        return _reencrypt(reencrypt, other_options=out_path is not None or keyring_path is not None or unencrypted)
    if out_path is None:
        raise InputError("keygen needs --out KEY (or --reencrypt KEY)")
    passphrase = _keygen_passphrase(out_path, keyring_path, purpose, unencrypted=unencrypted)
    key = generate_signing_key()
    write_private_key(out_path, key, passphrase)
    if unencrypted:
        err.print(f"WARNING: {out_path} holds an UNENCRYPTED private key (mode 0600). Protect it.", markup=False)
    pub_path = out_path.with_name(out_path.name + ".pub")
    atomic_write(pub_path, public_key_pem(key.public).encode())
    if keyring_path is not None:
        ring = load_keyring(keyring_path) if keyring_path.exists() else Keyring(keys=())
        entry = entry_for_public_key(
            public_key_pem(key.public),
            label=label,
            not_before=_utc(not_before),
            not_after=_utc(not_after),
            purposes=purposes(purpose),
        )
        write_keyring(keyring_path, add_key(ring, entry))
    logger().info("keygen.done", key_id=key.key_id, encrypted=not unencrypted)
    out.print(f"key {key.key_id} written to {out_path} (public key {pub_path})", markup=False)
    return EXIT_CLEAN


def _keygen_passphrase(
    out_path: Path, keyring_path: Path | None, purpose: list[KeyPurpose], *, unencrypted: bool
) -> bytes | None:
    """Check keygen's options together; the passphrase to encrypt with (None: --unencrypted)."""
    from audit.signing.keys import PASSPHRASE_ENV, passphrase_from_env

    if purpose and keyring_path is None:
        raise InputError("--purpose says what a keyring entry may sign: it needs --keyring RING")
    if keyring_path is not None and not purpose:
        raise InputError("--keyring needs --purpose log|approvals|report (repeatable): what this key may sign")
    passphrase = passphrase_from_env()
    if passphrase is None and not unencrypted:
        raise InputError(f"set {PASSPHRASE_ENV} to encrypt the key, or pass --unencrypted", path=out_path)
    if passphrase is not None and unencrypted:
        raise InputError(f"--unencrypted given but {PASSPHRASE_ENV} is set; choose one", path=out_path)
    return passphrase


def _reencrypt(path: Path, *, other_options: bool) -> int:
    from audit.signing.keys import PASSPHRASE_ENV, passphrase_from_env, reencrypt_private_key
    from audit.signing.pkcs8 import KDF_ITERATIONS

    if other_options:
        raise InputError("--reencrypt takes no other option: it rewrites KEY in place with the same passphrase")
    passphrase = passphrase_from_env()
    if passphrase is None:
        raise InputError(f"set {PASSPHRASE_ENV} to the key's passphrase to re-encrypt it", path=path)
    key = reencrypt_private_key(path, passphrase)
    out.print(
        f"key {key.key_id} in {path} re-encrypted (PKCS#8, PBKDF2-HMAC-SHA256, {KDF_ITERATIONS:,} iterations)",
        markup=False,
    )
    return EXIT_CLEAN


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ---------------------------------------------------------------------------- replay


@app.command("replay")
def replay_cmd(
    logdir: Annotated[str, typer.Argument(help="Sealed access log directory, or s3://bucket/prefix.")],
    keyring_path: Annotated[Path, typer.Option("--keyring", help="Trusted public keys (log and approvals).")],
    approvals: Annotated[Path, typer.Option(help="Approvals: a JSON Lines file, or a sealed approvals log directory.")],
    report_key: Annotated[Path, typer.Option("--report-key", help="Auditor's private key to sign the report.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the signed report and its files.")],
    policy: Annotated[
        Path | None,
        typer.Option(help="Policy pack directory, or directory of dated versions (default: the shipped pack)."),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Judge segments on this many processes.")] = 1,
    engine: Annotated[Engine, typer.Option(help="local processes, or a dask.distributed cluster.")] = Engine.local,
    scheduler: Annotated[
        str | None, typer.Option(help="dask scheduler address (default: start a local cluster).")
    ] = None,
    trusted_checkpoint: Annotated[
        Path | None, typer.Option(help="A checkpoint of this log kept from earlier: proves completeness.")
    ] = None,
    expect_size: Annotated[int | None, typer.Option(min=1, help="The log holds at least this many events.")] = None,
    require_complete: Annotated[
        bool, typer.Option("--require-complete", help="Exit 3 unless a pin proves the log complete.")
    ] = False,
    require_signed_approvals: Annotated[
        bool, typer.Option("--require-signed-approvals", help="Exit 2 unless approvals are a sealed, signed log.")
    ] = False,
    waivers: Annotated[
        Path | None, typer.Option(help="Waivers YAML (accepted risk): matching findings are marked waived.")
    ] = None,
) -> int:
    """Verify the log, replay every event against the policy then in force, sign a report.

    Exit 1 when a finding is not waived; expired waivers are reported and no longer apply.
    """
    from audit.logs.trusted import load_checkpoint
    from audit.pipeline import replay
    from audit.signing.keys import load_keyring
    from audit.sources.s3 import local_log_dir

    keyring = load_keyring(keyring_path)
    key = signing_key(report_key)
    execution = Execution(workers=workers, engine=engine, scheduler=scheduler)
    checkpoint = load_checkpoint(trusted_checkpoint, keyring) if trusted_checkpoint is not None else None
    pin = CompletenessPin(checkpoint, expected_size=expect_size, require_complete=require_complete)
    with local_log_dir(logdir) as local_logdir, progress("replaying events", None) as bar:
        outcome = replay(
            local_logdir,
            keyring,
            approvals,
            policy_dir(policy),
            key,
            out_dir,
            pin=pin,
            execution=execution,
            on_segment=lambda n: bar.advance(bar.task_ids[0], n),
            require_signed_approvals=require_signed_approvals,
            waivers=waivers,
        )
    summary = outcome.statement.predicate.summary
    for waiver in outcome.statement.predicate.waivers:
        if waiver.expired:
            err.print(
                f"WARNING: waiver {waiver.id} expired on {waiver.expires.isoformat()}: it no longer applies",
                markup=False,
            )
    approvals_note = "signature-verified" if outcome.statement.predicate.approvals.signature_verified else "UNSIGNED"
    log_summary = outcome.statement.predicate.log
    if log_summary.completeness != "proven":
        err.print(
            f"WARNING: log completeness {log_summary.completeness.upper()}: {log_summary.completeness_detail}",
            markup=False,
        )
    logger().info("replay.done", events=summary.events, findings=summary.findings, out=str(out_dir))
    _print_summary(outcome.statement.predicate.commitments, summary.by_commitment, summary.by_rule)
    out.print(
        f"{summary.events} events replayed, {summary.findings} finding(s); approvals {approvals_note}; "
        f"report in {out_dir}",
        markup=False,
    )
    return EXIT_VIOLATIONS if summary.findings > (summary.waived or 0) else EXIT_CLEAN


def _print_summary(commitments: dict[str, str], by_commitment: dict[str, int], by_rule: dict[str, int]) -> None:
    from rich.table import Table

    table = Table(title="Findings per commitment")
    table.add_column("Commitment")
    table.add_column("Findings", justify="right")
    table.add_column("Commitment text")
    for cid, text in commitments.items():
        count = by_commitment.get(cid, 0)
        table.add_row(cid, str(count), text, style="bold red" if count else None)
    out.print(table)
    rules = Table(title="Findings per rule")
    rules.add_column("Rule")
    rules.add_column("Findings", justify="right")
    for rule, count in sorted(by_rule.items()):
        rules.add_row(rule, str(count))
    if by_rule:
        out.print(rules)


# ---------------------------------------------------------------------------- demo


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Demo output directory.")] = Path("build/demo"),
    fixtures: Annotated[
        Path | None,
        typer.Option(
            help="A checkout's fixtures/ directory: its TEST-ONLY keys and, with moto, its AWS estate "
            "(default: the bundled data and throwaway keys)."
        ),
    ] = None,
    policy: Annotated[Path | None, typer.Option(help="Policy pack directory (default: the shipped pack).")] = None,
) -> int:
    """Run the whole pipeline on the bundled seed-scenario data."""
    from rich.table import Table

    from audit.cli import demo as demo_mod

    pack = policy_dir(policy)
    result = demo_mod.run_demo(out_dir, fixtures, pack, say=lambda msg: out.print(msg, markup=False))
    pred = result.statement.predicate
    _print_summary(pred.commitments, pred.summary.by_commitment, pred.summary.by_rule)
    first: dict[str, Finding] = {}
    for finding in result.findings:  # verified with the report at the end of run_demo
        first.setdefault(finding.commitment, finding)
    examples = Table(title="First finding per commitment (all of them: report/report.md)")
    examples.add_column("C", no_wrap=True)
    examples.add_column("Rule, event and time", overflow="fold", ratio=2)
    examples.add_column("What happened", ratio=3)
    for cid in sorted(first, key=lambda c: int(c[1:])):
        f = first[cid]
        examples.add_row(cid, f"{f.rule_id}\n{f.event_ids[0]} {f.time.strftime('%Y-%m-%d')}", f.message)
    out.print(examples)
    if pred.residency is not None:
        res = pred.residency.summary
        rows = Table(title=f"Residency findings as of {pred.residency.as_of.isoformat()}")
        rows.add_column("C", no_wrap=True)
        for column in ("Rule", "Where"):
            rows.add_column(column, overflow="fold")
        rows.add_column("Resource", overflow="fold", ratio=1)
        for rf in pred.residency.findings:
            rows.add_row(rf.commitment, rf.rule_id, f"{rf.provider} {rf.region or '?'}", rf.resource)
        out.print(rows)
        out.print(f"residency: {res.stores} stores, {res.violations} violation(s), {res.unknown} unknown", markup=False)
    out.print(
        f"demo OK: {pred.summary.events} events, {pred.summary.findings} finding(s) across "
        f"{len(pred.summary.by_commitment)} commitment(s); signed report verified; see {out_dir / 'report'}",
        markup=False,
    )
    return EXIT_CLEAN


# ---------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this directly)."""
    command = build_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        rv = command.main(args=args, prog_name="residency-audit", standalone_mode=False)
    except NoArgsIsHelpError:  # the help is printed already: no empty "error:"
        return finish_stdout(EXIT_INPUT)
    except typer.Exit as exc:
        return finish_stdout(int(exc.exit_code))
    except typer.TyperException as exc:  # usage errors: bad option, missing argument, ...
        err.print(f"error: {exc.format_message()}", markup=False)
        return EXIT_INPUT
    except typer.Abort:
        err.print("error: aborted", markup=False)
        return EXIT_INPUT
    except InternalError as exc:
        return finish_stdout(_internal_error(exc, str(exc)))
    except AuditError as exc:
        err.print(f"error: {exc.diagnostic()}", markup=False)
        return finish_stdout(exc.exit_code)
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:
        return finish_stdout(_internal_error(exc, f"{type(exc).__name__}: {exc}"))
    if rv == EXIT_INTERRUPTED:  # typer returns Ctrl-C as 130 without a word; no command returns 130 itself
        return _interrupted()
    return finish_stdout(rv if isinstance(rv, int) else EXIT_CLEAN)


def _interrupted() -> int:
    """Ctrl-C: one line, exit 130 (a report is published whole or not at all)."""
    err.print("error: interrupted; nothing was published", markup=False)
    return EXIT_INTERRUPTED


def _internal_error(exc: BaseException, what: str) -> int:
    """One line (a traceback first with ``--debug``) saying this is a bug to report: exit 4."""
    if STATE.debug:
        err.print("".join(traceback.format_exception(exc)), markup=False, end="")
    first = what.splitlines()[0] if what else type(exc).__name__
    hint = "" if STATE.debug else "; rerun with --debug for the traceback"
    err.print(f"internal error: {first} (a bug in residency-audit: please report it{hint})", markup=False)
    return EXIT_INTERNAL
