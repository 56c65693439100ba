"""The Merkle tree of the audit log, as RFC 9162 §2.1 defines it (Certificate Transparency v2, Trillian).

Pure stdlib (``hashlib``), no Django: the offline verifier imports it on an auditor's laptop.

Hashing (§2.1.1): ``leaf_hash(d) = SHA-256(0x00 ‖ d)``, ``node_hash(l, r) = SHA-256(0x01 ‖ l ‖ r)``; the root of the
empty tree is ``SHA-256("")``. For n > 1 leaves, with k the largest power of two smaller than n,
``MTH(D[n]) = node_hash(MTH(D[0:k]), MTH(D[k:n]))``.

Proofs and roots come from a **store of perfect-subtree hashes** rather than from all the leaves, so a table of such
rows answers them in O(log n) reads. ``get(level, index)`` returns the 32-byte hash of the complete subtree of
``2**level`` leaves that starts at leaf ``index * 2**level`` (level 0 holds the leaf hashes themselves). Every node of
an RFC 9162 tree is either such a perfect subtree or a right-edge node made of a few of them (the binary digits of
its size), which is why the store is enough. ``get`` must return the hash or raise (``KeyError`` or the caller's own
error); a ``None`` return is reported as ``MissingSubtreeError``.

Verification follows §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) step by step and returns ``bool``; it never
raises on malformed input (wrong types, hashes that are not 32 bytes, impossible indices) but answers ``False``.
"""

import hashlib
import hmac
from collections.abc import Callable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MissingSubtreeError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_leaf_hashes",
    "subtree_hashes_to_store",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

SubtreeGetter = Callable[[int, int], bytes]


class MissingSubtreeError(LookupError):
    """The store has no hash for a perfect subtree that a root or proof needs (``get`` returned ``None``)."""


# --- hashing (§2.1.1) ---------------------------------------------------------------------------------------------


def leaf_hash(leaf: bytes) -> bytes:
    """SHA-256(0x00 ‖ leaf): the hash of one leaf (for the audit log, an event's canonical JSON bytes)."""
    return hashlib.sha256(_LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right): the hash of an interior node from its children's hashes."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a whole list of leaf hashes (the empty list gives ``EMPTY_ROOT``). Reads every leaf: O(n)."""
    store = {}
    for level, index, digest in subtree_hashes_to_store(0, leaf_hashes, _no_stored_subtrees):
        store[level, index] = digest
    return root(len(leaf_hashes), lambda level, index: store[level, index])


# --- the store of perfect subtrees --------------------------------------------------------------------------------


def subtree_hashes_to_store(
    old_size: int, new_leaf_hashes: Sequence[bytes], get: SubtreeGetter
) -> list[tuple[int, int, bytes]]:
    """The ``(level, index, hash)`` rows that become complete when ``new_leaf_hashes`` are appended to a tree of
    ``old_size`` leaves, in the order they complete: one level-0 row per new leaf, plus every higher perfect subtree
    whose last leaf is among the new ones.

    ``get`` reads the rows already stored for the first ``old_size`` leaves; it is called only for left siblings
    that were complete before the append (at most one per level per completed subtree). Raises ``ValueError`` for a
    negative ``old_size`` or a leaf hash that is not 32 bytes, ``MissingSubtreeError`` when ``get`` lacks a row.
    """
    if old_size < 0:
        raise ValueError(f"old_size must be >= 0, not {old_size}")
    new_rows: dict[tuple[int, int], bytes] = {}
    for offset, digest in enumerate(new_leaf_hashes):
        _require_hash(digest, "leaf hash")
        position = old_size + offset
        new_rows[0, position] = digest
        _complete_ancestors(position, new_rows, get)
    return [(level, index, digest) for (level, index), digest in new_rows.items()]


