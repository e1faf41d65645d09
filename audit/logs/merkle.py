"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing, streamed.

What it does: leaf and interior node hashes with the RFC 9162 domain separation
(0x00 for leaves, 0x01 for nodes), the Merkle Tree Hash (MTH) of a sequence of
leaves computed by a streaming compact-range accumulator in O(log n) memory, and
RFC 9162 inclusion and consistency proofs: building them from a list of leaf
hashes (section 2.1.3.1 ``PATH`` and 2.1.4.1 ``PROOF``) and verifying them from
the roots alone (sections 2.1.3.2 and 2.1.4.2).

What it does not do: the streaming builder does not store the tree; proof
construction takes the leaf hashes it needs from the caller. It does not hash
records' JSON (callers pass bytes — see :func:`leaf_hash`) and knows nothing of
checkpoints or files (see :mod:`audit.logs.proofs`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_LEN = 32
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""MTH of the empty tree: SHA-256 of the empty string."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


_LEAF_STATE = hashlib.sha256(_LEAF_PREFIX)
"""SHA-256 state after the leaf prefix: copying it is cheaper than a new hash of prefix + data
(no OpenSSL algorithm fetch, no concatenated copy of the record)."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    h = _LEAF_STATE.copy()
    h.update(data)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def leaf_hashes(records: Iterable[bytes]) -> list[bytes]:
    """``leaf_hash`` of each record, in order (a faster bulk form)."""
    fresh = _LEAF_STATE.copy
    hashes = []
    for data in records:
        h = fresh()
        h.update(data)
        hashes.append(h.digest())
    return hashes


def _mth(leaves: Sequence[bytes]) -> bytes:
    """MTH of a non-empty run of leaf hashes, computed level by level.

    Pairing left to right and promoting an odd last node unchanged gives exactly
    the RFC 9162 tree (the left subtree is always the largest perfect one).
    """
    level = list(leaves)
    while len(level) > 1:
        level = _parent_level(level)
    return level[0]


def _parent_level(level: Sequence[bytes]) -> list[bytes]:
    """The next level up: pairs hashed left to right, an odd last node promoted unchanged."""
    sha = hashlib.sha256
    pairs = iter(level)  # zipped with itself: consecutive pairs; an odd last node is promoted below
    paired = [sha(_NODE_PREFIX + left + right).digest() for left, right in zip(pairs, pairs, strict=False)]
    if len(level) % 2:
        paired.append(level[-1])
    return paired


def tree_levels(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the RFC 9162 tree over a non-empty run of leaf hashes, leaves first.

    ``levels[h][i]`` is the root of leaves ``[i * 2**h, (i + 1) * 2**h)`` whenever that
    range is whole; ``levels[-1][0]`` is the MTH. ValueError on an empty run or a
    hash that is not 32 bytes. Kept so :meth:`TreeBuilder.extend_levels` can reuse
    the interior nodes instead of hashing the same leaves twice.
    """
    if not leaf_hashes:
        raise ValueError("tree_levels needs at least one leaf")
    for h in leaf_hashes:
        if len(h) != HASH_LEN:
            raise ValueError(f"leaf hash must be {HASH_LEN} bytes, got {len(h)}")
    levels = [list(leaf_hashes)]
    while len(levels[-1]) > 1:
        levels.append(_parent_level(levels[-1]))
    return levels


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
            self._push(_mth(leaves[start : start + chunk]), height)
            start += chunk
            remaining -= chunk

    def extend_levels(self, levels: Sequence[Sequence[bytes]], begin: int = 0, end: int | None = None) -> None:
        """Append leaves ``levels[0][begin:end]`` of a :func:`tree_levels` result.

        Each perfect subtree the builder closes is taken from ``levels`` when it is
        aligned there too, else hashed from the largest aligned nodes below it; a
        segment starting at a multiple of ``2**k`` leaves costs about ``1/2**k`` of
        :meth:`extend`'s hashing.
        """
        stop = len(levels[0]) if end is None else end
        start, remaining = begin, stop - begin
        while remaining > 0:
            chunk = 1 << (remaining.bit_length() - 1)
            if self._size:
                chunk = min(chunk, self._size & -self._size)
            height = chunk.bit_length() - 1
            reuse = min(height, (start & -start).bit_length() - 1) if start else height
            self._push(_mth(levels[reuse][start >> reuse : (start + chunk) >> reuse]), height)
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


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 9162 audit path ``PATH(index, leaves)``, lowest sibling first; ValueError if out of range."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf index {index} is not in a tree of size {len(leaves)}")
    path: list[bytes] = []
    lo, hi = 0, len(leaves)
    # Walk from the root down, collecting siblings; reversed at the end.
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            path.append(_mth(leaves[lo + k : hi]))
            hi = lo + k
        else:
            path.append(_mth(leaves[lo : lo + k]))
            lo += k
    path.reverse()
    return path


def consistency_path(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """RFC 9162 consistency proof ``PROOF(old_size, leaves)``; empty when the sizes are equal.

    ValueError unless ``1 <= old_size <= len(leaves)``.
    """
    n = len(leaves)
    if not 1 <= old_size <= n:
        raise ValueError(f"old size {old_size} is not between 1 and the tree size {n}")
    proof: list[bytes] = []
    lo, hi, m, complete = 0, n, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append(_mth(leaves[lo + k : hi]))
            hi = lo + k
        else:
            proof.append(_mth(leaves[lo : lo + k]))
            lo += k
            m -= k
            complete = False
    if not complete:
        proof.append(_mth(leaves[lo:hi]))
    proof.reverse()
    return proof


def root_from_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root an inclusion proof leads to (RFC 9162 2.1.3.2), or None if the proof is malformed."""
    if not 0 <= index < size or len(leaf) != HASH_LEN:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0 or len(p) != HASH_LEN:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    """Whether ``path`` proves leaf hash ``leaf`` is at ``index`` of the tree of ``size`` with ``root``."""
    return root_from_inclusion(leaf, index, size, path) == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` shows the tree (``old_size``, ``old_root``) is a prefix of (``new_size``, ``new_root``).

    RFC 9162 2.1.4.2. Equal sizes need an empty proof and equal roots; an empty
    old tree is a prefix of anything (and needs an empty proof).
    """
    if not 0 <= old_size <= new_size or any(len(c) != HASH_LEN for c in proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    if not path:
        return False
    return _consistency_roots(old_size - 1, new_size - 1, path) == (old_root, new_root)


def _consistency_roots(fn: int, sn: int, path: Sequence[bytes]) -> tuple[bytes, bytes] | None:
    """The old and new roots a non-empty consistency ``path`` leads to (RFC 9162 2.1.4.2, steps 4-7).

    ``fn`` and ``sn`` start as ``old_size - 1`` and ``new_size - 1``; None if the
    path is too long or too short for the sizes.
    """
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return (fr, sr) if sn == 0 else None
