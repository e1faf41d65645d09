"""Build broken copies of the shipped policy pack in a temporary directory (shared by the policy CI tests)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import POLICIES

FOREIGN_PRECISE_LOCATION = "p, 215, access, foreign_staff, precise_location, read, valid, allow, C1, -"
"""Grants foreign staff precise location with a valid approval: breaks C2 (priority 215 beats the C2 deny at 220)."""


def copy_pack(tmp_path: Path, name: str = "pack") -> Path:
    """A private copy of ``policies/``."""
    dest = tmp_path / name
    shutil.copytree(POLICIES, dest)
    return dest


def line_of(path: Path, needle: str) -> int:
    """1-based number of the first line containing ``needle``."""
    return next(n for n, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


def insert_before(path: Path, needle: str, row: str) -> int:
    """Insert ``row`` above the first line containing ``needle``; return the new row's line."""
    lines = path.read_text().splitlines()
    number = line_of(path, needle)
    lines.insert(number - 1, row)
    path.write_text("\n".join(lines) + "\n")
    return number


def append(path: Path, row: str) -> int:
    """Append ``row``; return its line."""
    lines = path.read_text().splitlines()
    lines.append(row)
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def replace(path: Path, old: str, new: str) -> int:
    """Replace ``old`` on the first line containing it; return that line."""
    lines = path.read_text().splitlines()
    number = line_of(path, old)
    lines[number - 1] = lines[number - 1].replace(old, new)
    path.write_text("\n".join(lines) + "\n")
    return number


def grant_foreign_precise_location(pack: Path) -> int:
    """Add :data:`FOREIGN_PRECISE_LOCATION` under the access block; return its line."""
    return insert_before(pack / "policy.csv", "p, 220, access", FOREIGN_PRECISE_LOCATION)
