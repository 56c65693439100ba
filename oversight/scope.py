"""Who sees which audit data (reporting layer: reads accounts). Platform auditors see everything; an issuer's members
and auditors see the events of that issuer and the flags of its programs; everyone else is refused (403).

Proofs of the audit log (``event_for_proof``) are open to one more reader: any member of the organization an event
concerns may prove that event, so a startup can check its own records against the signed log. The log's tree heads,
consistency proofs and public key concern no organization: every signed-in user may read them.

A city's idle capacity (listed vs booked node-hours) is for platform staff and auditors (every city) and for the
members and auditors of the issuers of that city or running programs there."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext

from accounts.selectors import audited_issuers, is_auditor, is_platform_staff, user_memberships
from audit import selectors
from audit.models import AuditEvent
from marketplace.core.exceptions import ApplicationError, NotFound
from oversight.models import AnomalyFlag
from oversight.reports import spend_scope
from settlement.selectors import statement_for
from vouchers.models import Voucher, VoucherProgram

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
        raise NotFound(gettext("No such audit event."))
    if is_auditor(user):
        return event
    readable = set(user_memberships(user).values_list("organization_id", flat=True))
    if event.organization_id is None or event.organization_id not in readable:
        raise NotFound(gettext("No such audit event."))
    return event


def idle_capacity_cities(user) -> list[str] | None:
    """The cities whose idle capacity ``user`` may read: every city (None) for platform staff and auditors; for an
    issuer's members and auditors, the issuer's own city and the cities of its programs. Raises ``ApplicationError``
    403 for anyone else."""
    if is_platform_staff(user) or is_auditor(user):
        return None
    issuers = list(audited_issuers(user))
    cities = {issuer.city for issuer in issuers} | set(
        VoucherProgram.objects.filter(issuer__in=issuers).values_list("city", flat=True)
    )
    if not cities:
        raise ApplicationError(
            gettext("Only a city's voucher issuers, platform staff and auditors can see its idle capacity."),
            status=403,
            code="permission_denied",
        )
    return sorted(cities)


def idle_capacity_city(user, city: str) -> str:
    """``city`` when ``user`` may read its idle capacity (``idle_capacity_cities``); ``ApplicationError`` 403
    otherwise."""
    cities = idle_capacity_cities(user)
    if cities is not None and city not in cities:
        raise ApplicationError(
            gettext("You can see the idle capacity of your own cities only."), status=403, code="permission_denied"
        )
    return city


def spend_event_ids(user, *, since=None, until=None, statement_id: int | None = None) -> list[int]:
    """Ids of the voucher spend events (``SPEND_ACTIONS``) of the programs ``user`` may audit (``spend_scope``:
    every program for auditors, else the programs of their issuers), recorded in ``[since, until)`` when given;
    with ``statement_id``, only those of that reimbursement statement's lines: its claims' bookings, paid by its
    program's vouchers. Raises 403 like ``spend_scope``, and ``NotFound`` for a statement ``user`` may not read."""
    issuers = spend_scope(user)
    events = AuditEvent.objects.filter(action__in=SPEND_ACTIONS)
    if issuers is not None:
        vouchers = Voucher.objects.filter(program__issuer_id__in=issuers).values_list("pk", flat=True)
        events = events.filter(data__voucher__in=list(vouchers))
    if statement_id is not None:
        statement = statement_for(user, statement_id)
        bookings = statement.claims.values_list("booking_id", flat=True)
        vouchers = Voucher.objects.filter(program_id=statement.program_id).values_list("pk", flat=True)
        events = events.filter(data__booking__in=list(bookings), data__voucher__in=list(vouchers))
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    return list(events.order_by("id").values_list("pk", flat=True))
