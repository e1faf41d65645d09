"""Reading JSON Lines and YAML input files into validated models, with file:line errors.

Every failure becomes an :class:`~audit.errors.InputError` naming the file, the
1-based line and the reason in one line. Does not canonicalise or hash anything;
see :mod:`audit.canonical` for bytes that get signed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
import yaml
from pydantic import BaseModel, ValidationError

from audit.errors import InputError

M = TypeVar("M", bound=BaseModel)


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming the first failing field and why (plus how many more)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = ".".join(str(part) for part in first["loc"]) or "record"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown field"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{loc}: {msg}{more}"


def parse_json_line(raw: bytes, *, path: str | Path, line: int) -> dict[str, Any]:
    """Parse one JSON Lines record that must be an object."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc}", path=path, line=line) from None
    if not isinstance(value, dict):
        raise InputError("record is not a JSON object", path=path, line=line)
    return value


def validate(model: type[M], value: Any, *, path: str | Path, line: int | None) -> M:
    """Validate ``value`` as ``model`` or raise a one-line InputError."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc), path=path, line=line) from None


def open_input(path: str | Path) -> Path:
    """Return ``path`` as a Path if it is a readable file, else raise InputError."""
    p = Path(path)
    if not p.exists():
        raise InputError("no such file", path=p)
    if not p.is_file():
        raise InputError("not a regular file", path=p)
    return p


def iter_jsonl(path: str | Path, model: type[M]) -> Iterator[tuple[int, M]]:
    """Stream ``(line number, record)`` from a JSON Lines file; blank lines are errors."""
    p = open_input(path)
    with p.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                raise InputError("empty line", path=p, line=number)
            yield number, validate(model, parse_json_line(raw, path=p, line=number), path=p, line=number)


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file safely (no arbitrary object construction)."""
    p = open_input(path)
    try:
        with p.open("rb") as fh:
            return yaml.safe_load(fh)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise InputError(f"malformed YAML: {exc.problem}", path=p, line=line) from None
    except yaml.YAMLError as exc:
        raise InputError(f"malformed YAML: {exc}", path=p) from None


def validate_lines(lines: Iterable[bytes], model: type[M], *, path: str | Path) -> Iterator[tuple[int, M]]:
    """Validate already-read JSON Lines records (e.g. a verified log segment)."""
    for number, raw in enumerate(lines, start=1):
        yield number, validate(model, parse_json_line(raw, path=path, line=number), path=path, line=number)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
