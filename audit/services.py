"""Writing audit events. Call inside the transaction of the change being audited, so both commit or neither."""

from __future__ import annotations

from django.db import models

from audit.models import AuditEvent


def audit_record(*, action: str, obj: models.Model | None = None, actor=None, organization_id: int | None = None,
                 data: dict | None = None, ip: str | None = None, object_type: str = "",
                 object_id: str = "") -> AuditEvent:
    """Record ``action`` on ``obj`` (or ``object_type``/``object_id``) by ``actor`` for ``organization_id``.

    ``data`` must be JSON-serialisable (amounts as strings). Anonymous actors are stored as NULL.
    """
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditEvent.objects.create(action=action, object_type=object_type, object_id=object_id, actor=actor,
                                     organization_id=organization_id, data=data or {}, ip=ip)