def _complete_ancestors(position: int, new_rows: dict[tuple[int, int], bytes], get: SubtreeGetter) -> None:
    """Add to ``new_rows`` every perfect subtree whose last leaf is ``position`` (it completes with that leaf)."""
    level = 1
    # The subtree of 2**level leaves ending at `position` is complete exactly when position + 1 is a multiple of it.
    while (position + 1) % (1 << level) == 0:
        index = ((position + 1) >> level) - 1
        left = _row(level - 1, 2 * index, new_rows, get)
        right = _row(level - 1, 2 * index + 1, new_rows, get)
        new_rows[level, index] = node_hash(left, right)
        level += 1


def _row(level: int, index: int, new_rows: dict[tuple[int, int], bytes], get: SubtreeGetter) -> bytes:
    if (level, index) in new_rows:
        return new_rows[level, index]
    return _fetch(get, level, index)


def root(size: int, get: SubtreeGetter) -> bytes:
    """MTH of the first ``size`` leaves, from O(log size) stored perfect subtrees (``EMPTY_ROOT`` for size 0).

    Raises ``ValueError`` for a negative size, ``MissingSubtreeError`` when the store lacks a needed row.
    """
    if size < 0:
        raise ValueError(f"tree size must be >= 0, not {size}")
    if size == 0:
        return EMPTY_ROOT
    return _range_hash(0, size, get)


def _range_hash(start: int, end: int, get: SubtreeGetter) -> bytes:
    """MTH(D[start:end]) for a node of an RFC 9162 tree.

    Every such node starts at a multiple of the power of two at or above its size, so a power-of-two range is one
    stored subtree, and any other range splits into a perfect left part and a smaller right-edge part.
    """
    size = end - start
    if _is_power_of_two(size):
        level = size.bit_length() - 1
        return _fetch(get, level, start >> level)
    split = start + _largest_power_of_two_below(size)
    return node_hash(_range_hash(start, split, get), _range_hash(split, end, get))


def _fetch(get: SubtreeGetter, level: int, index: int) -> bytes:
    digest = get(level, index)
    if digest is None:
        raise MissingSubtreeError(f"no stored hash for the perfect subtree at level {level}, index {index}")
    return bytes(digest)


def _no_stored_subtrees(level: int, index: int) -> bytes:
    raise MissingSubtreeError(f"an empty store has no subtree at level {level}, index {index}")


# --- proofs (§2.1.3.1, §2.1.4.1) ----------------------------------------------------------------------------------


def inclusion_proof(index: int, size: int, get: SubtreeGetter) -> list[bytes]:
    """PATH(index, D[size]): the audit path of leaf ``index`` in the tree of the first ``size`` leaves, lowest level
    first, as RFC 9162 §2.1.3.1 defines it.

    Raises ``ValueError`` unless ``0 <= index < size``; ``MissingSubtreeError`` when the store lacks a needed row.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    return _path(index, 0, size, get)


def _path(index: int, start: int, end: int, get: SubtreeGetter) -> list[bytes]:
    if end - start == 1:
        return []
    split = start + _largest_power_of_two_below(end - start)
    if index < split:
        return [*_path(index, start, split, get), _range_hash(split, end, get)]
    return [*_path(index, split, end, get), _range_hash(start, split, get)]


def consistency_proof(first: int, second: int, get: SubtreeGetter) -> list[bytes]:
    """PROOF(first, D[second]) of RFC 9162 §2.1.4.1: the hashes that show the tree of ``first`` leaves is a prefix of
    the tree of ``second`` leaves.

    For ``first == 0`` or ``first == second`` there is nothing to prove and the proof is empty (as Trillian and
    Sigsum answer; the RFC defines PROOF only for 0 < first < second). Raises ``ValueError`` unless
    ``0 <= first <= second``; ``MissingSubtreeError`` when the store lacks a needed row.
    """
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from tree size {first} to tree size {second}")
    if first in (0, second):
        return []
    return _subproof(first, 0, second, True, get)


def _subproof(first: int, start: int, end: int, first_is_whole_subtree: bool, get: SubtreeGetter) -> list[bytes]:
    """SUBPROOF(first - start, D[start:end], b): ``first`` is the old tree's size in absolute leaf positions."""
    if first == end:
        # The old tree ends exactly here: the verifier knows this node (it is the old root) only when b is true.
        return [] if first_is_whole_subtree else [_range_hash(start, end, get)]
    split = start + _largest_power_of_two_below(end - start)
    if first <= split:
        return [*_subproof(first, start, split, first_is_whole_subtree, get), _range_hash(split, end, get)]
    return [*_subproof(first, split, end, False, get), _range_hash(start, split, get)]


