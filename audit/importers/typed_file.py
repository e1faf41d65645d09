"""A one-line array file decoded by msgspec into typed records, or ``None`` when that is not provably orjson's answer.

:func:`audit.importers.whole_file.whole_file_records` parses every record of a one-line
array file with orjson: a dict per record, every member built, most of them never read.
:func:`typed_records` decodes the same text with msgspec into a caller's ``Struct`` type
holding only the members it reads (others are skipped, deep ones kept as
:class:`msgspec.Raw` text). It answers only where ``whole_file_records`` answers with
records of the same number, whose members read are equal (a ``Raw`` member is the text
orjson parses to that member's value), and returns ``None`` otherwise, when the caller
takes the existing path with the same file. ADR 0015 gives the argument; in short:

- the same file reading and framing as ``whole_file_records`` (:func:`read_small`,
  :func:`array_text`, no run of 19 or more digits);
- msgspec and orjson read the same JSON grammar, and where a member is decoded they
  decode it to the same value (strings: escapes, surrogate pairs; duplicate keys: the
  last value). msgspec refuses lone surrogates, ``NaN`` and control characters, as orjson
  does. It does not check what it skips as closely, so the text is checked first: valid
  UTF-8 (ASCII, or Python's strict decoder), no control character at all (orjson refuses
  them in strings; a tab or CR between tokens is legal, but only streamed), and no
  number that orjson would refuse as infinite (an exponent of three or more digits
  after a number's digit; any such run outside a string-like context falls back);
- the depth cap: a record with at most :data:`~audit.reading.Limits.max_depth` opening
  brackets cannot nest deeper. The records' extents come from a first msgspec pass
  (``list[Raw]``) and are exact when the array is compact (``[r1,r2,...]``, no
  whitespace between records: how CloudTrail writes it), else the file falls back.

Refusals (a type that does not match, a member that is not an object, anything
msgspec refuses, nesting deeper than msgspec's recursion allows) return ``None`` too:
never a different answer, only the old path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec

from audit.importers.whole_file import LONG_DIGITS, array_text, read_small
from audit.reading import DEFAULT_LIMITS

_RECORDS = msgspec.json.Decoder(list[msgspec.Raw])


def _check_table() -> bytes:
    table = bytearray(range(256))
    for byte in range(0x20):
        table[byte] = 0  # control characters: orjson refuses them in strings
    for byte in b"0123456789":
        table[byte] = ord("0")
    table[ord("E")], table[ord("+")], table[ord("[")] = ord("e"), ord("-"), ord("{")
    return bytes(table)


_CHECK = _check_table()
"""The text as the checks see it: control characters as NUL, digits as ``0``, ``E`` as ``e``,
``+`` as ``-``, ``[`` as ``{``."""
_BIG_EXPONENT = re.compile(rb"0e-?000")
"""A digit, then an exponent of at least three digits (signed or not) in the checked text: the only
numbers that can overflow to infinity once every run of digits is shorter than 19."""
_NUMBER_START = frozenset(b":,{ ")
"""What precedes a number in a value position (after its sign and digits): a colon, comma, bracket or space."""


def _may_overflow(checked: bytes) -> bool:
    """Whether a number of ``checked`` may have a three-digit exponent (a string's text may look like one too)."""
    for match in _BIG_EXPONENT.finditer(checked):
        start = match.start()
        while start > 0 and checked[start - 1] in b"0.":
            start -= 1
        if start > 0 and checked[start - 1] == ord("-"):
            start -= 1
        if start == 0 or checked[start - 1] in _NUMBER_START:
            return True
    return False


def _shallow(checked: bytes, raws: list[msgspec.Raw]) -> bool:
    """Whether the array is compact (``[r1,r2,...]``) and no record holds more opening brackets than the cap."""
    if len(checked) != (sum(map(len, raws)) + len(raws) + 1 if raws else 2):
        return False
    cap, start = DEFAULT_LIMITS.max_depth, 1
    for raw in raws:
        end = start + len(raw)
        if checked.count(b"{", start, end) > cap:
            return False
        start = end + 1
    return True


def typed_records(path: Path, keys: tuple[str, ...], decoder: msgspec.json.Decoder[list[Any]]) -> list[Any] | None:
    """The records of a one-line array file decoded by ``decoder``, or None: see the module docstring."""
    data = read_small(path)
    text = array_text(data, keys) if data is not None else None
    if text is None:
        return None
    checked = text.translate(_CHECK)
    if b"\x00" in checked or LONG_DIGITS in checked or _may_overflow(checked):
        return None
    if not text.isascii():
        try:
            text.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        if not _shallow(checked, _RECORDS.decode(text)):
            return None
        return decoder.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):  # msgspec nests as deep as the stack
        return None
