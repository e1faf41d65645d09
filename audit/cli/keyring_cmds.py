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

import orjson
import typer

from audit.cli.console import OutputFormat, log, out, purposes
from audit.errors import EXIT_CLEAN, InputError
from audit.records import open_input
from audit.signing.keys import (
    KeyPurpose,
    Keyring,
    add_key,
    entry_for_public_key,
    load_keyring,
    resolve_key_id,
    revoke_key,
    write_keyring,
)

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


def _iso(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else "-"


@keyring_app.command("add")
def keyring_add(
    ring: RingArgument,
    public_key: Annotated[Path, typer.Argument(help="PEM public key file (e.g. KEY.pub from keygen).")],
    label: Annotated[str | None, typer.Option(help="Who or what the key belongs to.")] = None,
    not_before: Annotated[str | None, typer.Option(help="Valid from (RFC 3339; UTC if no zone).")] = None,
    not_after: Annotated[str | None, typer.Option(help="Valid until (RFC 3339; UTC if no zone).")] = None,
    purpose: Annotated[
        list[KeyPurpose], typer.Option(help="What the key may sign: log, approvals, report (repeat for several).")
    ] = [],  # noqa: B006 - typer reads the default; it is never mutated
) -> int:
    """Add a public key with its validity window and purposes (the keyring is created if missing)."""
    if not purpose:
        raise InputError("give --purpose log|approvals|report (repeatable): what this key may sign")
    pem_path = open_input(public_key)
    try:
        pem = pem_path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read public key: {exc}", path=pem_path) from None
    try:
        entry = entry_for_public_key(pem, label=label, not_before=_time(not_before, "--not-before"),
                                     not_after=_time(not_after, "--not-after"), purposes=purposes(purpose))
    except InputError as exc:
        raise InputError(exc.reason, path=pem_path) from None
    current = load_keyring(ring) if ring.exists() else Keyring(keys=())
    write_keyring(ring, add_key(current, entry))
    log.info("keyring.added", key_id=entry.key_id, keyring=str(ring))
    out.print(f"added key {entry.key_id} to {ring} (valid {_iso(entry.not_before)} .. {_iso(entry.not_after)})",
              markup=False)
    return EXIT_CLEAN


@keyring_app.command("revoke")
def keyring_revoke(
    ring: RingArgument,
    key_id: Annotated[str, typer.Argument(help="Key id, or a unique prefix of at least 8 hex digits.")],
    at: Annotated[str | None, typer.Option(help="Revocation time (RFC 3339; default now).")] = None,
) -> int:
    """Revoke a key as compromised: nothing it signed (at any time) verifies afterwards."""
    current = load_keyring(ring)
    full = resolve_key_id(current, key_id)
    when = _time(at, "--at") or datetime.now(UTC).replace(microsecond=0)
    updated = revoke_key(current, full, when)
    write_keyring(ring, updated)
    entry = updated.get(full)
    assert entry is not None
    log.warning("keyring.revoked", key_id=full, keyring=str(ring))
    out.print(f"revoked key {full} in {ring} at {_iso(entry.revoked_at)}; checkpoints and reports it signed "
              f"no longer verify", markup=False)
    return EXIT_CLEAN


@keyring_app.command("list")
def keyring_list(
    ring: RingArgument,
    at: Annotated[str | None, typer.Option(help="Show each key's status at this time (default now).")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.text,
) -> int:
    """List the keys, their validity windows and their status."""
    keyring = load_keyring(ring)
    when = _time(at, "--at") or datetime.now(UTC)
    rows = [
        {"key_id": e.key_id, "label": e.label, "not_before": e.not_before and _iso(e.not_before),
         "not_after": e.not_after and _iso(e.not_after), "revoked_at": e.revoked_at and _iso(e.revoked_at),
         "purposes": ",".join(e.purposes), "status": e.status(when).value}
        for e in keyring.keys
    ]
    if fmt is OutputFormat.json:
        out.print(orjson.dumps({"keyring": str(ring), "at": _iso(when), "keys": rows}).decode(), markup=False)
        return EXIT_CLEAN
    out.print(f"{len(rows)} key(s) in {ring}; status at {_iso(when)}", markup=False)
    for row in rows:
        revoked = f" revoked {row['revoked_at']}" if row["revoked_at"] else ""
        out.print(f"{row['key_id']} {row['status']:<13} valid {row['not_before'] or '-'} .. {row['not_after'] or '-'}"
                  f"{revoked} for {row['purposes']}  {row['label'] or ''}".rstrip(), markup=False)
    return EXIT_CLEAN
