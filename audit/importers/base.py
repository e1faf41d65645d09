"""The importer interface and the streaming readers every vendor parser shares.

A :class:`Source` names a vendor format and converts one vendor record (a parsed
JSON object) into zero or more :class:`~audit.models.AccessEvent`\\ s, or says why the
record is out of scope. :func:`iter_records` streams the records of one file, plain
or gzip (detected by its magic bytes), whether it is a JSON array, an object with one
array member (CloudTrail's ``{"Records": [...]}``) or JSON Lines, holding one record
at a time in memory. Problems with a record raise :class:`RecordError`, which the
import pipeline turns into a one-line ``file:line: record N: reason`` input error.

This module does not enrich, seal or validate digests.
"""

from __future__ import annotations

import codecs
import gzip
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, BinaryIO, NamedTuple, Protocol, cast

import orjson
from pydantic import ValidationError

from audit.errors import InputError, RecordError
from audit.importers.enrichment import Enrichment
from audit.importers.whole_file import whole_file_records
from audit.models import AccessEvent, Action
from audit.reading import DEFAULT_LIMITS, check_depth, iter_lines, open_maybe_gzip, open_regular
from audit.records import describe_validation_error

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20
MAX_RECORD = 16 << 20  # a value still incomplete after this many bytes is reported as malformed
_WS = re.compile(r"\s*")
_FRACTION = re.compile(r"\.(\d+)")


@dataclass(frozen=True)
class Malformed:
    """The value of a JSON Lines record that does not parse (converted into a RecordError)."""

    reason: str


class RawRecord(NamedTuple):
    """One vendor record as read from a file: 1-based index and starting line.

    A named tuple (made once per record, three times faster than a frozen dataclass);
    its ``index`` field hides ``tuple.index``.
    """

    path: Path
    index: int  # type: ignore[assignment]
    line: int
    value: Any


@dataclass(frozen=True)
class OutOfScope:
    """A well-formed record that is not an access to user data (counted, not sealed)."""

    reason: str


Converted = AccessEvent | OutOfScope


class Encoded(NamedTuple):
    """An access event as it is sealed: its canonical bytes, its id and what it left unresolved."""

    data: bytes
    event_id: str
    unresolved: tuple[str, ...]


class FileEvents(NamedTuple):
    """The access events of a whole file as the fast path answers it: canonical bytes and ids, in order, and counts."""

    records: int
    data: list[bytes]
    ids: list[str]
    unresolved: dict[str, int]
    """Events per kind left unresolved (``principal``, ``resource``), as the events' ``unresolved`` lists count."""
    out_of_scope: dict[str, int]
    """Records (or resources) per out-of-scope reason."""


class FastConvert(Protocol):
    """A source's fast path for one import: exactly what :attr:`Source.convert` and
    :func:`~audit.canonical.canonical_bytes` would give, or ``None`` when it cannot prove
    that (the caller then takes the general way, errors included)."""

    def __call__(self, raw: RawRecord) -> list[Encoded | OutOfScope] | None:
        """One record's answer, or None."""

    def whole_file(self, path: Path, keys: tuple[str, ...]) -> FileEvents | None:
        """What the answers of every record of a file :func:`iter_records` would read with ``keys`` add up to
        (:class:`FileEvents`), or None."""


@dataclass(frozen=True)
class Source:
    """One vendor format: its name, the array key of its files, its converter and optional fast path.

    ``fast`` builds, for one import (one enrichment), the :data:`FastConvert` used
    before ``convert``.
    """

    name: str
    vendor: str
    array_key: str | None
    convert: Callable[[RawRecord, Enrichment], Iterable[Converted]]
    fast: Callable[[Enrichment], FastConvert] | None = None


# ------------------------------------------------------------------ streaming readers


def _open_text(path: Path) -> IO[bytes]:
    """The file's bytes (inflated if gzip), through the bounded reader (regular files, size caps)."""
    return cast(IO[bytes], open_maybe_gzip(path))


