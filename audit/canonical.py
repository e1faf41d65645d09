"""The one canonical serializer for bytes that get hashed or signed.

RFC 8785 (JSON Canonicalization Scheme). Values whose RFC 8785 form orjson writes
byte for byte - no floats, integers within +/-(2**53 - 1), ASCII object keys (so
code-point and UTF-16 key order agree) - go through ``orjson`` with sorted keys;
everything else through the ``rfc8785`` package. A property test holds the two
equal (docs/adr/0003-canonical-json-fast-path.md). An :class:`~audit.models.AccessEvent`
or a :class:`~audit.models.Finding` skips the per-value walk: their fields admit no
float and no dict with free keys (a test walks the models' fields to keep this true),
so only their integers need the range check, which orjson's strict-integer option
makes. Builders of plain values with the same guarantee use :func:`plain_canonical_bytes`
(a test holds each one equal to ``rfc8785``). Nothing that is hashed or signed
may be produced by ``json.dumps``/``orjson.dumps`` outside this module. Does not
parse: readers keep the bytes they were given.
"""

from __future__ import annotations

from typing import Any

import orjson
import rfc8785
from pydantic import BaseModel

from audit.models import AccessEvent, Finding

_SAFE_INT = 2**53  # RFC 8785 numbers are IEEE 754 doubles: integers are exact below this
_PLAIN = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER  # strict: an integer beyond +/-(2**53 - 1) raises
_PLAIN_MODELS: frozenset[type[BaseModel]] = frozenset({AccessEvent, Finding})
"""Models whose JSON form holds no float and no key but their (ASCII) field names."""


def orjson_is_canonical_for(value: Any) -> bool:
    """Whether orjson with sorted keys writes exactly the RFC 8785 bytes of ``value``."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if -_SAFE_INT < item < _SAFE_INT:
                continue
            return False
        if kind is dict:
            for key, member in item.items():
                if type(key) is not str or not key.isascii():
                    return False
                stack.append(member)
            continue
        if kind is list or kind is tuple:
            stack.extend(item)
            continue
        return False  # floats and anything else: rfc8785 decides
    return True


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON value or a pydantic model (``None`` fields omitted)."""
    if type(value) in _PLAIN_MODELS:
        return plain_canonical_bytes(value.model_dump(mode="json", exclude_none=True))
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True)
    if orjson_is_canonical_for(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # e.g. a lone surrogate: rfc8785 raises its own error
    return rfc8785.dumps(value)


def plain_canonical_bytes(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON value its builder guarantees holds no float and only ASCII keys.

    Integers need no guarantee: one beyond +/-(2**53 - 1), like a lone surrogate,
    makes orjson raise, and then ``rfc8785`` decides. For a value that breaks the
    guarantee the bytes may be wrong: every caller has a test holding it equal to ``rfc8785``.
    """
    try:
        return orjson.dumps(value, option=_PLAIN)
    except orjson.JSONEncodeError:
        return rfc8785.dumps(value)


def is_canonical(data: bytes) -> bool:
    """Whether ``data`` is exactly the RFC 8785 form of the JSON value it encodes.

    A value nested too deeply to check (beyond what orjson reads, or what the
    canonical walk can recurse through) is not taken as canonical: fail closed.
    """
    try:
        return canonical_bytes(orjson.loads(data)) == data
    except (orjson.JSONDecodeError, rfc8785.CanonicalizationError, RecursionError):
        return False
