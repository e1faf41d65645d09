"""Reading policy pack files that may come from an untrusted pull request.

Every file of a pack (``model.conf``, ``policy.csv``, ``pack.yaml``,
``commitments.yaml``, ``invariants.yaml``, test cases) is read through this
module, which uses :mod:`audit.reading` (regular files only, no blocking, a size
cap) and adds two rules:

- a symlink is refused (``policy.csv -> /proc/self/environ`` would put the CI's
  secrets into the diagnostics) unless symlinks were allowed for the run
  (:func:`symlinks_allowed`, the CLI's ``--allow-symlinks``);
- even then, the file actually opened must lie inside the pack directory: its real
  path (read back from the open descriptor where the system offers it) is checked
  against the resolved pack directory.

Every refusal is a :class:`~audit.errors.PolicyError` naming the file. It does not
parse anything (:mod:`audit.policy.parse`, :mod:`audit.records`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import yaml

from audit.errors import InputError, PolicyError
from audit.reading import open_regular

__all__ = [
    "MAX_PACK_FILE_BYTES",
    "UnsafePackFile",
    "check_pack_file",
    "load_pack_yaml",
    "read_pack_text",
    "symlinks_allowed",
]

MAX_PACK_FILE_BYTES = 16 * 1024 * 1024
"""A pack file is at most this large (the shipped pack's files are a few kilobytes)."""

_ALLOW_SYMLINKS: ContextVar[bool] = ContextVar("allow_symlinks", default=False)
_HINT = "pass --allow-symlinks to follow symlinks that stay inside the pack directory"


class UnsafePackFile(PolicyError):
    """A pack file is a symlink (not allowed) or leads out of the pack directory: the run stops (exit 2)."""


@contextmanager
def symlinks_allowed(allowed: bool = True) -> Iterator[None]:
    """Within the block, pack files may be symlinks that resolve inside their pack directory."""
    token = _ALLOW_SYMLINKS.set(allowed)
    try:
        yield
    finally:
        _ALLOW_SYMLINKS.reset(token)


def _real_path(fd: int, path: Path) -> Path:
    link = Path(f"/proc/self/fd/{fd}")
    try:
        return Path(os.readlink(link))
    except OSError:  # no /proc: resolve the name (the file is open, so it exists)
        return path.resolve()


def _read(path: Path, root: Path | None, *, content: bool) -> bytes:
    allow = _ALLOW_SYMLINKS.get()
    try:
        fh = open_regular(path, follow_symlinks=allow, max_bytes=MAX_PACK_FILE_BYTES)
    except InputError as exc:
        if "symlink" in exc.reason:
            raise UnsafePackFile(exc.reason, path=path, hint=_HINT) from None
        raise PolicyError(exc.reason, path=path) from None
    with fh:
        top = (root if root is not None else path.parent).resolve()
        real = _real_path(fh.fileno(), path)
        if not real.is_relative_to(top):
            raise UnsafePackFile(f"resolves outside the pack directory {top}; refusing to read it", path=path)
        if not content:
            return b""
        try:
            data = fh.read(MAX_PACK_FILE_BYTES + 1)
        except OSError as exc:
            raise PolicyError(f"cannot read: {exc.strerror or exc}", path=path) from None
    if len(data) > MAX_PACK_FILE_BYTES:
        raise PolicyError(f"is more than the limit of {MAX_PACK_FILE_BYTES} bytes", path=path)
    return data


def check_pack_file(path: Path, root: Path | None = None) -> None:
    """Refuse ``path`` unless reading it would be allowed (for loaders that open the file themselves)."""
    _read(path, root, content=False)


def read_pack_text(path: Path, root: Path | None = None) -> str:
    """The UTF-8 text of a pack file under ``root`` (default: the file's own directory)."""
    data = _read(path, root, content=True)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"not UTF-8 (byte {exc.start})", path=path) from None


def load_pack_yaml(path: Path, root: Path | None = None) -> tuple[Any, str]:
    """A pack YAML file parsed safely, and its text (for line numbers)."""
    text = read_pack_text(path, root)
    try:
        return yaml.safe_load(text), text
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise PolicyError(f"malformed YAML: {exc.problem}", path=path, line=line) from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"malformed YAML: {exc}", path=path) from None
    except RecursionError:
        raise PolicyError("malformed YAML: nests too deeply", path=path) from None
