"""The one canonical serializer for bytes that get hashed or signed.

RFC 8785 (JSON Canonicalization Scheme) via the ``rfc8785`` package. Nothing that
is hashed or signed may be produced by ``json.dumps``/``orjson.dumps`` directly.
Does not parse: readers keep the bytes they were given.
"""

from __future__ import annotations

from typing import Any

import orjson
import rfc8785
from pydantic import BaseModel


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON value or a pydantic model (``None`` fields omitted)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True)
    return rfc8785.dumps(value)


def is_canonical(data: bytes) -> bool:
    """Whether ``data`` is exactly the RFC 8785 form of the JSON value it encodes."""
    try:
        return rfc8785.dumps(orjson.loads(data)) == data
    except (orjson.JSONDecodeError, rfc8785.CanonicalizationError):
        return False