def _too_deep(path: Path, line: int, what: str) -> InputError:
    return InputError(f"{what}: JSON nests deeper than the limit of {DEFAULT_LIMITS.max_depth}", path=path, line=line)


class _Reader:
    """Incremental UTF-8 text buffer over a (possibly gzip) file, tracking line numbers."""

    def __init__(self, fh: IO[bytes], path: Path) -> None:
        self._fh = fh
        self._path = path
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf = ""
        self.pos = 0
        self.line = 1  # line of buf[pos]
        self.eof = False

    def more(self) -> bool:
        """Read another chunk into the buffer; False at end of file."""
        if self.eof:
            return False
        try:
            data = self._fh.read(CHUNK)
            text = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8: {exc.reason}", path=self._path, line=self.line) from None
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise InputError(f"cannot read: {exc}", path=self._path, line=self.line) from None
        if not data:
            self.eof = True
        self.buf = self.buf[self.pos :] + text
        self.pos = 0
        return bool(data) or bool(text)

    def advance(self, end: int) -> None:
        self.line += self.buf.count("\n", self.pos, end)
        self.pos = end

    def skip_ws(self) -> str | None:
        """Skip whitespace; the next character, or None at end of file."""
        while True:
            match = _WS.match(self.buf, self.pos)
            assert match is not None
            self.advance(match.end())
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return None

    def value(self, what: str) -> Any:
        """Decode one JSON value at the cursor, reading more input as needed."""
        if self.skip_ws() is None:
            raise InputError(f"{what}: unexpected end of file", path=self._path, line=self.line)
        decoder = json.JSONDecoder()
        while True:
            try:
                value, end = decoder.raw_decode(self.buf, self.pos)
            except RecursionError:
                raise _too_deep(self._path, self.line, what) from None
            except json.JSONDecodeError as exc:
                if len(self.buf) - self.pos <= MAX_RECORD and self.more():
                    continue  # the value may continue in the next chunk
                raise self._malformed(what, exc) from None
            if end == len(self.buf) and isinstance(value, int | float) and self.more():
                continue  # a number may continue in the next chunk
            try:
                check_depth(value, path=self._path, line=self.line)
            except InputError:
                raise _too_deep(self._path, self.line, what) from None
            self.advance(end)
            return value

    def _malformed(self, what: str, exc: json.JSONDecodeError) -> InputError:
        """The error at the value's first line, naming the line of the fault when it is a later one."""
        fault = self.line + self.buf.count("\n", self.pos, exc.pos)
        where = f" at line {fault}" if fault != self.line else ""
        return InputError(f"{what}: malformed JSON{where}: {exc.msg}", path=self._path, line=self.line)

    def expect(self, chars: str, what: str) -> str:
        char = self.skip_ws()
        if char is None or char not in chars:
            found = "end of file" if char is None else repr(char)
            raise InputError(f"{what}: expected one of {chars!r}, found {found}", path=self._path, line=self.line)
        self.advance(self.pos + 1)
        return char


def _array_items(reader: _Reader, path: Path, first_index: int = 1) -> Iterator[RawRecord]:
    index = first_index
    if reader.skip_ws() == "]":
        reader.advance(reader.pos + 1)
        return
    while True:
        reader.skip_ws()
        line = reader.line
        yield RawRecord(path, index, line, unicode_only(reader.value(f"record {index}")))
        index += 1
        if reader.expect(",]", f"after record {index - 1}") == "]":
            return
        if reader.skip_ws() == "]":
            raise InputError(f"trailing comma after record {index - 1} (not valid JSON)", path=path, line=reader.line)


def _lines(fh: IO[bytes], path: Path) -> Iterator[tuple[int, bytes]]:
    number = 0
    try:
        for number, raw in iter_lines(cast(BinaryIO, fh), path=path):
            yield number, raw
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read: {exc}", path=path, line=number + 1) from None


