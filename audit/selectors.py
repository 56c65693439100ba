"""Reads over the audit log."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import QuerySet

from audit.models import AuditEvent

# Recompute every event's hash in SQL with the same function the insert trigger uses, next to the previous
# event's stored hash, in chain order.
_CHAIN_SQL = """
SELECT id, seq, prev_hash, hash,
       audit_event_digest(prev_hash, seq, created_at, actor_id, organization_id, action, object_type, object_id,
                          data, ip) AS expected_hash,
       lag(hash, 1, '') OVER (ORDER BY seq) AS previous_stored_hash,
       lag(seq, 1, 0::bigint) OVER (ORDER BY seq) AS previous_seq
FROM audit_auditevent
ORDER BY seq
"""


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    seq: int | None
    reason: str

    def __str__(self):
        return f"audit event id={self.event_id} (seq {self.seq}): {self.reason}"


def audit_chain_breaks(*, first_only: bool = False) -> list[ChainBreak]:
    """Walk the hash chain in ``seq`` order and list every broken link (empty list = intact).

    A link is broken when an event's stored hash differs from the recomputed one (its fields were changed), when its
    ``prev_hash`` is not the previous event's hash (an event was removed or re-ordered), or when ``seq`` skips.
    """
    breaks: list[ChainBreak] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM audit_auditevent WHERE seq IS NULL ORDER BY id")
        breaks += [ChainBreak(row[0], None, "not in the chain (no seq)") for row in cursor.fetchall()]
        cursor.execute(_CHAIN_SQL)
        for event_id, seq, prev_hash, stored, expected, previous_stored, previous_seq in cursor:
            if seq != previous_seq + 1:
                breaks.append(ChainBreak(event_id, seq, f"sequence jumps from {previous_seq} to {seq}"))
            elif prev_hash != previous_stored:
                breaks.append(ChainBreak(event_id, seq, "prev_hash does not match the previous event's hash"))
            elif stored != expected:
                breaks.append(ChainBreak(event_id, seq, "hash does not match the event's contents"))
            if breaks and first_only:
                break
    return breaks


def audit_events(
    *,
    organization_ids: list[int] | None = None,
    action: str | None = None,
    object_type: str | None = None,
    organization: int | None = None,
) -> QuerySet[AuditEvent]:
    """Events, newest first; only those of ``organization_ids`` when given (None = all), filtered by exact
    ``action``, ``object_type`` and ``organization`` id when those are given."""
    qs = AuditEvent.objects.select_related("actor").order_by("-seq", "-id")
    if organization_ids is not None:
        qs = qs.filter(organization_id__in=organization_ids)
    if action:
        qs = qs.filter(action=action)
    if object_type:
        qs = qs.filter(object_type=object_type)
    if organization:
        qs = qs.filter(organization_id=organization)
    return qs
