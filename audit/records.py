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
from audit.reading import MAX_ERRORS, iter_lines, open_regular, read_text

M = TypeVar("M", bound=BaseModel)


def describe_validation_error(exc: ValidationError) -> str:
    """One line listing every failing field with its path and why, up to :data:`MAX_ERRORS` of them."""
    errors = exc.errors(include_url=False)
    limit = max(1, MAX_ERRORS.get())
    parts = []
    for error in errors[:limit]:
        loc = ".".join(str(part) for part in error["loc"]) or "record"
        msg = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        parts.append(f"{loc}: {msg}")
    more = f" (and {len(errors) - limit} more; raise --max-errors to list them)" if len(errors) > limit else ""
    return "; ".join(parts) + more


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
    """Stream ``(line number, record)`` from a JSON Lines file; blank lines are errors.

    Read through the bounded reader: a regular file, each line within the line cap.
    """
    p = Path(path)
    with open_regular(p) as fh:
        for number, raw in iter_lines(fh, path=p):
            if not raw.strip():
                raise InputError("empty line", path=p, line=number)
            yield number, validate(model, parse_json_line(raw, path=p, line=number), path=p, line=number)


MAX_YAML_NODES = 1_000_000
"""A YAML document expands (aliases followed) to at most this many nodes: ``*ref`` can make gigabytes of kilobytes."""


def _expanded_size(root: yaml.Node) -> int:
    """Nodes of the document with every alias followed, counted once per shared node (no recursion)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, ready = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if ready or not children:
            sizes[id(node)] = min(1 + sum(sizes.get(id(c), 0) for c in children), MAX_YAML_NODES + 1)
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def yaml_node(text: str) -> Any:
    """Compose YAML text into nodes (for line numbers): safe tags only, expansion bounded.

    Raises :class:`yaml.YAMLError` (a :class:`yaml.MarkedYAMLError` with the line) when
    the text does not parse or expands past :data:`MAX_YAML_NODES` through aliases.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:  # PyYAML composes recursively: deep nesting is an input error, not a crash
        raise yaml.YAMLError("YAML nests too deeply") from None
    if node is not None and _expanded_size(node) > MAX_YAML_NODES:
        raise yaml.composer.ComposerError(
            None, None, f"expands to more than {MAX_YAML_NODES:,} values through aliases", node.start_mark
        )
    return node


def yaml_value(text: str) -> Any:
    """Parse YAML text: safe types only, bounded expansion (:class:`yaml.YAMLError` on failure)."""
    node = yaml_node(text)
    if node is None:
        return None
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


MAX_YAML_BYTES = 16 * 1024 * 1024
"""A YAML input (pack, catalogue, inventory, tests) is at most this large."""


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file safely: bounded size, safe types only, bounded alias expansion."""
    p = Path(path)
    text = read_text(p, max_bytes=MAX_YAML_BYTES)
    try:
        return yaml_value(text)
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
