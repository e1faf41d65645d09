"""Where the shipped data lives: the default policy pack and the demo's data files.

A built wheel carries them as package data under ``audit/_data/`` (``setup.py`` copies
``policies/``, ``packs/`` (further packs such as ``eu-personal-data``, passed with
``--policy``) and the demo's data files from ``fixtures/`` there at build time); a
source checkout (editable install, the tests) reads them from the repository itself.
Holds no key, no passphrase and no code that creates cloud resources: the demo makes
throwaway keys, and the fixture keys and moto estate stay in ``fixtures/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from audit.errors import InputError

_PACKAGE = Path(__file__).resolve().parent
_DATA = _PACKAGE / "_data"
_CHECKOUT = _PACKAGE.parent

DEMO_FILES = ("events.jsonl", "approvals.jsonl", "residency/inventory-2022-06.yaml")
"""The demo's data files, relative to its data directory (``fixtures/`` in a checkout)."""


def shipped_pack() -> Path | None:
    """The policy pack shipped with residency-audit, or None if this installation lacks it."""
    for candidate in (_DATA / "policies", _CHECKOUT / "policies"):
        if (candidate / "pack.yaml").is_file():
            return candidate
    return None


def shipped_packs() -> dict[str, Path]:
    """Every pack shipped with residency-audit, by the ``name`` in its ``pack.yaml``.

    The default pack (``policies/``) and each directory of ``packs/``.
    """
    found: dict[str, Path] = {}
    for root in (_DATA, _CHECKOUT):
        candidates = [root / "policies", *sorted((root / "packs").glob("*/"))] if root.is_dir() else []
        for candidate in candidates:
            config = candidate / "pack.yaml"
            if config.is_file() and not config.is_symlink():
                match = _PACK_NAME.search(config.read_text(encoding="utf-8", errors="replace")[:4096])
                if match is not None:
                    found.setdefault(match.group(1), candidate)
        if found:
            break
    return found


_PACK_NAME = re.compile(r"(?m)^name: ([A-Za-z0-9][A-Za-z0-9._-]{0,79})\s*$")


def demo_data() -> Path | None:
    """The directory holding :data:`DEMO_FILES`, or None if this installation lacks it."""
    for candidate in (_DATA / "demo", _CHECKOUT / "fixtures"):
        if all((candidate / name).is_file() for name in DEMO_FILES):
            return candidate
    return None


def policy_dir(given: Path | None, *, option: str = "--policy") -> Path:
    """``given``, or the shipped pack; an InputError naming ``option`` when neither is a directory."""
    if given is not None:
        if not given.is_dir():
            raise InputError(f"no such policy pack directory (check {option})", path=given)
        return given
    shipped = shipped_pack()
    if shipped is None:
        raise InputError(f"the shipped policy pack is missing from this installation: pass {option} DIR")
    return shipped
