"""msgspec's typed read of a one-line array file answers only with orjson's records (ADR 0015).

:func:`audit.importers.typed_file.typed_records` decodes a CloudTrail file into
:class:`~audit.importers.cloudtrail_fast.TypedRecord`\\ s. Wherever it answers,
:func:`~audit.importers.whole_file.whole_file_records` (orjson, itself held equal to the
streaming reader in ``test_import_fast_path.py``) must answer too, with as many records,
each an object whose members the struct reads are the struct's values (a ``Raw`` member:
the text orjson parses to that member's value; empty: absent). Checked on generated texts
written token by token: escapes and surrogate pairs, lone surrogates, duplicate keys,
numbers of every form (big integers, overflowing exponents, NaN), nested skipped values,
deep nesting, whitespace, and bytes inserted anywhere (invalid UTF-8, control characters).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.importers import typed_file
from audit.importers.base import record_keys
from audit.importers.cloudtrail_fast import _DECODER, TypedRecord
from audit.importers.whole_file import whole_file_records
from audit.reading import DEFAULT_LIMITS
from tests.conftest import FIXTURES

SETTINGS = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
KEYS = record_keys("Records")
FIELDS = list(TypedRecord.__struct_fields__)

_NUMBERS = [
    "0",
    "-0",
    "7",
    "-12",
    "1.5",
    "-0.25",
    "1e5",
    "1E+05",
    "2e-7",
    "1e99",
    "1e308",
    "1e309",
    "1e400",
    "-1E+400",
    "1.5e-400",
    "1e0400",
    "0.1e999",
    "123456789012345678",
    "1234567890123456789",
    "99999999999999999999",
    "18446744073709551616",
    "NaN",
    "Infinity",
    "-Infinity",
    "01",
    "1.",
    ".5",
    "+1",
    "1e",
    "--1",
]
_WORDS = [
    "",
    " ",
    "Data",
    "Insight",
    "AwsCloudTrailInsight",
    "s3.amazonaws.com",
    "GetObject",
    "us-east-1",
    "2021-12-06T10:05:00Z",
]
_KEYS = [*FIELDS, "requestID", "other", "ARN", "arn", "type", "bucketName", "key", "x-amz-copy-source"]
_texts = st.text(st.characters(exclude_categories=()), max_size=8) | st.sampled_from(_WORDS)
_leaves = st.none() | st.booleans() | st.sampled_from(_NUMBERS) | _texts
_values = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=3) | st.lists(st.tuples(st.sampled_from(_KEYS) | _texts, inner), max_size=4),
    max_leaves=16,
)
"""JSON values as the writer below takes them: a list of pairs is an object (keys may repeat), a str is a
string, unless it is one of :data:`_NUMBERS` in a leaf of its own (then it is written as that token)."""


def _string(text: str, data: st.DataObject) -> str:
    escape = data.draw(st.sampled_from(["none", "none", "none", "all", "some", "some", "raw"]))
    out = []
    for char in text:
        code = ord(char)
        if 0xD800 <= code <= 0xDFFF or code < 0x20 or char in '"\\':
            out.append(f"\\u{code:04x}" if code >= 0x20 or char in '"\\' or escape != "raw" else char)
        elif escape == "all" or (escape == "some" and data.draw(st.booleans())):
            if code > 0xFFFF:
                high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
                out.append(f"\\u{high:04x}\\u{low:04X}")
            else:
                out.append(f"\\u{code:04X}" if code % 2 else f"\\u{code:04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _write(value: Any, data: st.DataObject, space: str) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        return value if value in _NUMBERS else _string(value, data)
    if isinstance(value, tuple):
        return _write(value[1], data, space)
    if value and isinstance(value[0], tuple):  # an object: pairs
        members = [f"{_string(key, data)}{space}:{space}{_write(item, data, space)}" for key, item in value]
        return "{" + f",{space}".join(members) + "}"
    return "[" + f",{space}".join(_write(item, data, space) for item in value) + "]"


_BYTES = [
    0xFF,
    0x80,
    0xC3,
    0xED,
    0xF4,
    ord('"'),
    ord("\\"),
    ord("e"),
    ord("0"),
    ord(","),
    ord("]"),
    0x7F,
    0x0A,
    0x09,
    0x01,
]
_records = st.lists(st.tuples(st.sampled_from(_KEYS), _values | _texts | st.none()), max_size=8)


def _file(tmp: Path, text: bytes) -> Path:
    path = tmp / "f.json.gz"
    path.write_bytes(gzip.compress(text, mtime=0))
    return path


def _check(path: Path) -> bool:
    """Whether the typed read answered; if it did, orjson answered the same."""
    typed = typed_file.typed_records(path, KEYS, _DECODER)
    if typed is None:
        return False
    whole = whole_file_records(path, KEYS)
    assert whole is not None and len(whole) == len(typed)
    for record, struct in zip(whole, typed, strict=True):
        assert type(record) is dict
        for name in FIELDS:
            value = getattr(struct, name)
            if isinstance(value, msgspec.Raw):
                assert (orjson.loads(bytes(value)) == record[name]) if len(value) else name not in record
            else:
                assert type(value) is type(record.get(name)) and value == record.get(name), name
    return True


@SETTINGS
@given(records=st.lists(_records, max_size=4), data=st.data())
def test_typed_read_answers_as_orjson_on_generated_texts(
    tmp_path_factory: pytest.TempPathFactory, records: list[list[tuple[str, Any]]], data: st.DataObject
) -> None:
    space = data.draw(st.sampled_from(["", "", "", "", "", " ", " ", "\t", "\r"]))
    between = data.draw(st.sampled_from(["", "", "", " "]))
    text = '{"Records":[' + f",{between}".join(_write(r or [("k", None)], data, space) for r in records) + "]}"
    raw = text.encode("utf-8", "surrogatepass")
    if data.draw(st.integers(0, 3)) == 3:  # a byte anywhere: invalid UTF-8, a control character, a broken token
        at = len(raw) - 2 - data.draw(st.integers(0, len(raw) - 2))  # from the end: the records' bytes first
        raw = (
            raw[:at]
            + bytes([data.draw(st.sampled_from(_BYTES) | st.integers(0, 255))])
            + raw[at + data.draw(st.integers(0, 1)) :]
        )
    _check(_file(tmp_path_factory.mktemp("t"), raw))


@SETTINGS
@given(records=st.lists(_records, min_size=1, max_size=4), data=st.data())
def test_typed_read_answers_clean_compact_texts(
    tmp_path_factory: pytest.TempPathFactory, records: list[list[tuple[str, Any]]], data: st.DataObject
) -> None:
    """Well-formed compact files with no token orjson refuses are answered (the check above is not vacuous)."""
    words = st.sampled_from(_WORDS) | st.text(st.characters(codec="utf-8"), max_size=8)
    clean = [[(key, data.draw(words | st.none())) for key, _ in record] for record in records]
    objects = [{key: value for key, value in record if key not in ("managementEvent",)} for record in clean]
    objects = [
        {k: v for k, v in o.items() if k not in ("userIdentity", "resources", "requestParameters")} for o in objects
    ]
    path = _file(tmp_path_factory.mktemp("c"), orjson.dumps({"Records": objects}))
    assert _check(path)


_CASES = {
    b'[{"eventID":"a","eventID":"b"}]': True,
    b'[{"eventID":"a","\\u0065ventID":"b"}]': True,
    b'[{"userIdentity":{"a":1},"userIdentity":[2]}]': True,
    b'[{"eventID":"\\ud83d\\ude00\\u00e9"}]': True,
    b'[{"x":1.5e-400}]': False,  # a three-digit exponent, even one orjson reads as 0.0
    b'[{"x":1e400}]': False,
    b'[{"x":[1,-1E+0400]}]': False,
    b'[{"x":"id-1e400"}]': True,  # in a string, after a letter: not a number
    b'[{"x":"a:1e400"}]': False,  # in a string, but after a colon: taken for one, read by orjson instead
    b'[{"x":1234567890123456789}]': False,
    b'[{"x":"\\ud800"}]': False,
    b'[{"x":"\\udc00x"}]': False,
    b'[{"x":"\xff"}]': False,
    b'[{"x":"\xed\xa0\x80"}]': False,
    b'[{"x":"a\x01"}]': False,
    b'[{"x":NaN}]': False,
    b'[{"x":1},\n{"y":2}]': False,
    b'[{"x":1}, {"y":2}]': False,
    b'[{"x":1}]   ': True,
    b'[{"eventID":1}]': False,
    b'[{"managementEvent":"true"}]': False,
    b'[{"eventID":null,"managementEvent":false}]': True,
    b'[{"requestParameters":null}]': True,
    b"[1]": False,
    b"[]": True,
    b'{"Records":[{"eventID":"a"}]}': True,
    b'{"Records":[{"eventID":"a"}],"x":1}': False,
}


@pytest.mark.parametrize("text", list(_CASES))
def test_typed_read_edge_cases(tmp_path: Path, text: bytes) -> None:
    assert _check(_file(tmp_path, text)) is _CASES[text]


@pytest.mark.parametrize(
    "depth", [DEFAULT_LIMITS.max_depth - 1, DEFAULT_LIMITS.max_depth, DEFAULT_LIMITS.max_depth + 1]
)
def test_typed_read_refuses_records_nested_past_the_cap(tmp_path: Path, depth: int) -> None:
    """A record nested deeper than the cap (in a member it skips) is left to the reader that reports it."""
    nested = "[" * (depth - 1) + "]" * (depth - 1)
    path = _file(tmp_path, f'[{{"eventID":"a","deep":{nested}}},{{"eventID":"b"}}]'.encode())
    assert _check(path) is (depth <= DEFAULT_LIMITS.max_depth)
    assert (whole_file_records(path, KEYS) is not None) is (depth <= DEFAULT_LIMITS.max_depth)


def test_typed_read_of_nesting_past_msgspecs_recursion_falls_back(tmp_path: Path) -> None:
    """msgspec raises RecursionError past the interpreter's limit: the file goes the old way (which reports it)."""
    path = _file(tmp_path, b'[{"eventID":"a","deep":' + b"[" * 100_000 + b"]" * 100_000 + b"}]")
    assert typed_file.typed_records(path, KEYS, _DECODER) is None
    assert whole_file_records(path, KEYS) is None


def test_typed_read_takes_the_cloudtrail_fixtures() -> None:
    for path in sorted((FIXTURES / "sources" / "cloudtrail" / "logs").glob("*.json.gz")):
        assert _check(path), path
