"""The import fast paths give exactly what the general paths give.

- :mod:`audit.importers.whole_file`: a one-line array file parsed at once yields the
  same records, indexes and lines as the streaming reader, or raises the same error;
- :func:`audit.canonical.canonical_bytes` of an imported AccessEvent, which skips the
  per-value walk, equals the ``rfc8785`` package's bytes.
"""

from __future__ import annotations

import gzip
import json
import struct
import typing
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from audit.canonical import canonical_bytes
from audit.errors import InputError
from audit.importers import base, whole_file
from audit.importers.base import RawRecord, iter_records
from audit.importers.enrichment import load_enrichment
from audit.importers.run import SOURCES, ImportStats, convert_files
from audit.importers.whole_file import whole_file_records
from audit.models import AccessEvent
from audit.reading import DEFAULT_LIMITS
from tests.conftest import FIXTURES

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["", "Records", "\ud800", "\n", "\u2028", "x" * 20, "1234567890123456789012"])
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


def _streamed(path: Path, key: str | None) -> list[tuple[int, int, Any]] | str:
    saved = getattr(base, "whole_file_records")  # noqa: B009
    setattr(base, "whole_file_records", lambda *_: None)  # noqa: B010
    try:
        return _collect(iter_records(path, key))
    finally:
        setattr(base, "whole_file_records", saved)  # noqa: B010


