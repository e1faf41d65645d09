"""Which record lines of a segment are not exactly their RFC 8785 canonical form.

What it does: :func:`non_canonical_lines` returns the 1-based numbers of the lines
whose bytes are not the RFC 8785 (JCS) encoding of the JSON value they hold —
duplicate keys (readers disagree on which value counts), whitespace, key order,
escapes, number forms, or no JSON at all. :func:`describe_line` says why for one
line, for the problem message.

How it stays cheap: each line is decoded once (msgspec, floats refused) and
re-encoded (orjson, sorted keys, integers within +/-(2**53 - 1)), and the bytes are
compared. For values without floats, with integers in that range and keys whose
UTF-16 and code-point orders agree (no character beyond U+FFFF), orjson writes
exactly the RFC 8785 bytes (see :mod:`audit.canonical` and ADR 0003), so equality
proves the line canonical. Only a line this cannot prove goes to
:func:`audit.canonical.is_canonical` (exact, slower). Lines are checked one at a
time so no segment's worth of decoded values is ever held (it would cost memory
and garbage-collector time).

:func:`is_canonical_line` is the same check for one line, for a consumer that checks
the lines of a verified segment itself (``defer_canonical``, see :mod:`.verifier`).

What it does not do: it does not validate records against a model, and reads no file.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import orjson
import rfc8785

from audit.canonical import canonical_bytes, is_canonical

_ENCODE = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER


def _no_floats(_: str) -> Any:
    raise ValueError("a float: RFC 8785 number formatting is checked exactly")


_DECODER = msgspec.json.Decoder(float_hook=_no_floats)
_ASTRAL = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")
"""UTF-8 lead bytes of characters beyond U+FFFF (where UTF-16 and code-point key orders can differ)."""


def non_canonical_lines(lines: list[bytes]) -> list[int]:
    """1-based numbers of the ``lines`` (record bytes, without newlines) that are not their RFC 8785 form."""
    bad: list[int] = []
    decode, dumps = _DECODER.decode, orjson.dumps
    for number, line in enumerate(lines, start=1):
        if line.isascii() or not any(lead in line for lead in _ASTRAL):
            try:
                if dumps(decode(line), option=_ENCODE) == line:
                    continue
            except (msgspec.DecodeError, msgspec.ValidationError, orjson.JSONEncodeError, RecursionError):
                pass  # RecursionError: nesting deeper than msgspec's generic decode recurses (is_canonical refuses it)
        if not is_canonical(line):
            bad.append(number)
    return bad


def is_canonical_line(line: bytes) -> bool:
    """Whether one record line is its RFC 8785 form (as :func:`non_canonical_lines` decides)."""
    return not non_canonical_lines([line])


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _Duplicate(key)
        seen[key] = value
    return seen


def describe_line(line: bytes) -> str:
    """Why ``line`` is not canonical: a duplicate key, not JSON, or where it departs from its canonical form."""
    try:
        value = json.loads(line, object_pairs_hook=_pairs)
    except _Duplicate as dup:
        return f"duplicate key {dup.key!r} (readers disagree on which value counts)"
    except RecursionError:
        return "nests too deeply to be checked"
    except ValueError:
        return "not a JSON value"
    try:
        canonical = canonical_bytes(value)
    except RecursionError:
        return "nests too deeply to be checked"
    except (rfc8785.CanonicalizationError, ValueError, TypeError):
        return "has no RFC 8785 form (e.g. a lone surrogate or a non-finite number)"
    at = next(
        (i for i, (a, b) in enumerate(zip(line, canonical, strict=False)) if a != b), min(len(line), len(canonical))
    )
    return f"differs from its canonical form from byte {at + 1} (whitespace, key order, escapes or number form)"