# --- verification (§2.1.3.2, §2.1.4.2) ----------------------------------------------------------------------------


def verify_inclusion(leaf_hash: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    """True when ``path`` proves that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves whose root is
    ``root`` (RFC 9162 §2.1.3.2). False for any malformed input; never raises."""
    if not (_is_hash(leaf_hash) and _is_hash(root) and _is_index(index) and _is_index(size)):
        return False
    if not _is_hash_list(path) or index >= size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _shift_while_right_child_is_missing(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and hmac.compare_digest(r, root)


def verify_consistency(first: int, second: int, proof: Sequence[bytes], first_root: bytes, second_root: bytes) -> bool:
    """True when ``proof`` shows that the tree of ``first`` leaves with root ``first_root`` is a prefix of the tree
    of ``second`` leaves with root ``second_root`` (RFC 9162 §2.1.4.2).

    Outside the RFC's 0 < first < second: equal sizes are consistent when the proof is empty and the roots are equal;
    the empty tree (first 0) when the proof is empty and ``first_root`` is ``EMPTY_ROOT``. False for any malformed
    input; never raises.
    """
    if not (_is_index(first) and _is_index(second) and _is_hash(first_root) and _is_hash(second_root)):
        return False
    if not _is_hash_list(proof) or first > second:
        return False
    if first == second:
        return len(proof) == 0 and hmac.compare_digest(first_root, second_root)
    if first == 0:
        return len(proof) == 0 and hmac.compare_digest(first_root, EMPTY_ROOT)
    return _verify_consistency_rfc(first, second, list(proof), first_root, second_root)


def _verify_consistency_rfc(first: int, second: int, path: list[bytes], first_root: bytes, second_root: bytes) -> bool:
    # Step 1: an empty path proves nothing when 0 < first < second.
    if not path:
        return False
    # Step 2: a power-of-two old tree is itself a node of the new tree, so the proof leaves it out.
    if _is_power_of_two(first):
        path.insert(0, first_root)
    # Steps 3-4.
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            fn, sn = _shift_while_right_child_is_missing(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    # Step 7.
    return sn == 0 and hmac.compare_digest(fr, first_root) and hmac.compare_digest(sr, second_root)


def _shift_while_right_child_is_missing(fn: int, sn: int) -> tuple[int, int]:
    """RFC 9162 "if LSB(fn) is not set, right-shift both fn and sn equally until either LSB(fn) is set or fn is 0":
    on the right edge of the tree a node may have no sibling on some levels, which the path then skips."""
    while not fn & 1 and fn != 0:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


# --- small helpers ------------------------------------------------------------------------------------------------


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162: the largest power of two strictly smaller than ``n`` (``n`` > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_hash(value) -> bool:
    return isinstance(value, bytes | bytearray) and len(value) == HASH_SIZE


def _is_hash_list(values) -> bool:
    return isinstance(values, list | tuple) and all(_is_hash(value) for value in values)


def _is_index(value) -> bool:
    # bool is an int subclass; True as a tree size is a caller's bug, not a size of 1.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _require_hash(value, what: str) -> None:
    if not _is_hash(value):
        raise ValueError(f"{what} must be {HASH_SIZE} bytes")