def _collect(records: Iterator[RawRecord]) -> list[tuple[int, int, Any]] | str:
    try:
        return [(r.index, r.line, r.value) for r in records]
    except InputError as exc:
        return str(exc)


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values (a Malformed record by its reason), NaN equal to NaN, floats told from ints."""
    return json.dumps(a, sort_keys=True, default=repr) == json.dumps(b, sort_keys=True, default=repr) and repr(
        a
    ) == repr(b)


def _check(path: Path, key: str | None) -> None:
    fast = _collect(iter_records(path, key))
    slow = _streamed(path, key)
    assert _same(fast, slow), (fast, slow)


@SETTINGS
@given(
    records=st.lists(_values, max_size=6),
    wrapper=st.sampled_from([None, "Records", "data"]),
    ascii_only=st.booleans(),
    spaced=st.booleans(),
    zipped=st.booleans(),
)
def test_whole_file_equals_streaming(
    tmp_path: Path, records: list[Any], wrapper: str | None, ascii_only: bool, spaced: bool, zipped: bool
) -> None:
    separators = (", ", ": ") if spaced else (",", ":")
    text = json.dumps(
        records if wrapper is None else {wrapper: records}, ensure_ascii=ascii_only, separators=separators
    )
    data = text.encode("utf-8", "surrogatepass")
    path = tmp_path / ("f.json.gz" if zipped else "f.json")
    path.write_bytes(gzip.compress(data) if zipped else data)
    _check(path, "Records")


@pytest.mark.parametrize(
    "text",
    [
        b'{"Records":[{"a":1}],"Records":[{"b":2}]}',
        b'{"Records":[{"a":1}],"\\u0052ecords":[{"b":2}]}',
        b'{"Records":[{"a":1}],"other":3}',
        b'{"other":3,"Records":[{"a":1}]}',
        b'{"Records":[{"a":1},]}',
        b'[{"a":1},]',
        b'[{"a":NaN}]',
        b'[{"a":1e400}]',
        b'[{"a":-9223372036854775809},{"b":18446744073709551616}]',
        b'[{"a":"\\ud800"}]',
        b'\xef\xbb\xbf[{"a":1}]',
        b'[{"a":"\xff"}]',
        b'[{"a":1}] trailing',
        b'[{"a":1}]\n\n',
        b'\n[{"a":1}]',
        b'[{"a":1},\n{"b":2}]',
        b"[" + b'{"a":' * 64 + b"1" + b"}" * 64 + b"]",
        b"[" + b'{"a":' * 65 + b"1" + b"}" * 65 + b"]",
        b'{"Records":[' + b"[" * 70 + b"]" * 70 + b"]}",
        b'{"Records":[{"a":"' + b"[{" * 40 + b'"}]}',
        b'{"Records":[{"a":"\x01"}]}',
        b"[]",
        b"",
        b"   ",
        b'{"Records"  :  [{"a":1}]  }  ',
        b'{"a":1}',
        b'[{"a":1}],[{"b":2}]',
        b'[{"a":1}]],[[{"b":2}]',
        b'{"Records":[{"a":1}],[{"b":2}]}',
        b"[" + b'[{"a":' * 32 + b"[]" + b"}]" * 32 + b"]",
        b"[" + b'[{"a":' * 32 + b"[[]]" + b"}]" * 32 + b"]",
        b"[" + b"[" * 1100 + b"]" * 1100 + b"]",
    ],
)
def test_whole_file_edge_cases(tmp_path: Path, text: bytes) -> None:
    for zipped in (False, True):
        path = tmp_path / ("f.json.gz" if zipped else "f.json")
        path.write_bytes(gzip.compress(text) if zipped else text)
        _check(path, "Records")


def test_whole_file_is_taken_for_cloudtrail_files(tmp_path: Path) -> None:
    path = tmp_path / "ct.json.gz"
    path.write_bytes(gzip.compress(b'{"Records":[{"eventID":"a"},{"eventID":"b"}]}'))
    assert whole_file_records(path, ("Records",)) == [{"eventID": "a"}, {"eventID": "b"}]
    many_lines = tmp_path / "lines.json"
    many_lines.write_bytes(b'{"Records":[\n{"eventID":"a"}]}')
    assert whole_file_records(many_lines, ("Records",)) is None


def _gzip_header(flags: int, extra: bytes = b"") -> bytes:
    return b"\x1f\x8b\x08" + bytes([flags]) + b"\x00\x00\x00\x00\x00\xff" + extra


def _deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def _trailer(data: bytes) -> bytes:
    return struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


_TEXT = b'{"Records":[{"eventID":"a"},{"eventID":"b"}]}'


@pytest.mark.parametrize(
    "data",
    [
        gzip.compress(_TEXT, mtime=0) + gzip.compress(b"", mtime=0),  # a second member
        gzip.compress(_TEXT[:20], mtime=0) + gzip.compress(_TEXT[20:], mtime=0),
        gzip.compress(_TEXT, mtime=0) + b"\x00\x00\x00\x00",  # zero padding after the member
        gzip.compress(_TEXT, mtime=0) + b"junk",
        gzip.compress(_TEXT, mtime=0)[:-4] + b"\x00\x00\x00\x00",  # wrong ISIZE
        gzip.compress(_TEXT, mtime=0)[:-8] + b"\x00\x00\x00\x00" + gzip.compress(_TEXT, mtime=0)[-4:],  # wrong CRC
        _gzip_header(0x08, b"name\x00") + _deflated(_TEXT) + _trailer(_TEXT),  # FNAME
        _gzip_header(0x10, b"comment\x00") + _deflated(_TEXT) + _trailer(_TEXT),  # FCOMMENT
        _gzip_header(0x04, b"\x03\x00abc") + _deflated(_TEXT) + _trailer(_TEXT),  # FEXTRA
        _gzip_header(0x02, b"\x00\x00") + _deflated(_TEXT) + _trailer(_TEXT),  # FHCRC, wrong: gzip ignores it
        _gzip_header(0x20) + _deflated(_TEXT) + _trailer(_TEXT),  # a reserved flag
        _gzip_header(0x00)[:3] + b"\x07",  # header cut short
        b"\x1f\x8b",
    ],
)
def test_gzip_edge_cases_read_as_streamed(tmp_path: Path, data: bytes) -> None:
    """The fast path inflates one member at once with zlib; whatever it does not take, the streaming reader decides."""
    path = tmp_path / "f.json.gz"
    path.write_bytes(data)
    _check(path, "Records")


def test_whole_file_nesting_is_bounded_by_orjson_wrapped(tmp_path: Path) -> None:
    """Wrapped in enough arrays, orjson's own nesting limit is the depth cap: deepest allowed record read at once."""
    extra = whole_file._wrapping()
    assert extra is not None and extra + 1 + DEFAULT_LIMITS.max_depth == _orjson_limit()
    cap = DEFAULT_LIMITS.max_depth
    deepest = b'{"a":' * (cap // 2) + b"[" * (cap - cap // 2) + b"]" * (cap - cap // 2) + b"}" * (cap // 2)
    path = tmp_path / "deep.json"
    path.write_bytes(b'{"Records":[' + deepest + b"]}")
    assert whole_file_records(path, ("Records",)) is not None
    path.write_bytes(b'{"Records":[[' + deepest + b"]]}")
    assert whole_file_records(path, ("Records",)) is None
    _check(path, "Records")


def _orjson_limit() -> int:
    depth = 1
    while True:
        try:
            orjson.loads(b"[" * (depth + 1) + b"]" * (depth + 1))
        except orjson.JSONDecodeError:
            return depth
        depth += 1


@SETTINGS
@given(records=st.lists(_values, max_size=4), depth=st.integers(0, 80))
def test_wrapped_parse_equals_parse_and_depth_walk(records: list[Any], depth: int) -> None:
    nested: Any = records
    for _ in range(depth):
        nested = [nested] if depth % 2 else {"k": nested}
    text = json.dumps([nested, *records]).encode("utf-8", "surrogatepass")
    try:
        value = orjson.loads(text)
        expected = value if whole_file._within_depth(value) else None
    except orjson.JSONDecodeError:
        expected = None
    assert _same(whole_file._parse(text), expected)


def test_truncated_gzip_falls_back(tmp_path: Path) -> None:
    data = gzip.compress(b'{"Records":[' + b",".join([b'{"eventID":"x"}'] * 2000) + b"]}")
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[: len(data) // 2])
    assert whole_file_records(path, ("Records",)) is None
    _check(path, "Records")


# ------------------------------------------------------------------ canonical bytes of imported events

_SOURCE_FILES = {
    "cloudtrail": sorted((FIXTURES / "sources" / "cloudtrail" / "logs").glob("*.json.gz")),
    "oci-audit": sorted((FIXTURES / "sources" / "oci-audit").glob("*.json*")),
    "gcp-access-transparency": sorted((FIXTURES / "sources" / "gcp-access-transparency").glob("*.jsonl")),
    "ocsf": sorted((FIXTURES / "sources" / "ocsf").glob("*.jsonl")),
}


def _leaf_types(model: type[BaseModel], seen: set[type[BaseModel]]) -> Iterator[tuple[str, Any]]:
    """(model.field, annotation) of every non-model leaf a model's fields can hold."""
    seen.add(model)
    for name, info in model.model_fields.items():
        assert name.isascii() and info.alias is None and info.serialization_alias is None
        stack = [info.annotation]
        while stack:
            kind = stack.pop()
            args = typing.get_args(kind)
            origin = typing.get_origin(kind)
            if origin is typing.Annotated:
                stack.append(args[0])
            elif isinstance(kind, type) and issubclass(kind, BaseModel):
                if kind not in seen:
                    yield from _leaf_types(kind, seen)
            elif origin is typing.Literal:
                yield f"{model.__name__}.{name}", tuple(type(a) for a in args)
            elif args:
                if origin in (dict, typing.Mapping):
                    yield f"{model.__name__}.{name}", dict
                stack.extend(a for a in args if a is not Ellipsis)
            else:
                yield f"{model.__name__}.{name}", kind


def test_access_event_fields_admit_one_integer_and_no_float_or_free_keys() -> None:
    """What lets canonical_bytes skip the per-value walk for an AccessEvent."""
    leaves = list(_leaf_types(AccessEvent, set()))
    ints = sorted({where for where, kind in leaves if kind is int})
    assert ints == ["SourceRecord.index"]
    for where, kind in leaves:
        allowed = (str, bool, int, datetime, type(None), (str,))
        assert kind in allowed or (isinstance(kind, tuple) and set(kind) <= {str}), (where, kind)


def _events() -> Iterator[AccessEvent]:
    enrichment = load_enrichment(FIXTURES / "sources" / "directory.csv", FIXTURES / "sources" / "catalog.yaml")
    for name, files in _SOURCE_FILES.items():
        assert files, name
        yield from convert_files(SOURCES[name], files, enrichment, ImportStats(), skip_invalid=True)


def _rfc8785(event: AccessEvent) -> bytes:
    return rfc8785.dumps(event.model_dump(mode="json", exclude_none=True))


def test_imported_events_canonical_bytes_are_rfc8785() -> None:
    events = list(_events())
    assert len(events) > 20
    for event in events:
        assert canonical_bytes(event) == _rfc8785(event)


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(max_size=10),
    index=st.integers(min_value=1, max_value=2**70),
    vendor_id=st.none() | st.text(max_size=8),
)
def test_access_event_canonical_bytes_equal_rfc8785(text: str, index: int, vendor_id: str | None) -> None:
    base_event = orjson.loads((FIXTURES / "events.jsonl").read_bytes().splitlines()[0])
    value = {
        **base_event,
        "justification": text,
        "source_system": text or None,
        "source_record": {"source": "s" + text, "file": "f" + text, "index": index, "vendor_event_id": vendor_id},
    }
    event = AccessEvent.model_validate(value)
    try:
        expected = _rfc8785(event)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        with pytest.raises((rfc8785.CanonicalizationError, UnicodeEncodeError)):
            canonical_bytes(event)
        return
    assert canonical_bytes(event) == expected
