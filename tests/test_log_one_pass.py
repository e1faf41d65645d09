"""Sealing in one pass: a log whose checkpoints are signed at the end is the log :func:`seal` writes.

An import writes segments as it converts and signs the checkpoints once its report
(named by the origin) is known (:func:`audit.logs.writer.open_seal` without
``signing``); segment lines and leaf hashes are written in batches. Both must give the
same bytes as signing each checkpoint as its segment closes, and as the plain
definition: each segment the records' lines, its sidecar their leaf hashes, each
checkpoint the RFC 9162 root of everything so far. The event-id index built at once
(:meth:`IdIndex.load_new`) finds the same first duplicate as one built row by row.
"""

from __future__ import annotations

import base64
import itertools
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.canonical import canonical_bytes
from audit.errors import InputError
from audit.logs import writer
from audit.logs.index import INDEX_FILE, IdIndex
from audit.logs.merkle import leaf_hash, root_of
from audit.logs.verify import verify_log
from audit.logs.writer import open_seal, seal
from audit.signing.keys import Keyring, KeyringEntry, public_key_pem, signing_key_from_seed

KEY = signing_key_from_seed(b"\x43" * 32)
RING = Keyring(keys=(KeyringEntry(key_id=KEY.key_id, public_key=public_key_pem(KEY.public)),))
TIME = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
BUDGET = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _records(ids: list[int], pad: int) -> list[bytes]:
    return [canonical_bytes({"event_id": f"ev-{i}", "pad": "x" * pad}) for i in ids]


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _one_pass(records: list[bytes], out: Path, segment_size: int, *, allow_empty: bool = False) -> None:
    with open_seal(out, key=KEY, record_type="t", segment_size=segment_size) as sealer:
        for record in records:
            sealer.add_identified(record, orjson.loads(record)["event_id"])
        sealer.finish("origin", TIME, allow_empty=allow_empty)


def _payload(out: Path, index: int) -> dict[str, object]:
    envelope = orjson.loads((out / "checkpoints" / f"{index:08d}.json").read_bytes())
    body: dict[str, object] = orjson.loads(base64.b64decode(envelope["payload"]))
    return body


