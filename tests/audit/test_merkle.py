"""audit.merkle against RFC 9162 §2.1: published Certificate Transparency vectors, and property tests against an
independent, naive implementation of MTH / PATH / PROOF written here straight from the RFC's recursive definitions
(recomputed from all the leaves every time, sharing no code with the store-based module)."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit import merkle

# --- the naive reference: RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1 written directly ------------------------------------


def ref_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def ref_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def ref_k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) over leaf *data*."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return ref_leaf(leaves[0])
    k = ref_k(len(leaves))
    return ref_node(ref_mth(leaves[:k]), ref_mth(leaves[k:]))


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n])."""
    n = len(leaves)
    if n == 1:
        return []
    k = ref_k(n)
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if b else [ref_mth(leaves)]
    k = ref_k(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], b), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def ref_proof(m: int, leaves: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) for 0 < m < n."""
    return ref_subproof(m, leaves, True)


# --- helpers ------------------------------------------------------------------------------------------------------


def leaves_for(count: int, seed: int = 0) -> list[bytes]:
    return [f"event {seed}/{i}".encode() for i in range(count)]


def store_from(leaves: list[bytes], batch_sizes: list[int] | None = None) -> dict:
    """Append the leaves' hashes to a dict store in the given batches (one batch when none are given)."""
    store: dict = {}
    hashes = [merkle.leaf_hash(leaf) for leaf in leaves]
    position = 0
    for size in [*(batch_sizes or []), len(hashes)]:
        batch = hashes[position : position + size]
        for level, index, digest in merkle.subtree_hashes_to_store(position, batch, lambda lv, ix: store[lv, ix]):
            store[level, index] = digest
        position += len(batch)
    return store


class CountingGetter:
    def __init__(self, store: dict):
        self.store = store
        self.calls = 0

    def __call__(self, level: int, index: int) -> bytes:
        self.calls += 1
        return self.store[level, index]


def flip_byte(digest: bytes, position: int = 0) -> bytes:
    return digest[:position] + bytes([digest[position] ^ 0x01]) + digest[position + 1 :]


# --- published vectors (RFC 6962 reference tests, used by Certificate Transparency and Trillian) ------------------

CT_LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [  # (leaf index, tree size, audit path)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CT_CONSISTENCY = [  # (first, second, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip


def test_hashing_is_domain_separated_sha256():
    assert merkle.EMPTY_ROOT.hex() == CT_ROOTS[0]
    assert merkle.leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert merkle.node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()


@pytest.mark.parametrize("size", range(9))
def test_roots_match_the_published_vectors(size):
    # given the CT reference leaves appended one at a time
    store = store_from(CT_LEAVES[:size], batch_sizes=[1] * size)
    # then the store-based root and the whole-list root are the published ones
    assert merkle.root(size, lambda lv, ix: store[lv, ix]).hex() == CT_ROOTS[size]
    assert merkle.root_from_leaf_hashes([merkle.leaf_hash(leaf) for leaf in CT_LEAVES[:size]]).hex() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "expected"), CT_INCLUSION)
def test_inclusion_proofs_match_the_published_vectors(index, size, expected):
    store = store_from(CT_LEAVES)
    proof = merkle.inclusion_proof(index, size, lambda lv, ix: store[lv, ix])
    assert [digest.hex() for digest in proof] == expected
    assert merkle.verify_inclusion(
        merkle.leaf_hash(CT_LEAVES[index]), index, size, proof, bytes.fromhex(CT_ROOTS[size])
    )


@pytest.mark.parametrize(("first", "second", "expected"), CT_CONSISTENCY)
def test_consistency_proofs_match_the_published_vectors(first, second, expected):
    store = store_from(CT_LEAVES)
    proof = merkle.consistency_proof(first, second, lambda lv, ix: store[lv, ix])
    assert [digest.hex() for digest in proof] == expected
    assert merkle.verify_consistency(
        first, second, proof, bytes.fromhex(CT_ROOTS[first]), bytes.fromhex(CT_ROOTS[second])
    )


# --- the store against the naive reference ------------------------------------------------------------------------


@st.composite
def trees(draw, max_size: int = 300):
    """Leaves of a random tree and random batch sizes in which they were appended."""
    size = draw(st.integers(min_value=1, max_value=max_size))
    seed = draw(st.integers(min_value=0, max_value=10**6))
    batches = draw(st.lists(st.integers(min_value=0, max_value=size), max_size=6))
    return leaves_for(size, seed), batches


