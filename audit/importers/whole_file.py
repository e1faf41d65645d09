"""The fast path of :func:`audit.importers.base.iter_records`: a one-line file parsed at once by orjson.

Vendors deliver CloudTrail (``{"Records": [...]}``) and other array files as one line.
For such a file, at most :data:`FAST_MAX_BYTES` once inflated, :func:`whole_file_records`
parses the record array in one orjson call instead of the incremental stdlib decoder,
and returns exactly the records the streaming reader would yield, or ``None`` when it
cannot prove that; the caller then streams the file as before. It takes the fast path
only when all of these hold, so the streaming reader would yield the same values at the
same indexes, all on line 1, and raise nothing:

- the file is a regular file within the size cap (opened as the streaming reader
  opens it), plain, or gzip of exactly one complete member with nothing after it,
  inflated by zlib in one call (zlib checks what :mod:`gzip` checks, and also the
  header CRC and reserved flags; anything it refuses is streamed);
- the inflated bytes are at most :data:`FAST_MAX_BYTES` (no record reaches the streaming
  reader's 16 MiB cap) and hold no newline before trailing whitespace (every record
  starts on line 1);
- the bytes are a JSON array, or an object whose only member is the wrapper key (its
  first member, as the streaming reader looks for it): the text between ``{"key":``
  and the final ``}`` parses as one array, so there is no second member;
- orjson parses that text. orjson refuses what the stdlib decoder also refuses (invalid
  UTF-8, control characters in strings, trailing data) and also ``NaN``, ``Infinity``,
  lone surrogates and nesting past its limit, which fall back to the streaming reader and
  its own answer. orjson reads an integer beyond 64 bits as a float, so any run of 19
  or more digits (in a number or in a string) falls back too. Objects with repeated keys keep the first
  key's position and the last value in both; the property tests in
  ``tests/test_import_fast_path.py`` hold the two equal;
- no record nests deeper than the depth cap. orjson refuses nesting past a fixed limit
  (1024), arrays and objects alike; the array is parsed wrapped in ``limit - 1 - cap``
  more arrays, so it parses exactly when no record nests deeper than the cap
  (:func:`_wrapping` finds the limit by trying; every wrapping level must hold one
  element, so the text was one value). Without a usable limit each record is checked
  as the streaming reader checks it, when its serialisation has more opening brackets
  than the cap.

Reading errors (gzip, size caps) also fall back, so they are reported where the
streaming reader reports them. Does not convert records.
"""

from __future__ import annotations

import functools
import re
import zlib
from pathlib import Path
from typing import Any

import orjson

from audit.errors import InputError
from audit.reading import DEFAULT_LIMITS, check_depth, open_regular

FAST_MAX_BYTES = 8 << 20
"""Files larger than this once inflated are streamed, one record at a time (at most the streaming reader's 16 MiB)."""

GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
"""zlib's window bits for exactly one gzip member (header and trailer checked)."""
_ONE_LINE_WS = b" \t\r"
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
LONG_DIGITS = b"0" * 19


def read_small(path: Path) -> bytes | None:
    """The file's bytes, inflated if it is gzip, when at most :data:`FAST_MAX_BYTES` and on one line; else None.

    Opened as the streaming reader opens it (a regular file within the size cap). A gzip
    file is inflated by zlib in one call: only a single complete member with no trailing
    bytes, whose header and trailer checks pass (zlib also checks the header CRC and
    reserved flags, which :mod:`gzip` ignores); anything else is left to the streaming reader.
    """
    try:
        with open_regular(path) as fh:
            data = fh.read(FAST_MAX_BYTES + 1)
    except (OSError, InputError):
        return None
    if data[:2] == GZIP_MAGIC and len(data) <= FAST_MAX_BYTES:
        inflater = zlib.decompressobj(wbits=_GZIP_WBITS)
        try:
            data = inflater.decompress(data, FAST_MAX_BYTES + 1)
        except zlib.error:
            return None
        if not inflater.eof or inflater.unused_data:
            return None
    if len(data) > FAST_MAX_BYTES or b"\n" in data.rstrip():
        return None
    return data


def array_text(data: bytes, keys: tuple[str, ...]) -> bytes | None:
    """The text of the record array: the whole file, or the value of its only member (a wrapper key)."""
    text = data.strip(_ONE_LINE_WS + b"\n")
    if text.startswith(b"["):
        return text
    if not text.startswith(b"{") or not text.endswith(b"}"):
        return None
    for key in keys:
        # The streaming reader recognises the wrapper within 256 characters of the "{".
        head = re.compile(rb"\{[ \t\r]{0,32}" + re.escape(orjson.dumps(key)) + rb"[ \t\r]{0,32}:[ \t\r]{0,32}(?=\[)")
        match = head.match(text)
        if match is not None:
            return text[match.end() : -1]
    return None


def _within_depth(records: list[Any]) -> bool:
    cap = DEFAULT_LIMITS.max_depth
    for record in records:
        if isinstance(record, dict | list):
            dumped = orjson.dumps(record)
            if dumped.count(b"{") + dumped.count(b"[") > cap:
                try:
                    check_depth(record, path="")
                except InputError:
                    return False
    return True


def _parses(depth: int) -> bool:
    try:
        orjson.loads(b"[" * depth + b"]" * depth)
    except orjson.JSONDecodeError:
        return False
    return True


@functools.cache
def _wrapping() -> int | None:
    """How many arrays to wrap a record array in so that orjson's own nesting limit is the depth cap.

    orjson refuses JSON nested deeper than a fixed limit (1024 in orjson 3), arrays and
    objects alike. A record array nests one deeper than its deepest record, so wrapped in
    ``limit - 1 - cap`` more arrays it parses exactly when no record nests deeper than the
    cap. Found by trying, so another orjson's limit is used as it is; None (check each
    record instead) if orjson has no limit below 65,536 or one too small to wrap.
    """
    low, high = 1, 1 << 16  # parses, does not
    if _parses(high):
        return None
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if _parses(middle) else (low, middle)
    extra = low - 1 - DEFAULT_LIMITS.max_depth
    return extra if extra >= 0 else None


def _parse(text: bytes) -> list[Any] | None:
    """The record array of ``text`` if orjson parses it and no record nests deeper than the cap."""
    extra = _wrapping()
    try:
        if extra is None:
            value = orjson.loads(text)
            return value if isinstance(value, list) and _within_depth(value) else None
        value = orjson.loads(b"[" * extra + text + b"]" * extra)
    except orjson.JSONDecodeError:
        return None
    for _ in range(extra):  # one element at every level: the text was one value, not "a],[b"
        if type(value) is not list or len(value) != 1:
            return None
        value = value[0]
    return value if isinstance(value, list) else None


def whole_file_records(path: Path, keys: tuple[str, ...]) -> list[Any] | None:
    """Every record of a one-line array file, as the streaming reader yields them; ``None`` to stream instead."""
    data = read_small(path)
    if data is None:
        return None
    text = array_text(data, keys)
    if text is None or LONG_DIGITS in text.translate(_DIGITS_AS_ZERO):
        return None
    return _parse(text)
