"""The whole log checked against itself and its signed heads: what ``manage.py verify_audit`` runs.

In one read-only REPEATABLE READ snapshot (the sequencer may append meanwhile):

1. every leaf, in ``leaf_index`` order: indices run 0, 1, 2 … without a gap, its event exists, and the stored leaf
   hash is the hash of the leaf recomputed from the event row (``audit.leaves``) — so an altered event or an
   altered leaf is named here;
2. the tree rebuilt from the recomputed leaf hashes: every stored ``MerkleNode`` is the hash it must be, none is
   missing and none is extra;
3. every stored tree head, smallest first: signed by the key its ``key_id`` names, which must be this exchange's
   current signing key or one of its previous keys (``AUDIT_PREVIOUS_PUBLIC_KEYS``: a rotation keeps old heads
   verifiable), with a valid Ed25519 signature by that key; no larger than the log, its root the root of that many
   recomputed leaves, its timestamp not before the previous head's, and a consistency proof from the previous head
   verifies (RFC 9162); the newest head holds every leaf (the sequencer stores a batch's leaves and its head in one
   transaction).

Failures are plain sentences naming the leaf, event, node or head; the first is the one to look at. Memory: about
64 bytes per event (the recomputed tree), reading leaves and nodes in chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection, transaction

from audit import keys, merkle, signing
from audit.tree import LEAF_COLUMNS_SQL, head_fields, leaf_of_row

_H = merkle.HASH_SIZE
_LEAVES_SQL = f"""
SELECT l.leaf_index, l.leaf_hash, l.event_id, {LEAF_COLUMNS_SQL}
FROM audit_auditleaf l LEFT JOIN audit_auditevent e ON e.id = l.event_id
ORDER BY l.leaf_index
"""  # noqa: S608 - constants only
_NODES_SQL = "SELECT level, index, hash FROM audit_merklenode ORDER BY level, index"
_HEADS_SQL = "SELECT tree_size, root_hash, timestamp, signature, key_id FROM audit_treehead ORDER BY tree_size"
_PENDING_SQL = """
SELECT count(*), extract(epoch FROM (statement_timestamp() - min(e.created_at)))
FROM audit_auditevent e WHERE NOT EXISTS (SELECT 1 FROM audit_auditleaf l WHERE l.event_id = e.id)
"""


class _FirstFailure(Exception):
    pass


@dataclass
class LogCheck:
    """The outcome: ``failures`` empty means the log is intact."""

    tree_size: int = 0
    heads: int = 0
    pending: int = 0  # committed events the sequencer has not appended yet (not a failure)
    oldest_pending_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    first_only: bool = False

    def fail(self, message: str) -> None:
        self.failures.append(message)
        if self.first_only:
            raise _FirstFailure


def audit_log_check(*, first_only: bool = False) -> LogCheck:
    """Check the whole log (see the module docstring); stop at the first failure when ``first_only``."""
    check = LogCheck(first_only=first_only)
    own_transaction = not connection.in_atomic_block  # else: the caller's transaction and snapshot (tests)
    with transaction.atomic():
        if own_transaction:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            levels = _check_leaves(check)
            _check_nodes(check, levels)
            _check_heads(check, levels)
        except _FirstFailure:
            pass
        with connection.cursor() as cursor:
            cursor.execute(_PENDING_SQL)
            pending, oldest = cursor.fetchone()
        check.pending, check.oldest_pending_seconds = pending, float(oldest or 0)
    return check


def _check_leaves(check: LogCheck) -> list[bytearray]:
    """Step 1; returns level 0 of the recomputed tree (the stored hash stands in where the event is gone)."""
    level0 = bytearray()
    expected = 0
    with connection.chunked_cursor() as cursor:
        cursor.execute(_LEAVES_SQL)
        while rows := cursor.fetchmany(2000):
            for leaf_index, stored, event_id, *event in rows:
                stored = bytes(stored)
                if leaf_index != expected:
                    check.fail(f"leaf {expected} is missing (the next stored leaf is {leaf_index})")
                    expected = leaf_index
                if event[0] is None:
                    check.fail(f"leaf {leaf_index}: its event id={event_id} is gone")
                    level0 += stored
                else:
                    recomputed = merkle.leaf_hash(leaf_of_row(event))
                    if recomputed != stored:
                        check.fail(
                            f"leaf {leaf_index} (event id={event_id}): the stored leaf hash is not the hash of the "
                            "event as stored (the event or its leaf was altered)"
                        )
                    level0 += recomputed
                expected += 1
    check.tree_size = expected
    return _build_levels(level0)


def _build_levels(level0: bytearray) -> list[bytearray]:
    """Every level of perfect subtrees over the leaf hashes: ``levels[k]`` holds the ``n >> k`` hashes of level k."""
    levels = [level0]
    while len(levels[-1]) >= 2 * _H:
        below = levels[-1]
        above = bytearray()
        for offset in range(0, len(below) - 2 * _H + 1, 2 * _H):
            above += merkle.node_hash(bytes(below[offset : offset + _H]), bytes(below[offset + _H : offset + 2 * _H]))
        levels.append(above)
    return levels


def _getter(levels: list[bytearray]):
    def get(level: int, index: int) -> bytes | None:
        if level >= len(levels) or (index + 1) * _H > len(levels[level]):
            return None
        return bytes(levels[level][index * _H : (index + 1) * _H])

    return get


def _check_nodes(check: LogCheck, levels: list[bytearray]) -> None:
    """Step 2: the stored nodes, in (level, index) order, merged with the nodes the recomputed tree has."""
    wanted = ((level, index) for level in range(1, len(levels)) for index in range(len(levels[level]) // _H))
    next_wanted = next(wanted, None)
    with connection.chunked_cursor() as cursor:
        cursor.execute(_NODES_SQL)
        while rows := cursor.fetchmany(5000):
            for level, index, stored in rows:
                while next_wanted is not None and next_wanted < (level, index):
                    check.fail(f"node level {next_wanted[0]} index {next_wanted[1]} is missing from the stored tree")
                    next_wanted = next(wanted, None)
                if next_wanted != (level, index):
                    check.fail(
                        f"node level {level} index {index} is not part of a tree of {check.tree_size} leaves "
                        "(an extra row)"
                    )
                    continue
                next_wanted = next(wanted, None)
                if bytes(stored) != bytes(levels[level][index * _H : (index + 1) * _H]):
                    check.fail(
                        f"node level {level} index {index}: the stored hash is not the hash of the leaves below it "
                        "(the node was altered)"
                    )
    if next_wanted is not None:
        check.fail(f"node level {next_wanted[0]} index {next_wanted[1]} is missing from the stored tree")


def _check_heads(check: LogCheck, levels: list[bytearray]) -> None:
    """Step 3: every head's signature, size, root, timestamp order and consistency with the previous head."""
    verification_keys = keys.verification_keys()
    own_key_id = keys.key_id()
    get = _getter(levels)
    previous = None
    with connection.cursor() as cursor:
        cursor.execute(_HEADS_SQL)
        heads = cursor.fetchall()
    check.heads = len(heads)
    for tree_size, root_hash, timestamp, signature, key_id in heads:
        root_hash = bytes(root_hash)
        label = f"tree head of size {tree_size}"
        document = head_fields(tree_size, root_hash, timestamp, signature, key_id)
        public_key = verification_keys.get(key_id)
        if public_key is None:
            check.fail(
                f"{label}: signed by key {key_id}, not by this exchange's key {own_key_id} nor by a previous key "
                "(AUDIT_PREVIOUS_PUBLIC_KEYS)"
            )
        elif not signing.verify_tree_head(public_key, document):
            check.fail(f"{label}: the signature does not verify (the head was altered)")
        if tree_size > check.tree_size:
            check.fail(f"{label}: the log holds only {check.tree_size} leaves (leaves were removed)")
            continue
        if merkle.root(tree_size, get) != root_hash:
            check.fail(f"{label}: its root is not the root of the first {tree_size} leaves (the log was rewritten)")
        if previous is not None:
            before_size, before_root, before_time = previous
            if timestamp < before_time:
                check.fail(f"{label}: its timestamp is earlier than the head of size {before_size}'s")
            proof = merkle.consistency_proof(before_size, tree_size, get)
            if not merkle.verify_consistency(before_size, tree_size, proof, before_root, root_hash):
                check.fail(f"{label}: it does not extend the head of size {before_size} (no consistency proof)")
        previous = (tree_size, root_hash, timestamp)
    newest = heads[-1][0] if heads else None
    if check.tree_size and newest != check.tree_size and (newest is None or newest < check.tree_size):
        check.fail(
            f"the log holds {check.tree_size} leaves but its newest signed head has tree size {newest or 0} "
            "(a head was removed, or leaves were added without one)"
        )
