"""The canonical serializer: its orjson fast path writes exactly what rfc8785 writes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.canonical import canonical_bytes, is_canonical, orjson_is_canonical_for
from tests.conftest import FIXTURES

_keys = st.text(max_size=6) | st.text(alphabet=st.characters(max_codepoint=127), max_size=6)
_scalars = st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=False) | st.text(max_size=12)
_values = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4), max_leaves=24
)


@settings(max_examples=1000, deadline=None)
@given(_values)
def test_canonical_bytes_equal_rfc8785_for_any_json_value(value: Any) -> None:
    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        with pytest.raises((rfc8785.CanonicalizationError, UnicodeEncodeError)):
            canonical_bytes(value)
        return
    assert canonical_bytes(value) == expected


def test_fast_path_covers_events_and_refuses_what_it_cannot_write() -> None:
    event = orjson.loads((FIXTURES / "events.jsonl").read_bytes().splitlines()[0])
    assert orjson_is_canonical_for(event)
    assert not orjson_is_canonical_for({"x": 1.5})
    assert not orjson_is_canonical_for({"\u00e9": 1})  # non-ASCII key: UTF-16 order decides
    assert not orjson_is_canonical_for([2**53])
    assert orjson_is_canonical_for([2**53 - 1, -(2**53 - 1), "\u2028", None, True])


def test_is_canonical() -> None:
    assert is_canonical(b'{"a":1,"b":[true,null]}')
    assert not is_canonical(b'{"b":1,"a":2}')
    assert not is_canonical(b'{"a": 1}')
    assert not is_canonical(b"not json")
