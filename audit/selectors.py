"""Reads over the audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from audit.models import AuditEvent, TreeHead

# Committed events without a leaf, from the sequencer's horizon on (an index range scan, not the whole table).
_OLDEST_PENDING_SQL = """
SELECT extract(epoch FROM (statement_timestamp() - min(e.created_at)))
FROM audit_auditevent e
WHERE e.txid >= (SELECT coalesce(max(s.horizon), 0) FROM audit_sequencerstate s)
  AND NOT EXISTS (SELECT 1 FROM audit_auditleaf l WHERE l.event_id = e.id)
"""

# The same events counted, with the oldest one's age (the metrics' sequencer lag).
_PENDING_SQL = """
SELECT count(*), extract(epoch FROM (statement_timestamp() - min(e.created_at)))
FROM audit_auditevent e
WHERE e.txid >= (SELECT coalesce(max(s.horizon), 0) FROM audit_sequencerstate s)
  AND NOT EXISTS (SELECT 1 FROM audit_auditleaf l WHERE l.event_id = e.id)
"""


def audit_events(
    *,
    organization_ids: list[int] | None = None,
    action: str | None = None,
    object_type: str | None = None,
    organization: int | None = None,
) -> QuerySet[AuditEvent]:
    """Events, newest first; only those of ``organization_ids`` when given (None = all), filtered by exact
    ``action``, ``object_type`` and ``organization`` id when those are given. Each carries its ``leaf`` (or none
    until the sequencer appends it)."""
    qs = AuditEvent.objects.select_related("actor", "leaf").order_by("-id")
    if organization_ids is not None:
        qs = qs.filter(organization_id__in=organization_ids)
    if action:
        qs = qs.filter(action=action)
    if object_type:
        qs = qs.filter(object_type=object_type)
    if organization:
        qs = qs.filter(organization_id=organization)
    return qs


def tree_heads() -> QuerySet[TreeHead]:
    """Every signed tree head, newest (largest) first."""
    return TreeHead.objects.order_by("-tree_size")


def sequencer_lag_seconds() -> float:
    """How long the oldest committed event without a leaf has waited (since it was recorded); 0 when none waits."""
    with connection.cursor() as cursor:
        cursor.execute(_OLDEST_PENDING_SQL)
        lag = cursor.fetchone()[0]
    return max(float(lag), 0.0) if lag is not None else 0.0


def sequencer_backlog() -> tuple[int, float]:
    """``(events, seconds)``: how many committed events wait for the sequencer, and how long the oldest of them has
    waited (0 when none waits). Events of transactions still open are not counted: they are not committed yet."""
    with connection.cursor() as cursor:
        cursor.execute(_PENDING_SQL)
        count, lag = cursor.fetchone()
    return int(count), max(float(lag), 0.0) if lag is not None else 0.0


def sequencer_status() -> str:
    """``"lagging"`` when a committed event has waited for the sequencer longer than
    ``AUDIT_SEQUENCER_LAG_SECONDS`` (the beat task is not running, a transaction has stayed open that long, or the
    stored tree no longer matches its head), else ``"ok"``."""
    return "lagging" if sequencer_lag_seconds() > settings.AUDIT_SEQUENCER_LAG_SECONDS else "ok"
