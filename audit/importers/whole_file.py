"""The fast path of :func:`audit.importers.base.iter_records`: a one-line file parsed at once by orjson.

Vendors deliver CloudTrail (``{"Records": [...]}``) and other array files as one line.
For such a file, at most :data:`FAST_MAX_BYTES` once inflated, :func:`whole_file_records`
parses the record array in one orjson call instead of the incremental stdlib decoder,
and returns exactly the records the streaming reader would yield, or ``None`` when it
cannot prove that; the caller then streams the file as before. It takes the fast path
only when all of these hold, so the streaming reader would yield the same values at the
same indexes, all on line 1, and raise nothing:

- the inflated bytes are at most :data:`FAST_MAX_BYTES` (no record reaches the streaming
  reader's 16 MiB cap) and hold no newline before trailing whitespace (every record
  starts on line 1);
- the bytes are a JSON array, or an object whose only member is the wrapper key (its
  first member, as the streaming reader looks for it): the text between ``{"key":``
  and the final ``}`` parses as one array, so there is no second member;
- orjson parses that text. orjson refuses what the stdlib decoder also refuses (invalid
  UTF-8, control characters in strings, trailing data) and also ``NaN``, ``Infinity``,
  lone surrogates and nesting past 1024, which fall back to the streaming reader and
  its own answer. orjson reads an integer beyond 64 bits as a float, so any run of 19
  or more digits (in a number or in a string) falls back too. Objects with repeated keys keep the first
  key's position and the last value in both; the property tests in
  ``tests/test_import_fast_path.py`` hold the two equal;
- no record nests deeper than the depth cap: checked exactly as the streaming reader
  does, only for records whose serialisation has more than the cap's number of opening
  brackets (a record can nest no deeper than it has containers).

Reading errors (gzip, size caps) also fall back, so they are reported where the
streaming reader reports them. Does not convert records.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

from audit.errors import InputError
from audit.reading import DEFAULT_LIMITS, check_depth, open_maybe_gzip

FAST_MAX_BYTES = 8 << 20
"""Files larger than this once inflated are streamed, one record at a time (at most the streaming reader's 16 MiB)."""

_ONE_LINE_WS = b" \t\r"
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_DIGITS = b"0" * 19


def _read_small(path: Path) -> bytes | None:
    try:
        with open_maybe_gzip(path) as fh:
            data = fh.read(FAST_MAX_BYTES + 1)
    except (OSError, EOFError, InputError):
        return None
    if len(data) > FAST_MAX_BYTES or b"\n" in data.rstrip():
        return None
    return data


def _array_text(data: bytes, keys: tuple[str, ...]) -> bytes | None:
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


def whole_file_records(path: Path, keys: tuple[str, ...]) -> list[Any] | None:
    """Every record of a one-line array file, as the streaming reader yields them; ``None`` to stream instead."""
    data = _read_small(path)
    if data is None:
        return None
    text = _array_text(data, keys)
    if text is None or _LONG_DIGITS in text.translate(_DIGITS_AS_ZERO):
        return None
    try:
        records = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(records, list) or not _within_depth(records):
        return None
    return records
