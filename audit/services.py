"""Writing audit events. Call inside the transaction of the change being audited, so both commit or neither.

An event is a plain INSERT (no lock, anywhere in the transaction); ``audit.sequencer`` appends it to the signed log
after the commit."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models

from audit.models import AuditEvent


def audit_event(
    *,
    action: str,
    obj: models.Model | None = None,
    actor=None,
    organization_id: int | None = None,
    data: dict | None = None,
    ip: str | None = None,
    object_type: str = "",
    object_id: str = "",
) -> AuditEvent:
    """An unsaved event for ``audit_record_many``; the arguments are those of ``audit_record``."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditEvent(
        action=action,
        object_type=object_type,
        object_id=object_id,
        actor=actor,
        organization_id=organization_id,
        data=data or {},
        ip=ip,
    )


def audit_record(
    *,
    action: str,
    obj: models.Model | None = None,
    actor=None,
    organization_id: int | None = None,
    data: dict | None = None,
    ip: str | None = None,
    object_type: str = "",
    object_id: str = "",
) -> AuditEvent:
    """Record ``action`` on ``obj`` (or ``object_type``/``object_id``) by ``actor`` for ``organization_id``.

    ``data`` must be JSON-serialisable (amounts as strings). Anonymous actors are stored as NULL.
    """
    event = audit_event(
        action=action,
        obj=obj,
        actor=actor,
        organization_id=organization_id,
        data=data,
        ip=ip,
        object_type=object_type,
        object_id=object_id,
    )
    event.save(force_insert=True)
    return event


def audit_record_many(events: Iterable[AuditEvent]) -> list[AuditEvent]:
    """Record unsaved events (``audit_event``) with one INSERT, in the order given (their ids, hence their order in
    the log, follow it). Like ``audit_record``, a plain INSERT: no lock; the sequencer appends them to the log once
    the transaction commits.
    """
    events = list(events)
    return AuditEvent.objects.bulk_create(events) if events else []
