"""Regressions named after hostile inputs: each ends in one input error, never a crash, hang or MemoryError."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest

from audit.errors import InputError
from audit.importers import cloudtrail_digest
from audit.importers.base import Malformed, iter_records
from audit.importers.cloudtrail_digest import validate_digests
from tests.conftest import FIXTURES

CT = FIXTURES / "sources" / "cloudtrail"
DEEP = 100_000  # far past Python's recursion limit


def test_deeply_nested_cloudtrail_record_is_an_input_error_not_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "nested_100k.json"
    path.write_text('{"Records": [' + "[" * DEEP + "]" * DEEP + "]}")
    with pytest.raises(InputError) as caught:
        list(iter_records(path, "Records"))
    assert str(caught.value) == f"{path}:1: record 1: JSON nests deeper than the limit of 64"


def test_deeply_nested_json_line_is_a_malformed_record_later_lines_still_read(tmp_path: Path) -> None:
    path = tmp_path / "nested_100k.jsonl"
    path.write_text('{"a": ' + "[" * DEEP + "]" * DEEP + "}\n" + '{"b": 1}\n')
    first, second = list(iter_records(path, None))
    assert isinstance(first.value, Malformed) and "nests deeper" in first.value.reason
    assert second.value == {"b": 1} and second.line == 2


def test_fifo_in_place_of_a_vendor_export_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "trail.json"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="is a FIFO, not a regular file"):
        list(iter_records(fifo, "Records"))


def test_gzip_digest_full_of_spaces_is_refused_at_its_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logs, digests = tmp_path / "logs", tmp_path / "digests"
    shutil.copytree(CT / "logs", logs)
    shutil.copytree(CT / "digests", digests)
    victim = sorted(digests.rglob("*.json.gz"))[0]
    monkeypatch.setattr(cloudtrail_digest, "MAX_DIGEST_BYTES", 1 << 20)
    victim.write_bytes(gzip.compress(b" " * (4 << 20)))  # 4 KiB on disk, 4 MiB inflated
    with pytest.raises(InputError) as caught:
        validate_digests(sorted(logs.iterdir()), digests, CT / "public-keys.json")
    assert caught.value.path == str(victim) and "limit" in caught.value.reason


def test_billion_laughs_yaml_aliases_are_refused_by_their_expanded_size(tmp_path: Path) -> None:
    from audit.records import load_yaml

    rows = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    rows += [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
    bomb = tmp_path / "catalog.yaml"
    bomb.write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError) as caught:
        load_yaml(bomb)
    assert caught.value.line == 1 and "expands to more than 1,000,000 values through aliases" in caught.value.reason
    few = tmp_path / "aliases.yaml"
    few.write_text("base: &b {region: us-east-1}\nstores: [*b, *b]\n")
    assert load_yaml(few) == {"base": {"region": "us-east-1"}, "stores": [{"region": "us-east-1"}] * 2}


def test_fifo_in_place_of_an_events_file_is_refused_without_blocking(tmp_path: Path) -> None:
    from audit.models import AccessEvent
    from audit.records import iter_jsonl

    fifo = tmp_path / "events.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="is a FIFO, not a regular file"):
        list(iter_jsonl(fifo, AccessEvent))


def test_deeply_nested_yaml_is_an_input_error_not_recursion_error(tmp_path: Path) -> None:
    from audit.records import load_yaml

    deep = tmp_path / "waivers.yaml"
    deep.write_text("waivers: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(InputError, match="nests too deeply"):
        load_yaml(deep)