@BUDGET
@given(count=st.integers(0, 23), segment_size=st.integers(1, 7), pad=st.integers(0, 40), flush=st.integers(1, 200))
def test_one_pass_seal_is_the_seal(
    tmp_path_factory: pytest.TempPathFactory, count: int, segment_size: int, pad: int, flush: int
) -> None:
    root = tmp_path_factory.mktemp("one")
    records = _records(list(range(count)), pad)
    if count:
        seal(
            records, out=root / "seal", key=KEY, origin="origin", record_type="t", segment_size=segment_size, time=TIME
        )
    else:
        seal([], out=root / "seal", key=KEY, origin="origin", record_type="t", time=TIME, allow_empty=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(writer, "_FLUSH_BYTES", flush)  # batches of any size write the same files
        _one_pass(records, root / "one", segment_size, allow_empty=True)
    assert _files(root / "one") == _files(root / "seal")
    assert verify_log(root / "one", RING).ok
    segments = [records[i : i + segment_size] for i in range(0, count, segment_size)] or [[]]
    for index, segment in enumerate(segments):
        name = f"{index:08d}"
        assert (root / "one" / "segments" / f"{name}.jsonl").read_bytes() == b"".join(r + b"\n" for r in segment)
        assert (root / "one" / "segments" / f"{name}.leaves").read_bytes() == b"".join(map(leaf_hash, segment))
        body = _payload(root / "one", index)
        so_far = records[: index * segment_size + len(segment)]
        assert body["tree_size"] == len(so_far) and body["root"] == root_of(map(leaf_hash, so_far)).hex()


@BUDGET
@given(
    count=st.integers(0, 23),
    segment_size=st.integers(1, 7),
    cuts=st.lists(st.integers(0, 23), max_size=5),
    flush=st.integers(1, 200),
    bad=st.sampled_from([None, b"", b'{"a":\n1}']),
    at=st.integers(0, 22),
)
def test_records_added_in_batches_are_the_records_added_one_by_one(
    tmp_path_factory: pytest.TempPathFactory,
    count: int,
    segment_size: int,
    cuts: list[int],
    flush: int,
    bad: bytes | None,
    at: int,
) -> None:
    """add_all, in batches cut anywhere, writes the files add_identified writes, and fails at the same record."""
    root = tmp_path_factory.mktemp("batch")
    records = _records(list(range(count)), 3)
    if bad is not None and count:
        records[at % count] = bad
    ids = [f"ev-{i}" for i in range(count)]
    bounds = [0, *sorted(c for c in cuts if c <= count), count]

    def run(out: Path, batched: bool) -> dict[str, bytes] | str:
        try:
            with open_seal(out, key=KEY, record_type="t", segment_size=segment_size) as sealer:
                if batched:
                    for start, end in itertools.pairwise(bounds):
                        sealer.add_all(records[start:end], ids[start:end])
                else:
                    for record, found in zip(records, ids, strict=True):
                        sealer.add_identified(record, found)
                sealer.finish("origin", TIME, allow_empty=True)
        except InputError as exc:
            return str(exc)
        return _files(out)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(writer, "_FLUSH_BYTES", flush)
        assert run(root / "batched", True) == run(root / "single", False)


def test_one_pass_refuses_what_seal_refuses(tmp_path: Path) -> None:
    records = _records([1, 2, 3, 2], 0)
    with pytest.raises(InputError) as sealed:
        seal(records, out=tmp_path / "a", key=KEY, origin="o", record_type="t", segment_size=2, source="in.jsonl")
    with pytest.raises(InputError) as one, open_seal(tmp_path / "b", key=KEY, record_type="t", segment_size=2) as s:
        for record in records:
            s.add(record)
        s.finish("o")
    assert str(sealed.value) == "in.jsonl:4: duplicate id 'ev-2' (first at line 2)"
    assert str(one.value) == "record 4: duplicate id 'ev-2' (first: record 2)"
    with (
        pytest.raises(InputError, match="no records to seal"),
        open_seal(tmp_path / "c", key=KEY, record_type="t") as s,
    ):
        s.finish("o")
    with (
        pytest.raises(InputError, match="record 2 contains a newline"),
        open_seal(tmp_path / "d", key=KEY, record_type="t") as s,
    ):
        s.add(records[0])
        s.add(b'{"a":\n1}')
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing left: no log, no staging, no lock


def test_a_body_that_stops_before_finish_leaves_nothing(tmp_path: Path) -> None:
    with open_seal(tmp_path / "log", key=KEY, record_type="t", segment_size=1) as sealer:
        for record in _records([1, 2, 3], 0):
            sealer.add(record)
    assert list(tmp_path.iterdir()) == []


def test_kept_index_built_at_once_has_its_id_lookup(tmp_path: Path) -> None:
    records = _records(list(range(25)), 0)
    seal(records, out=tmp_path / "log", key=KEY, origin="o", record_type="t", segment_size=10, keep_index=True)
    db = sqlite3.connect(tmp_path / "log" / INDEX_FILE)
    try:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "ids_by_id" in names
        assert db.execute("SELECT count(*) FROM ids").fetchone() == (25,)
    finally:
        db.close()


@settings(max_examples=100, deadline=None)
@given(ids=st.lists(st.integers(0, 12), max_size=30))
def test_index_loaded_at_once_finds_the_same_first_duplicate(ids: list[int]) -> None:
    rows = [(leaf, f"id-{value}", leaf // 4, leaf % 4 + 1) for leaf, value in enumerate(ids)]
    found = []
    for bulk in (False, True):
        index = IdIndex()
        try:
            if bulk:
                index.load_new()
            index.begin()
            index.add(rows)
            found.append(index.first_duplicate())
        finally:
            index.close()
    assert found[0] == found[1]
    assert (found[0] is None) == (len(set(ids)) == len(ids))


def test_load_new_needs_an_empty_index() -> None:
    index = IdIndex()
    try:
        index.add([(0, "a", 0, 1)])
        with pytest.raises(ValueError, match="empty"):
            index.load_new()
    finally:
        index.close()


@settings(max_examples=150, deadline=None)
@given(
    ids=st.lists(
        st.text(max_size=6) | st.sampled_from(['"', "\\", "\x00", "a\x00b", "\u2028", "é", "\U0001f600", "\ud800"])
    ),
    first=st.integers(0, 2**40),
    segment=st.integers(0, 10**8 - 1),
)
def test_ids_added_as_one_json_array_are_the_rows_added_one_by_one(ids: list[str], first: int, segment: int) -> None:
    """SQLite reads back every id exactly; ids JSON would escape (or orjson cannot write) are bound one by one."""
    stored: list[object] = []
    for by_lines in (False, True):
        index = IdIndex()
        try:
            try:
                if by_lines:
                    index.add_lines(first, segment, ids)
                else:
                    index.add((first + n, found, segment, n + 1) for n, found in enumerate(ids))
            except UnicodeEncodeError:  # a lone surrogate: SQLite cannot store it either way
                stored.append("UnicodeEncodeError")
                continue
            stored.append(index._db.execute("SELECT leaf, id, segment, line FROM ids ORDER BY leaf").fetchall())
        finally:
            index.close()
    assert stored[0] == stored[1]
