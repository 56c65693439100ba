"""Exports that an auditor verifies offline (``python -m audit.verify``): format ``gpux-audit-export/1``, described
in ``audit.verify``'s docstring.

An export proves a chosen set of events against the newest signed tree head: each event's leaf (recomputed from the
stored row), its leaf index and RFC 9162 audit path in that head's tree. Given the size of a head the auditor kept
from an earlier export (``previous_tree_size``), it adds that head and the consistency proof from it to the newest,
so the auditor also learns that nothing it saw before was changed or removed since.
"""

from __future__ import annotations

from collections.abc import Iterable

from audit import keys, tree
from audit.models import AuditLeaf, TreeHead
from audit.verify import EXPORT_FORMAT

__all__ = ["EXPORT_FORMAT", "NoTreeHead", "UnknownTreeHead", "export_document"]


class NoTreeHead(LookupError):
    """The log has no signed tree head yet (the sequencer has not run)."""


class UnknownTreeHead(LookupError):
    """``previous_tree_size`` is not the size of a signed tree head."""


def export_document(event_ids: Iterable[int], *, previous_tree_size: int | None = None) -> dict:
    """The export of the events ``event_ids`` that the newest signed head holds, with their inclusion proofs, and
    ``pending_event_ids``: those not in it yet (the verifier ignores that key). Raises ``NoTreeHead`` and
    ``UnknownTreeHead``."""
    head = tree.latest_head()
    if head is None:
        raise NoTreeHead("the audit log has no signed tree head yet")
    ids = sorted(set(event_ids))
    leaves = dict(
        AuditLeaf.objects.filter(event_id__in=ids, leaf_index__lt=head.tree_size).values_list("event_id", "leaf_index")
    )
    leaf_texts = tree.event_leaves(leaves)
    proofs = tree.inclusion_proofs(leaves.values(), head.tree_size)
    entries = [
        {
            "event_id": event_id,
            "leaf": leaf_texts[event_id].decode("utf-8"),
            "leaf_index": leaf_index,
            "tree_size": head.tree_size,
            "audit_path": [digest.hex() for digest in proofs[leaf_index]],
        }
        for event_id, leaf_index in sorted(leaves.items(), key=lambda item: item[1])
    ]
    heads = [head]
    consistency = []
    if previous_tree_size is not None and previous_tree_size != head.tree_size:
        previous = TreeHead.objects.filter(tree_size=previous_tree_size).first()
        if previous is None:
            raise UnknownTreeHead(f"no signed tree head has tree size {previous_tree_size}")
        heads.insert(0, previous)
        proof = tree.consistency_proof(previous.tree_size, head.tree_size)
        consistency.append(
            {"first": previous.tree_size, "second": head.tree_size, "proof": [digest.hex() for digest in proof]}
        )
    return {
        "format": EXPORT_FORMAT,
        "key_id": keys.key_id(),
        "tree_heads": [tree.head_document(item) for item in heads],
        "entries": entries,
        "consistency": consistency,
        "pending_event_ids": [event_id for event_id in ids if event_id not in leaves],
    }
