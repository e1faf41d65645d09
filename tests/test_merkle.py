"""RFC 9162 Merkle hashing: streaming builder vs a naive recursive MTH."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.logs.merkle import (
    EMPTY_ROOT,
    TreeBuilder,
    leaf_hash,
    leaf_hashes,
    node_hash,
    root_of,
    tree_levels,
)


def naive_mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1, literally: split at the largest power of two < n."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + naive_mth(leaves[:k]) + naive_mth(leaves[k:])).digest()


def leaves_for(n: int, salt: bytes = b"") -> list[bytes]:
    return [hashlib.sha256(b"\x00" + salt + i.to_bytes(4, "big")).digest() for i in range(n)]


def test_domain_separated_hashes() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    left, right = b"L" * 32, b"R" * 32
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hashes([b"a", b"b"]) == [leaf_hash(b"a"), leaf_hash(b"b")]


def test_rfc9162_known_values() -> None:
    # Empty-leaf hash and two-leaf tree from the CT reference test data.
    empty_leaf = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert leaf_hash(b"").hex() == empty_leaf
    two = root_of(leaf_hashes([b"", b"\x00"]))
    assert two.hex() == "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"


@pytest.mark.parametrize("n", range(71))
def test_streaming_root_matches_naive(n: int) -> None:
    leaves = leaves_for(n)
    expected = naive_mth(leaves)
    builder = TreeBuilder()
    roots = []
    for leaf in leaves:
        builder.append(leaf)
        roots.append(builder.root())  # root() must not disturb later appends
    assert builder.size == n
    assert builder.root() == expected
    assert root_of(leaves) == expected
    assert roots == [naive_mth(leaves[: i + 1]) for i in range(n)]
    bulk = TreeBuilder()
    bulk.extend(leaves)
    assert bulk.root() == expected and bulk.size == n


def test_builder_memory_is_logarithmic() -> None:
    builder = TreeBuilder()
    builder.extend(leaves_for(1000))
    assert len(builder._stack) == bin(1000).count("1")


def test_rejects_wrong_length_leaf() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        TreeBuilder().append(b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        root_of([b"x" * 31])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), max_size=8), st.binary(max_size=4))
def test_mixed_appends_and_extends_match_naive(chunks: list[int], salt: bytes) -> None:
    all_leaves = leaves_for(sum(chunks), salt)
    builder = TreeBuilder()
    done = 0
    for i, size in enumerate(chunks):
        part = all_leaves[done : done + size]
        if i % 2:
            for leaf in part:
                builder.append(leaf)
        else:
            builder.extend(iter(part))
        done += size
        assert builder.root() == naive_mth(all_leaves[:done])
    assert builder.size == len(all_leaves)


@given(st.integers(0, 70), st.integers(1, 90), st.data())
def test_extend_levels_equals_extend_for_any_offset_and_cut(prefix: int, count: int, data: st.DataObject) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(prefix + count)]
    plain, reused = TreeBuilder(), TreeBuilder()
    plain.extend(leaves)
    reused.extend(leaves[:prefix])
    levels = tree_levels(leaves[prefix:])
    assert levels[-1][0] == root_of(leaves[prefix:])
    cut = data.draw(st.integers(0, count))
    reused.extend_levels(levels, 0, cut)
    reused.extend_levels(levels, cut)
    assert (reused.size, reused.root()) == (plain.size, plain.root())


def test_tree_levels_rejects_empty_and_short_hashes() -> None:
    with pytest.raises(ValueError, match="at least one leaf"):
        tree_levels([])
    with pytest.raises(ValueError, match="32 bytes"):
        tree_levels([b"short"])
