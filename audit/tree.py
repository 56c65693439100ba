"""The stored Merkle tree: roots and proofs from the ``AuditLeaf`` / ``MerkleNode`` rows, in few queries.

``audit.merkle`` computes roots and proofs from a store of perfect-subtree hashes, ``get(level, index)``. Which
subtrees it asks for depends only on the sizes and indices involved, never on the hashes, so ``run_with_store``
calls the computation twice: first with a getter that notes the keys and answers a placeholder, then — after one
query per table for all of them — with the real rows. A proof of a tree of n leaves costs two queries, not log n.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import TypeVar

from django.db import connection

from audit import merkle
from audit.leaves import event_leaf as _event_leaf
from audit.leaves import utc_text
from audit.models import AuditEvent, TreeHead

T = TypeVar("T")
_PLACEHOLDER = bytes(merkle.HASH_SIZE)

# The columns of an event that make its leaf (audit.leaves.event_leaf), in this order.
LEAF_COLUMNS_SQL = (
    "e.id, e.created_at, e.actor_id, e.organization_id, e.action, e.object_type, e.object_id, e.data::text, host(e.ip)"
)


def leaf_of_row(row) -> bytes:
    """The leaf bytes of an event row selected with ``LEAF_COLUMNS_SQL``."""
    event_id, created_at, actor, organization, action, object_type, object_id, data_json, ip = row
    return _event_leaf(
        id=event_id,
        created_at=created_at,
        actor=actor,
        organization=organization,
        action=action,
        object_type=object_type,
        object_id=object_id,
        data_json=data_json,
        ip=ip,
    )


def event_leaves(event_ids: Iterable[int]) -> dict[int, bytes]:
    """The leaf bytes of each event, recomputed from its stored row (``{event id: leaf}``; missing ids left out)."""
    ids = sorted(set(event_ids))
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {LEAF_COLUMNS_SQL} FROM audit_auditevent e WHERE e.id = ANY(%s)", [ids])  # noqa: S608
        return {row[0]: leaf_of_row(row) for row in cursor.fetchall()}


def event_leaf(event: AuditEvent) -> bytes:
    """The leaf bytes of one stored event (re-read from the database, as the sequencer reads it)."""
    return event_leaves([event.pk])[event.pk]


def fetch_subtrees(keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The stored hashes of the perfect subtrees ``(level, index)`` that exist (leaves for level 0)."""
    keys = set(keys)
    found: dict[tuple[int, int], bytes] = {}
    leaf_indexes = sorted(index for level, index in keys if level == 0)
    nodes = sorted((level, index) for level, index in keys if level > 0)
    with connection.cursor() as cursor:
        if leaf_indexes:
            cursor.execute(
                "SELECT leaf_index, leaf_hash FROM audit_auditleaf WHERE leaf_index = ANY(%s)", [leaf_indexes]
            )
            found.update({(0, index): bytes(digest) for index, digest in cursor.fetchall()})
        if nodes:
            cursor.execute(
                "SELECT n.level, n.index, n.hash FROM audit_merklenode n "
                "JOIN unnest(%s::int[], %s::bigint[]) AS k(level, index) ON n.level = k.level AND n.index = k.index",
                [[level for level, _ in nodes], [index for _, index in nodes]],
            )
            found.update({(level, index): bytes(digest) for level, index, digest in cursor.fetchall()})
    return found


def run_with_store(compute: Callable[[merkle.SubtreeGetter], T], known: dict | None = None) -> T:
    """``compute(get)`` over the stored tree (plus ``known`` rows not stored yet), fetching every subtree it needs
    in at most two queries (see the module docstring). Raises ``merkle.MissingSubtreeError`` when a row is missing."""
    known = known or {}
    wanted: set[tuple[int, int]] = set()

    def note(level: int, index: int) -> bytes:
        if (level, index) not in known:
            wanted.add((level, index))
        return _PLACEHOLDER

    compute(note)
    store = {**fetch_subtrees(wanted), **known}
    return compute(lambda level, index: store.get((level, index)))


def stored_tree_size() -> int:
    """How many leaves the log holds (leaf indices run 0 … size - 1)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(leaf_index) + 1, 0) FROM audit_auditleaf")
        return cursor.fetchone()[0]


def root_hash(tree_size: int) -> bytes:
    """MTH of the first ``tree_size`` leaves, from the stored subtrees."""
    return run_with_store(lambda get: merkle.root(tree_size, get))


def inclusion_proof(leaf_index: int, tree_size: int) -> list[bytes]:
    """RFC 9162 audit path of leaf ``leaf_index`` in the tree of ``tree_size`` leaves. ``ValueError`` unless
    ``0 <= leaf_index < tree_size``."""
    return run_with_store(lambda get: merkle.inclusion_proof(leaf_index, tree_size, get))


def inclusion_proofs(leaf_indexes: Iterable[int], tree_size: int) -> dict[int, list[bytes]]:
    """Audit paths of many leaves in one tree, with every subtree they need read in two queries."""
    indexes = sorted(set(leaf_indexes))
    return run_with_store(lambda get: {i: merkle.inclusion_proof(i, tree_size, get) for i in indexes})


def consistency_proof(first: int, second: int) -> list[bytes]:
    """RFC 9162 consistency proof from the tree of ``first`` leaves to the tree of ``second``. ``ValueError``
    unless ``0 <= first <= second``."""
    return run_with_store(lambda get: merkle.consistency_proof(first, second, get))


# --- tree heads ---------------------------------------------------------------------------------------------------


def timestamp_text(moment: dt.datetime) -> str:
    """A head's timestamp as it is signed and served: UTC ISO 8601 ending in ``Z`` (``audit.canonical``'s form,
    which is also how the API writes datetimes)."""
    return utc_text(moment)


def head_document(head: TreeHead) -> dict:
    """``{"tree_size", "root_hash", "timestamp", "signature", "key_id"}`` of a head, as the API and exports give it."""
    return head_fields(head.tree_size, head.root_hash, head.timestamp, head.signature, head.key_id)


def head_fields(tree_size: int, root_hash: bytes, timestamp: dt.datetime, signature: str, key_id: str) -> dict:
    """The served form of a head's stored fields (root in lowercase hex, timestamp as signed)."""
    return {
        "tree_size": tree_size,
        "root_hash": bytes(root_hash).hex(),
        "timestamp": timestamp_text(timestamp),
        "signature": signature,
        "key_id": key_id,
    }


def latest_head() -> TreeHead | None:
    return TreeHead.objects.order_by("-tree_size").first()
