"""The document of ``keyring list``: each key's validity window, purposes and status at a time.

Keyring logic (status, revocation) lives in :mod:`audit.signing.keys`; this only
lays the entries out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from audit.report.formats.interface import JsonDocument, Lines
from audit.signing.keys import Keyring


def iso_utc(value: datetime | None) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``, or ``-`` for no time."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else "-"


@dataclass(frozen=True)
class KeyringDocument(JsonDocument):
    """The keys of one keyring and their status at ``at``."""

    indent_json = False
    path: Path
    keyring: Keyring
    at: datetime

    def rows(self) -> list[dict[str, Any]]:
        """One row per key, in keyring order."""
        return [
            {
                "key_id": e.key_id,
                "label": e.label,
                "not_before": e.not_before and iso_utc(e.not_before),
                "not_after": e.not_after and iso_utc(e.not_after),
                "revoked_at": e.revoked_at and iso_utc(e.revoked_at),
                "purposes": ",".join(e.purposes),
                "status": e.status(self.at).value,
            }
            for e in self.keyring.keys
        ]

    def lines(self) -> Lines:
        rows = self.rows()
        lines: Lines = [f"{len(rows)} key(s) in {self.path}; status at {iso_utc(self.at)}"]
        for row in rows:
            revoked = f" revoked {row['revoked_at']}" if row["revoked_at"] else ""
            lines.append(
                f"{row['key_id']} {row['status']:<13} valid {row['not_before'] or '-'} .. "
                f"{row['not_after'] or '-'}{revoked} for {row['purposes']}  {row['label'] or ''}".rstrip()
            )
        return lines

    def to_json(self) -> dict[str, Any]:
        return {"keyring": str(self.path), "at": iso_utc(self.at), "keys": self.rows()}