@given(tree=trees(), data=st.data())
def test_store_root_equals_the_naive_mth_at_every_drawn_size(tree, data):
    leaves, batches = tree
    store = store_from(leaves, batches)
    size = data.draw(st.integers(min_value=0, max_value=len(leaves)), label="size")
    getter = CountingGetter(store)
    assert merkle.root(size, getter) == ref_mth(leaves[:size])
    # O(log n): one stored subtree per set bit of the size.
    assert getter.calls == bin(size).count("1")


@given(tree=trees(), data=st.data())
def test_inclusion_proof_equals_the_naive_path_and_verifies(tree, data):
    leaves, batches = tree
    store = store_from(leaves, batches)
    size = data.draw(st.integers(min_value=1, max_value=len(leaves)), label="size")
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    getter = CountingGetter(store)
    # when
    proof = merkle.inclusion_proof(index, size, getter)
    # then
    assert proof == ref_path(index, leaves[:size])
    assert getter.calls <= 2 * size.bit_length()
    assert merkle.verify_inclusion(ref_leaf(leaves[index]), index, size, proof, ref_mth(leaves[:size]))


@given(tree=trees(), data=st.data())
def test_consistency_proof_equals_the_naive_proof_and_verifies(tree, data):
    leaves, batches = tree
    store = store_from(leaves, batches)
    second = data.draw(st.integers(min_value=1, max_value=len(leaves)), label="second")
    first = data.draw(st.integers(min_value=1, max_value=second), label="first")
    getter = CountingGetter(store)
    # when
    proof = merkle.consistency_proof(first, second, getter)
    # then
    assert proof == (ref_proof(first, leaves[:second]) if first < second else [])
    assert getter.calls <= 2 * second.bit_length()
    assert merkle.verify_consistency(first, second, proof, ref_mth(leaves[:first]), ref_mth(leaves[:second]))


@given(tree=trees(max_size=100), data=st.data())
def test_appending_stores_exactly_the_newly_complete_subtrees(tree, data):
    leaves, _ = tree
    old_size = data.draw(st.integers(min_value=0, max_value=len(leaves)), label="old_size")
    store = store_from(leaves[:old_size])
    new_hashes = [ref_leaf(leaf) for leaf in leaves[old_size:]]
    # when
    rows = merkle.subtree_hashes_to_store(old_size, new_hashes, lambda lv, ix: store[lv, ix])
    # then every perfect subtree whose last leaf is new appears once, with the naive hash of its leaves
    expected = {
        (level, index)
        for level in range(len(leaves).bit_length())
        for index in range(len(leaves) >> level)
        if (index + 1) << level > old_size
    }
    assert sorted((level, index) for level, index, _ in rows) == sorted(expected)
    for level, index, digest in rows:
        assert digest == ref_mth(leaves[index << level : (index + 1) << level])


def test_appending_reports_a_store_that_lacks_a_needed_subtree():
    store = store_from(leaves_for(3))
    del store[1, 0]
    with pytest.raises(merkle.MissingSubtreeError):
        merkle.subtree_hashes_to_store(3, [ref_leaf(b"x")], lambda lv, ix: store.get((lv, ix)))
    with pytest.raises(KeyError):
        merkle.root(3, lambda lv, ix: store[lv, ix])


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (merkle.inclusion_proof, (3, 3)),
        (merkle.inclusion_proof, (-1, 3)),
        (merkle.inclusion_proof, (0, 0)),
        (merkle.consistency_proof, (4, 3)),
        (merkle.consistency_proof, (-1, 3)),
        (merkle.root, (-1,)),
    ],
)
def test_impossible_positions_are_refused(call, args):
    store = store_from(leaves_for(3))
    with pytest.raises(ValueError):
        call(*args, lambda lv, ix: store[lv, ix])


def test_trivial_consistency_cases():
    leaves = leaves_for(5)
    store = store_from(leaves)
    root5 = ref_mth(leaves)
    assert merkle.consistency_proof(0, 5, lambda lv, ix: store[lv, ix]) == []
    assert merkle.consistency_proof(5, 5, lambda lv, ix: store[lv, ix]) == []
    assert merkle.verify_consistency(0, 5, [], merkle.EMPTY_ROOT, root5)
    assert merkle.verify_consistency(5, 5, [], root5, root5)
    assert not merkle.verify_consistency(5, 5, [], root5, ref_mth(leaves[:4]))
    assert not merkle.verify_consistency(5, 5, [root5], root5, root5)
    assert not merkle.verify_consistency(0, 5, [], root5, root5)
    assert not merkle.verify_consistency(2, 5, [], ref_mth(leaves[:2]), root5)


