"""``residency-audit keyring ...``: add, revoke and list trusted public keys.

The keyring (``{"keys": [...]}``) is not signed: keep it where only trusted
people can change it. Revoking a key means it is compromised — nothing it ever
signed verifies afterwards; to retire a key that is not compromised, add its
successor and let the old key's ``not_after`` end its window.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from audit.cli.console import err, out, purposes, show
from audit.cli.state import logger
from audit.enums import KeyPurpose
from audit.errors import EXIT_CLEAN, InputError
from audit.report.formats.choice import OutputFormat

keyring_app = typer.Typer(help="Manage the keyring of trusted public keys.", no_args_is_help=True)

RingArgument = Annotated[Path, typer.Argument(help="Keyring JSON file.")]


def _time(value: str | None, option: str) -> datetime | None:
    """Parse an RFC 3339 / ISO 8601 time; a time without a zone is UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option}: not an RFC 3339 time: {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@keyring_app.command("add")
def keyring_add(
    ring: RingArgument,
    public_key: Annotated[Path, typer.Argument(help="PEM public key file (e.g. KEY.pub from keygen).")],
    purpose: Annotated[
        list[KeyPurpose], typer.Option(help="What the key may sign: log, approvals, report (repeat for several).")
    ],
    label: Annotated[str | None, typer.Option(help="Who or what the key belongs to.")] = None,
    not_before: Annotated[str | None, typer.Option(help="Valid from (RFC 3339; UTC if no zone).")] = None,
    not_after: Annotated[str | None, typer.Option(help="Valid until (RFC 3339; UTC if no zone).")] = None,
) -> int:
    """Add a public key with its validity window and purposes (the keyring is created if missing)."""
    from audit.reading import read_text
    from audit.records import open_input
    from audit.report.formats.keyring import iso_utc
    from audit.signing.keys import Keyring, add_key, entry_for_public_key, load_keyring, write_keyring

    if not purpose:
        raise InputError("give --purpose log|approvals|report (repeatable): what this key may sign")
    pem_path = open_input(public_key)
    try:
        pem = read_text(pem_path, max_bytes=64 * 1024)  # a public key file is small; never a FIFO
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read public key: {exc}", path=pem_path) from None
    try:
        entry = entry_for_public_key(
            pem,
            label=label,
            not_before=_time(not_before, "--not-before"),
            not_after=_time(not_after, "--not-after"),
            purposes=purposes(purpose),
        )
    except InputError as exc:
        raise InputError(exc.reason, path=pem_path) from None
    current = load_keyring(ring) if ring.exists() else Keyring(keys=())
    write_keyring(ring, add_key(current, entry))
    logger().info("keyring.added", key_id=entry.key_id, keyring=str(ring))
    out.print(
        f"added key {entry.key_id} to {ring} (valid {iso_utc(entry.not_before)} .. {iso_utc(entry.not_after)})",
        markup=False,
    )
    return EXIT_CLEAN


@keyring_app.command("revoke")
def keyring_revoke(
    ring: RingArgument,
    key_id: Annotated[str, typer.Argument(help="Key id, or a unique prefix of at least 8 hex digits.")],
    at: Annotated[str | None, typer.Option(help="Revocation time (RFC 3339; default now).")] = None,
) -> int:
    """Revoke a key as compromised: nothing it signed (at any time) verifies afterwards."""
    from audit.report.formats.keyring import iso_utc
    from audit.signing.keys import load_keyring, resolve_key_id, revoke_key, write_keyring

    current = load_keyring(ring)
    full = resolve_key_id(current, key_id)
    when = _time(at, "--at") or datetime.now(UTC).replace(microsecond=0)
    updated = revoke_key(current, full, when)
    write_keyring(ring, updated)
    entry = updated.get(full)
    assert entry is not None
    logger().warning("keyring.revoked", key_id=full, keyring=str(ring))
    out.print(
        f"revoked key {full} in {ring} at {iso_utc(entry.revoked_at)}; checkpoints and reports it signed "
        f"no longer verify",
        markup=False,
    )
    return EXIT_CLEAN


@keyring_app.command("migrate")
def keyring_migrate(
    ring: RingArgument,
    purpose: Annotated[
        list[str],
        typer.Option(help="KEY_ID=PURPOSE[,PURPOSE...]: what that key may sign (repeatable; id prefix of 8+)."),
    ] = [],  # noqa: B006 - typer reads the default; it is never mutated
) -> int:
    """Write out every key's purposes: a key that named none gets all of them (as it was trusted), loudly.

    Older keyrings trusted a key without ``purposes`` for everything; this makes
    that visible and lets you narrow it (``--purpose ID=log``).
    """
    from audit.signing.keys import migrate_keyring, write_keyring

    assign = _assignments(ring, purpose)
    updated, migrated = migrate_keyring(ring, assign)
    write_keyring(ring, updated)
    for key_id in migrated:
        entry = updated.get(key_id)
        assert entry is not None
        widened = key_id not in assign
        err.print(
            (
                f"WARNING: key {key_id} ({entry.label or 'no label'}) was trusted for every purpose; it now says so: "
                f"{', '.join(entry.purposes)}. Narrow it: keyring migrate {ring} --purpose {key_id[:16]}=log"
            )
            if widened
            else f"key {key_id} now may sign: {', '.join(entry.purposes)}",
            markup=False,
        )
    out.print(f"{ring}: {len(migrated)} key(s) migrated, {len(updated.keys) - len(migrated)} unchanged", markup=False)
    return EXIT_CLEAN


def _assignments(ring: Path, values: list[str]) -> dict[str, tuple[KeyPurpose, ...]]:
    """``KEY_ID=log,report`` options as full key ids (prefixes resolved against the raw keyring)."""
    from audit.signing.keys import keyring_key_ids

    assign: dict[str, tuple[KeyPurpose, ...]] = {}
    ids = keyring_key_ids(ring)
    for value in values:
        prefix, sep, names = value.partition("=")
        if not sep or not names:
            raise InputError(f"--purpose {value!r}: expected KEY_ID=PURPOSE[,PURPOSE...]")
        matches = [key_id for key_id in ids if key_id.startswith(prefix.lower())] if len(prefix) >= 8 else []
        if len(matches) != 1:
            raise InputError(f"--purpose {value!r}: {prefix!r} names {len(matches)} keys of {ring} (give 8+ digits)")
        try:
            assign[matches[0]] = tuple(dict.fromkeys(KeyPurpose(n.strip()) for n in names.split(",")))
        except ValueError:
            raise InputError(f"--purpose {value!r}: purposes are log, approvals, report") from None
    return assign


@keyring_app.command("list")
def keyring_list(
    ring: RingArgument,
    at: Annotated[str | None, typer.Option(help="Show each key's status at this time (default now).")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.text,
) -> int:
    """List the keys, their validity windows and their status."""
    from audit.report.formats.keyring import KeyringDocument
    from audit.signing.keys import load_keyring

    keyring = load_keyring(ring)
    when = _time(at, "--at") or datetime.now(UTC)
    show(fmt.to_format().render(KeyringDocument(ring, keyring, when)))
    return EXIT_CLEAN