def _json_lines(fh: IO[bytes], path: Path) -> Iterator[RawRecord]:
    index = 0
    for number, raw in _lines(fh, path):
        if not raw.strip():
            continue
        index += 1
        try:
            value: Any = json.loads(raw)
            check_depth(value, path=path, line=number)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            value = Malformed(f"malformed JSON: {exc.msg if isinstance(exc, json.JSONDecodeError) else 'not UTF-8'}")
        except (RecursionError, InputError):
            value = Malformed(f"JSON nests deeper than the limit of {DEFAULT_LIMITS.max_depth}")
        yield RawRecord(path, index, number, unicode_only(value))


LONE_SURROGATE = Malformed("a string holds a lone surrogate escape (\\ud800-\\udfff): not Unicode text")
_SURROGATE = re.compile("[\ud800-\udfff]")


def unicode_only(value: Any) -> Any:
    """``value``, or :data:`LONE_SURROGATE` if a key or string of it holds a surrogate code point.

    Python's JSON reader accepts an unpaired ``\\ud800`` escape (a pair decodes to one
    character, so any surrogate left is lone); no model, canonical form or UTF-8 file can
    hold it. orjson refuses to write one, so a value it writes needs no walk; orjson's
    own reader (:mod:`audit.importers.whole_file`) never yields one.
    """
    if isinstance(value, Malformed):
        return value
    try:
        orjson.dumps(value)
        return value
    except orjson.JSONEncodeError:
        pass
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return LONE_SURROGATE
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


WRAPPER_KEYS = ("Records", "data", "entries")
"""Members whose array holds the records: CloudTrail ``Records``, the OCI CLI's ``data``, Cloud Logging ``entries``."""
PARQUET_MAGIC = b"PAR1"


def record_keys(array_key: str | None) -> tuple[str, ...]:
    """The wrapper keys :func:`iter_records` looks for, in order: the source's, then :data:`WRAPPER_KEYS`."""
    return tuple(dict.fromkeys(k for k in (array_key, *WRAPPER_KEYS) if k))


def iter_records(path: Path, array_key: str | None = None) -> Iterator[RawRecord]:
    """Stream the records of one file, its framing detected by content.

    Recognised: Parquet (``PAR1``, needs pyarrow); a JSON array; an object whose first
    member is ``array_key`` or one of :data:`WRAPPER_KEYS` holding an array; one or
    more JSON objects, pretty-printed or not (a file whose first line is a whole
    value is JSON Lines); all of them plain or gzip. A JSON Lines line that does not
    parse is yielded as :class:`Malformed` (later lines can still be read); malformed
    JSON in any other framing raises :class:`InputError` at its line. A one-line array file
    of at most 8 MiB is parsed at once (:mod:`audit.importers.whole_file`), with the same result.
    """
    if _starts_with(path, PARQUET_MAGIC):
        yield from parquet_records(path)
        return
    keys = record_keys(array_key)
    whole = whole_file_records(path, keys)
    if whole is not None:
        for index, value in enumerate(whole, start=1):
            yield RawRecord(path, index, 1, value)
        return
    with _open_text(path) as fh:
        reader = _Reader(fh, path)
        first = reader.skip_ws()
        if first is None:
            raise InputError("empty file", path=path)
        if first == "[":
            reader.advance(reader.pos + 1)
            yield from _array_items(reader, path)
            _expect_end(reader, path)
            return
        if first == "{":
            key = _wrapper_key(reader, keys)
            if key is not None:
                yield from _keyed_array(reader, path, key)
                return
            if _is_document(reader):
                yield from _documents(reader, path)
                return
    with _open_text(path) as fh:
        yield from _json_lines(fh, path)


def _starts_with(path: Path, magic: bytes) -> bool:
    with open_regular(path) as fh:
        try:
            return fh.read(len(magic)) == magic
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None


