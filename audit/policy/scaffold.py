"""``policy init``: scaffold a pack directory from a template.

Templates: ``basic`` (a generic single-jurisdiction pack under ``templates/basic``,
its ``$name`` placeholders filled with the pack name, home countries and dates) and
every pack shipped with residency-audit (copied as they are, renamed). The scaffold
passes ``policy lint``, ``policy test`` and ``policy prove`` as generated; the values
marked EDIT are the ones a company replaces with its own. Writes only into a new or
empty directory, each file atomically; never overwrites.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from string import Template

from audit.errors import InputError
from audit.fsio import atomic_write
from audit.resources import shipped_packs

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
BASIC = "basic"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_MAX_FILES = 64
_MAX_BYTES = 1 << 20


def template_names() -> tuple[str, ...]:
    """``basic`` and the names of the shipped packs."""
    return (BASIC, *sorted(shipped_packs()))


def _files(root: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file() or "__pycache__" in path.parts or path.name.startswith("."):
            continue
        data = path.read_bytes()
        if len(files) >= _MAX_FILES or len(data) > _MAX_BYTES:
            raise InputError("template is larger than a pack can be", path=root)
        files[path.relative_to(root).as_posix()] = data
    return files


def render(
    template: str,
    *,
    name: str,
    home_countries: Sequence[str] = (),
    home_name: str | None = None,
    effective_from: date,
) -> dict[str, bytes]:
    """The files of a scaffolded pack, by relative path (nothing is written)."""
    if not _NAME.fullmatch(name):
        raise InputError(f"pack name {name!r}: letters, digits, '.', '_' and '-' only (at most 80)")
    if template == BASIC:
        codes = [c.strip().upper() for c in home_countries]
        if not codes or any(len(c) != 2 or not c.isascii() or not c.isalpha() for c in codes):
            raise InputError("template basic needs --home-country CC (ISO 3166 alpha-2), once per home country")
        values = {
            "name": name,
            "effective_from": effective_from.isoformat(),
            "countries": "[" + ", ".join(dict.fromkeys(codes)) + "]",
            "home_name": _yaml_text(home_name or "the home jurisdiction"),
        }
        return {rel: _fill(data, values) for rel, data in _files(TEMPLATES_DIR / BASIC).items()}
    packs = shipped_packs()
    if template not in packs:
        raise InputError(f"no template {template!r} (templates: {', '.join(template_names())})")
    files = _files(packs[template])
    files["pack.yaml"] = re.sub(rb"(?m)^name: .*$", b"name: " + name.encode(), files["pack.yaml"], count=1)
    return files


def _yaml_text(text: str) -> str:
    if not text.strip() or len(text) > 80 or any(ord(ch) < 32 for ch in text):
        raise InputError("--home-name must be 1 to 80 printable characters")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fill(data: bytes, values: Mapping[str, str]) -> bytes:
    return Template(data.decode("utf-8")).safe_substitute(values).encode("utf-8")


def init_pack(directory: Path, files: Mapping[str, bytes]) -> list[Path]:
    """Write ``files`` under ``directory`` (created; must be new or empty); the paths written."""
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise InputError("not a directory", path=directory)
    if directory.is_dir() and any(directory.iterdir()):
        raise InputError("directory is not empty: policy init never overwrites a pack", path=directory)
    written = []
    for rel, data in sorted(files.items()):
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data, exclusive=True)
        written.append(path)
    return written