# --- tampering ----------------------------------------------------------------------------------------------------


@given(tree=trees(), data=st.data())
def test_tampered_inclusion_proofs_fail(tree, data):
    leaves, _ = tree
    size = data.draw(st.integers(min_value=1, max_value=len(leaves)), label="size")
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    leaf, path, root = ref_leaf(leaves[index]), ref_path(index, leaves[:size]), ref_mth(leaves[:size])
    assert merkle.verify_inclusion(leaf, index, size, path, root)
    # a changed leaf, root or hash of the path
    assert not merkle.verify_inclusion(flip_byte(leaf, 31), index, size, path, root)
    assert not merkle.verify_inclusion(leaf, index, size, path, flip_byte(root))
    if path:
        at = data.draw(st.integers(min_value=0, max_value=len(path) - 1), label="flipped hash")
        flipped = [*path[:at], flip_byte(path[at], at % 32), *path[at + 1 :]]
        assert not merkle.verify_inclusion(leaf, index, size, flipped, root)
        assert not merkle.verify_inclusion(leaf, index, size, path[:-1], root)
    assert not merkle.verify_inclusion(leaf, index, size, [*path, root], root)
    # another index in the same tree
    other_index = data.draw(st.integers(min_value=0, max_value=size), label="other index")
    if other_index != index:
        assert not merkle.verify_inclusion(leaf, other_index, size, path, root)
    # another size: checked against that size's true root, since a head binds a root to its size
    other_size = data.draw(st.integers(min_value=1, max_value=len(leaves) + 3), label="other size")
    if other_size != size:
        assert not merkle.verify_inclusion(leaf, index, other_size, path, ref_mth((leaves * 2)[:other_size]))


@given(tree=trees(), data=st.data())
def test_tampered_consistency_proofs_fail(tree, data):
    leaves, _ = tree
    if len(leaves) < 2:
        leaves = leaves_for(2)
    second = data.draw(st.integers(min_value=2, max_value=len(leaves)), label="second")
    first = data.draw(st.integers(min_value=1, max_value=second - 1), label="first")
    proof = ref_proof(first, leaves[:second])
    first_root, second_root = ref_mth(leaves[:first]), ref_mth(leaves[:second])
    assert merkle.verify_consistency(first, second, proof, first_root, second_root)
    # changed roots or a changed, missing or extra hash
    assert not merkle.verify_consistency(first, second, proof, flip_byte(first_root), second_root)
    assert not merkle.verify_consistency(first, second, proof, first_root, flip_byte(second_root))
    at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="flipped hash")
    flipped = [*proof[:at], flip_byte(proof[at], 31 - at % 32), *proof[at + 1 :]]
    assert not merkle.verify_consistency(first, second, flipped, first_root, second_root)
    assert not merkle.verify_consistency(first, second, proof[:-1], first_root, second_root)
    assert not merkle.verify_consistency(first, second, [*proof, second_root], first_root, second_root)
    # sizes swapped, or another first size checked against that size's true root
    assert not merkle.verify_consistency(second, first, proof, second_root, first_root)
    other_first = data.draw(st.integers(min_value=1, max_value=second - 1), label="other first")
    if other_first != first:
        assert not merkle.verify_consistency(other_first, second, proof, ref_mth(leaves[:other_first]), second_root)


H = b"\x11" * 32


@pytest.mark.parametrize(
    "args",
    [
        (H[:31], 0, 1, [], H),  # short leaf hash
        (H, 0, 1, [], H + b"\x00"),  # long root
        ("ab" * 32, 0, 1, [], H),  # hex text instead of bytes
        (H, 0, 2, [H[:16]], H),  # short path hash
        (H, 0, 2, None, H),  # no path
        (H, 0, 2, [None], H),
        (H, -1, 2, [H], H),
        (H, 2, 2, [H], H),
        (H, 0, 0, [], H),
        (H, True, 2, [H], H),  # a bool is not an index
        (H, 0, "2", [H], H),
    ],
)
def test_verify_inclusion_answers_false_to_malformed_input(args):
    assert merkle.verify_inclusion(*args) is False


@pytest.mark.parametrize(
    "args",
    [
        (1, 2, [H[:31]], H, H),
        (1, 2, "not a list", H, H),
        (1, 2, [H], H[:1], H),
        (1, 2, [H], H, None),
        (3, 2, [H], H, H),
        (-1, 2, [H], H, H),
        (1, None, [H], H, H),
        (1.0, 2, [H], H, H),
    ],
)
def test_verify_consistency_answers_false_to_malformed_input(args):
    assert merkle.verify_consistency(*args) is False