def _wrapper_key(reader: _Reader, keys: tuple[str, ...]) -> str | None:
    """The wrapper member the object at the cursor starts with, if any (cursor not moved)."""
    while len(reader.buf) - reader.pos < 256 and reader.more():
        pass
    for key in keys:
        if re.compile(r"\{\s*" + re.escape(json.dumps(key)) + r"\s*:\s*\[").match(reader.buf, reader.pos):
            return key
    return None


def _is_document(reader: _Reader) -> bool:
    """Whether the object at the cursor is pretty-printed (its first line is not a whole JSON value)."""
    while "\n" not in reader.buf[reader.pos :] and len(reader.buf) - reader.pos <= MAX_RECORD and reader.more():
        pass
    first_line = reader.buf[reader.pos :].split("\n", 1)[0].strip()
    if first_line == "{":
        return True
    try:
        json.loads(first_line)
    except (json.JSONDecodeError, RecursionError):
        return "\n" in reader.buf[reader.pos :] and _spans_lines(reader)
    return False


def _spans_lines(reader: _Reader) -> bool:
    try:
        _, end = json.JSONDecoder().raw_decode(reader.buf, reader.pos)
    except (json.JSONDecodeError, RecursionError):
        return False
    return "\n" in reader.buf[reader.pos : end]


def _documents(reader: _Reader, path: Path) -> Iterator[RawRecord]:
    """One or more JSON objects one after another, each possibly spanning lines."""
    index = 1
    while reader.skip_ws() is not None:
        line = reader.line
        yield RawRecord(path, index, line, unicode_only(reader.value(f"record {index}")))
        index += 1


def _jsonable(value: Any) -> Any:
    """A Parquet cell as JSON-like data (timestamps as RFC 3339 text, bytes as UTF-8 or hex)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.hex()
    return value


def parquet_records(path: Path) -> Iterator[RawRecord]:
    """The rows of a Parquet file (as Amazon Security Lake writes OCSF), one record each; ``line`` is the row."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("reading Parquet needs pyarrow (pip install 'residency-audit[parquet]')", path=path) from None
    with open_regular(path) as fh:
        row = 0
        try:
            for batch in pq.ParquetFile(fh).iter_batches(batch_size=1024):
                for value in batch.to_pylist():
                    row += 1
                    cell = _jsonable(value)
                    check_depth(cell, path=path, line=row)
                    yield RawRecord(path, row, row, cell)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowException subclasses these
            raise InputError(f"unreadable Parquet: {exc}", path=path, line=row + 1) from None


def _keyed_array(reader: _Reader, path: Path, key: str) -> Iterator[RawRecord]:
    reader.expect("{", "file")
    seen = False
    while True:
        name = reader.value("member name")
        if not isinstance(name, str):
            raise InputError("member name is not a string", path=path, line=reader.line)
        reader.expect(":", f"member {name!r}")
        if name == key and not seen:
            seen = True
            reader.expect("[", f"member {name!r}")
            yield from _array_items(reader, path)
        else:
            reader.value(f"member {name!r}")
        if reader.expect(",}", "top-level object") == "}":
            break
    _expect_end(reader, path)


def _expect_end(reader: _Reader, path: Path) -> None:
    if reader.skip_ws() is not None:
        raise InputError("trailing data after the JSON document", path=path, line=reader.line)


# ------------------------------------------------------------------ field helpers


def field(record: Any, dotted: str, *, required: bool = True) -> Any:
    """``record["a"]["b"]`` for ``"a.b"``; RecordError naming the path when required and absent."""
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or value.get(part) is None:
            if required:
                raise RecordError(f"missing required field {dotted}")
            return None
        value = value[part]
    return value


def text_field(record: Any, dotted: str, *, required: bool = True) -> str | None:
    """A string field (non-empty when required)."""
    value = field(record, dotted, required=required)
    if value is None:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise RecordError(f"field {dotted} is not a non-empty string")
    return value


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# Epoch numbers by magnitude: below 10^11 seconds, 10^14 milliseconds, 10^17 microseconds, else nanoseconds
# (each unit's range starts in 1973 and ends past 2200, so a time between EARLIEST and LATEST has one reading).
_EPOCH_UNITS = ((1e11, 1.0), (1e14, 1e3), (1e17, 1e6), (1e20, 1e9))


