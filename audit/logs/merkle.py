"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing, streamed.

What it does: leaf and interior node hashes with the RFC 9162 domain separation
(0x00 for leaves, 0x01 for nodes), and the Merkle Tree Hash (MTH) of a sequence
of leaves computed by a streaming compact-range accumulator in O(log n) memory.

What it does not do: it does not store the tree, so it cannot by itself produce
inclusion or consistency proofs; it does not hash records' JSON (callers pass
bytes — see :func:`leaf_hash`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_LEN = 32
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""MTH of the empty tree: SHA-256 of the empty string."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def leaf_hashes(records: Iterable[bytes]) -> list[bytes]:
    """``leaf_hash`` of each record, in order (a faster bulk form)."""
    sha = hashlib.sha256
    return [sha(_LEAF_PREFIX + data).digest() for data in records]


def _mth(leaves: Sequence[bytes]) -> bytes:
    """MTH of a non-empty run of leaf hashes, computed level by level.

    Pairing left to right and promoting an odd last node unchanged gives exactly
    the RFC 9162 tree (the left subtree is always the largest perfect one).
    """
    sha = hashlib.sha256
    level = list(leaves)
    while len(level) > 1:
        paired = [
            sha(_NODE_PREFIX + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


class TreeBuilder:
    """Streaming MTH accumulator over appended leaf hashes.

    Keeps one hash per set bit of the size: the roots of the perfect subtrees
    that make up the RFC 9162 tree of the leaves so far (largest first). ``root()``
    folds them right to left without changing them, so appends may continue.
    Memory is O(log n); the tree itself is never stored.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._size = 0
        self._stack: list[bytes] = []

    @property
    def size(self) -> int:
        """Number of leaves appended."""
        return self._size

    def _push(self, subtree_root: bytes, height: int) -> None:
        """Add a perfect subtree of ``2**height`` leaves; the size must be a multiple of it."""
        stack = self._stack
        stack.append(subtree_root)
        self._size += 1 << height
        n = self._size >> height
        # Each trailing zero bit of the new size closes one perfect subtree.
        while not n & 1:
            right = stack.pop()
            stack[-1] = node_hash(stack[-1], right)
            n >>= 1

    def append(self, leaf_hash: bytes) -> None:
        """Append one leaf hash (32 bytes, already ``leaf_hash``-ed); ValueError otherwise."""
        if len(leaf_hash) != HASH_LEN:
            raise ValueError(f"leaf hash must be {HASH_LEN} bytes, got {len(leaf_hash)}")
        self._push(leaf_hash, 0)

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append several leaf hashes in order (bulk-hashed in perfect subtrees)."""
        leaves = leaf_hashes if isinstance(leaf_hashes, Sequence) else list(leaf_hashes)
        for h in leaves:
            if len(h) != HASH_LEN:
                raise ValueError(f"leaf hash must be {HASH_LEN} bytes, got {len(h)}")
        start, remaining = 0, len(leaves)
        while remaining:
            chunk = 1 << (remaining.bit_length() - 1)
            if self._size:
                chunk = min(chunk, self._size & -self._size)
            height = chunk.bit_length() - 1
            self._push(_mth(leaves[start:start + chunk]), height)
            start += chunk
            remaining -= chunk

    def root(self) -> bytes:
        """MTH of all leaves appended so far (``EMPTY_ROOT`` if none)."""
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        acc = stack[-1]
        for h in reversed(stack[:-1]):
            acc = node_hash(h, acc)
        return acc


def root_of(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH of a sequence of leaf hashes (``EMPTY_ROOT`` if empty)."""
    leaves = list(leaf_hashes)
    for h in leaves:
        if len(h) != HASH_LEN:
            raise ValueError(f"leaf hash must be {HASH_LEN} bytes, got {len(h)}")
    return _mth(leaves) if leaves else EMPTY_ROOT
