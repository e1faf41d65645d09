"""Bounded reading: each test is named after the hostile input it stops."""

from __future__ import annotations

import gzip
import os
import threading
from pathlib import Path

import orjson
import pytest

from audit.errors import InputError
from audit.reading import Limits, check_depth, iter_lines, open_maybe_gzip, open_regular, read_bytes, read_text

SMALL = Limits(max_file_bytes=1000, max_whole_file_bytes=100, max_line_bytes=10, max_decompressed_bytes=50, max_depth=4)


def test_fifo_in_place_of_a_file_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "00000000.jsonl"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            read_bytes(fifo)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "reading a FIFO blocked"
    [exc] = outcome
    assert isinstance(exc, InputError) and str(exc) == f"{fifo}: is a FIFO, not a regular file"


def test_directory_in_place_of_a_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="directory"):
        read_bytes(tmp_path)


def test_symlink_to_a_secret_is_refused_when_not_following(tmp_path: Path) -> None:
    secret = tmp_path / "environ"
    secret.write_text("RESIDENCY_AUDIT_KEY_PASSPHRASE=hunter2\n")
    link = tmp_path / "policy.csv"
    link.symlink_to(secret)
    with pytest.raises(InputError) as caught:
        read_text(link, follow_symlinks=False)
    assert "symlink" in str(caught.value) and "hunter2" not in str(caught.value)
    assert read_text(link) == secret.read_text()  # following stays possible where the caller allows it


def test_oversized_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "segment.jsonl"
    with big.open("wb") as fh:  # sparse: costs no disk, would cost memory if read
        fh.truncate(2 * 1024 * 1024 * 1024)
    with pytest.raises(InputError, match="more than the limit of 100"):
        read_bytes(big, limits=SMALL)
    with pytest.raises(InputError, match="more than the limit of 1000"):
        open_regular(big, limits=SMALL)


def test_one_huge_line_is_refused_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"{}\n" + b"x" * 11 + b"\n")
    with open_regular(path) as fh, pytest.raises(InputError) as caught:
        list(iter_lines(fh, path=path, limits=SMALL))
    assert caught.value.line == 2 and "longer than the limit of 10" in str(caught.value)


def test_lines_at_the_cap_are_read(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"123456789\n" + b"last")
    with open_regular(path) as fh:
        assert list(iter_lines(fh, path=path, limits=SMALL)) == [(1, b"123456789\n"), (2, b"last")]


def test_gzip_bomb_stops_at_the_decompressed_cap(tmp_path: Path) -> None:
    bomb = tmp_path / "trail.json.gz"
    bomb.write_bytes(gzip.compress(b"0" * 10_000))
    assert bomb.stat().st_size < 100
    with open_maybe_gzip(bomb, limits=SMALL) as fh, pytest.raises(InputError, match="inflates to more than"):
        fh.read()


def test_corrupt_gzip_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "trail.json.gz"
    bad.write_bytes(gzip.compress(b'{"Records": []}')[:-6] + b"\x00" * 6)
    with open_maybe_gzip(bad) as fh, pytest.raises(InputError, match="gzip"):
        fh.read()


def test_plain_file_passes_through_open_maybe_gzip(tmp_path: Path) -> None:
    plain = tmp_path / "trail.json"
    plain.write_bytes(b'{"Records": []}')
    with open_maybe_gzip(plain) as fh:
        assert fh.read() == b'{"Records": []}'


def test_deep_nesting_is_refused_without_recursion_error(tmp_path: Path) -> None:
    deep: object = []
    for _ in range(200_000):  # far past Python's recursion limit
        deep = [deep]
    with pytest.raises(InputError, match="nests deeper than the limit of 64") as caught:
        check_depth(deep, path="events.jsonl", line=3)
    assert caught.value.line == 3
    check_depth(orjson.loads(b'{"a": [{"b": [1, 2]}]}'), path="x", limits=SMALL)  # depth 4 is allowed
    with pytest.raises(InputError):
        check_depth(orjson.loads(b'{"a": [{"b": [[1]]}]}'), path="x", limits=SMALL)


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        read_bytes(tmp_path / "absent.jsonl")
    assert str(caught.value) == f"{tmp_path / 'absent.jsonl'}: no such file"


def test_undecodable_text_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.csv"
    path.write_bytes(b"p, a\np, \xff\n")
    with pytest.raises(InputError) as caught:
        read_text(path)
    assert caught.value.line == 2