def parse_epoch(value: int | float, name: str) -> datetime:
    """An epoch number in seconds, milliseconds, microseconds or nanoseconds (told by magnitude), range-checked."""
    if value != value or value in (float("inf"), float("-inf")):
        raise RecordError(f"field {name}: {value!r} is not a timestamp")
    per_second = next((scale for limit, scale in _EPOCH_UNITS if abs(value) < limit), None)
    if per_second is None or value < 0:
        raise RecordError(f"field {name}: {value!r} is not an epoch time in s, ms, us or ns")
    seconds, rest = divmod(int(value), int(per_second))
    micros = round((rest + (value - int(value))) * 1e6 / per_second)
    parsed = EPOCH + timedelta(seconds=seconds, microseconds=micros)
    if not EARLIEST <= parsed < LATEST:
        raise RecordError(f"field {name}: {value!r} is {parsed.isoformat()}, outside {EARLIEST.year}-{LATEST.year}")
    return parsed


def parse_time(value: Any, name: str) -> datetime:
    """RFC 3339 text (fractions up to nanoseconds, ``Z``) or an epoch number (see :func:`parse_epoch`), as UTC."""
    if isinstance(value, bool):
        raise RecordError(f"field {name} is not a timestamp")
    if isinstance(value, int | float):
        return parse_epoch(value, name)
    if not isinstance(value, str):
        raise RecordError(f"field {name} is not a timestamp")
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value.strip(), count=1)
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise RecordError(f"field {name}: {value!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise RecordError(f"field {name}: {value!r} has no timezone")
    return parsed.astimezone(UTC)


# Operation verbs (the leading word of an API operation name) and the action they are.
_VERBS: tuple[tuple[str, Action], ...] = (
    ("BatchGet", "read"),
    ("BatchWrite", "write"),
    ("Select", "query"),
    ("Query", "query"),
    ("Scan", "query"),
    ("ExecuteStatement", "query"),
    ("Search", "query"),
    ("Get", "read"),
    ("Head", "read"),
    ("List", "read"),
    ("Read", "read"),
    ("Describe", "read"),
    ("Download", "download"),
    ("Export", "export"),
    ("Copy", "copy"),
    ("Restore", "copy"),
    ("Put", "write"),
    ("Post", "write"),
    ("Create", "write"),
    ("Update", "write"),
    ("Upload", "write"),
    ("Write", "write"),
    ("Patch", "write"),
    ("Delete", "delete"),
    ("Remove", "delete"),
)


def action_for_operation(operation: str) -> Action | None:
    """The action an API operation name performs, by its leading verb (``GetObject`` -> read)."""
    for verb, action in _VERBS:
        if operation.startswith(verb) and operation[len(verb) : len(verb) + 1] in ("", *_UPPER):
            return action
    return None


_UPPER = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ_")


def build_event(
    source: Source | str,
    raw: RawRecord,
    vendor_event_id: str,
    *,
    suffix: str = "",
    unresolved: Iterable[str] = (),
    **fields: Any,
) -> AccessEvent:
    """An AccessEvent with its id (``source:vendor-id[suffix]``) and pointer to the vendor record."""
    name = source if isinstance(source, str) else source.name
    value = {
        "event_id": f"{name}:{vendor_event_id}{suffix}",
        "source_record": {
            "source": name,
            "file": raw.path.name,
            "index": raw.index,
            "vendor_event_id": vendor_event_id,
            "unresolved": tuple(unresolved),
        },
        **fields,
    }
    try:
        return AccessEvent.model_validate(value)
    except ValidationError as exc:
        raise RecordError(describe_validation_error(exc)) from None
