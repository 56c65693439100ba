"""Who sees which audit data (reporting layer: reads accounts). Platform auditors see everything; an issuer's members
and auditors see the events of that issuer and the flags of its programs; everyone else is refused (403).

Proofs of the audit log (``event_for_proof``) are open to one more reader: any member of the organization an event
concerns may prove that event, so a startup can check its own records against the signed log. The log's tree heads,
consistency proofs and public key concern no organization: every signed-in user may read them."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.selectors import audited_issuers, is_auditor, user_memberships
from audit import selectors
from audit.models import AuditEvent
from marketplace.core.exceptions import NotFound
from oversight.models import AnomalyFlag
from oversight.reports import spend_scope
from vouchers.models import Voucher

# The audit events of voucher spend, each with the voucher in ``data["voucher"]`` (vouchers.services).
SPEND_ACTIONS = ("voucher.hold", "voucher.release", "voucher.capture")


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


def event_for_proof(user, event_id: int) -> AuditEvent:
    """Event ``event_id`` when ``user`` may prove it: auditors any event; an issuer's members and auditors the events
    of their issuer (as ``events_visible``); any member of the organization the event concerns. Raises ``NotFound``
    otherwise (as if it did not exist)."""
    event = AuditEvent.objects.select_related("leaf").filter(pk=event_id).first()
    if event is None or not user.is_authenticated:
        raise NotFound("No such audit event.")
    if is_auditor(user):
        return event
    readable = set(user_memberships(user).values_list("organization_id", flat=True))
    if event.organization_id is None or event.organization_id not in readable:
        raise NotFound("No such audit event.")
    return event


def spend_event_ids(user, *, since=None, until=None) -> list[int]:
    """Ids of the voucher spend events (``SPEND_ACTIONS``) of the programs ``user`` may audit (``spend_scope``:
    every program for auditors, else the programs of their issuers), recorded in ``[since, until)`` when given.
    Raises 403 like ``spend_scope``."""
    issuers = spend_scope(user)
    events = AuditEvent.objects.filter(action__in=SPEND_ACTIONS)
    if issuers is not None:
        vouchers = Voucher.objects.filter(program__issuer_id__in=issuers).values_list("pk", flat=True)
        events = events.filter(data__voucher__in=list(vouchers))
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    return list(events.order_by("id").values_list("pk", flat=True))
