"""Who sees which audit data (reporting layer: reads accounts). Platform auditors see everything; an issuer's members
and auditors see the events of that issuer and the flags of its programs; everyone else is refused (403)."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.selectors import audited_issuers, is_auditor
from audit import selectors
from audit.models import AuditEvent
from oversight.models import AnomalyFlag
from oversight.reports import spend_scope


def can_read_audit(user) -> bool:
    return bool(user and user.is_authenticated and (is_auditor(user) or audited_issuers(user).exists()))


def events_visible(user, **filters) -> QuerySet[AuditEvent]:
    """Events ``user`` may read, filtered (see ``audit.selectors.audit_events``). Raises 403 like ``spend_scope``."""
    return selectors.audit_events(organization_ids=spend_scope(user), **filters)


def flags_visible(user) -> QuerySet[AnomalyFlag]:
    """Flags ``user`` may read: all for auditors, their programs' for issuer members. Raises 403 otherwise."""
    issuers = spend_scope(user)
    qs = AnomalyFlag.objects.select_related("reviewer")
    return qs if issuers is None else qs.filter(program__issuer_id__in=issuers)
