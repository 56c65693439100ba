"""Reads for settlement: a booking's money movements and timeline, payouts for providers, claims and statements for
issuers.

Every queryset is scoped to the user's organizations, so another organization's objects answer 404 (platform staff
read every payout, and platform staff and auditors every statement).
"""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from accounts.models import Organization
from accounts.selectors import has_org_kind, is_auditor, is_platform_staff, user_organizations
from ledger.models import Entry, JournalTransaction
from marketplace.core.exceptions import NotFound
from orders.models import Booking, BookingStatusChange
from orders.selectors import bookings_visible_to
from settlement.models import BookingSettlement, Payout, ReimbursementClaim, ReimbursementStatement


def booking_for_progress(user, booking_id) -> Booking:
    """A booking the user's organization bought or provides, with its status history and settlement; ``NotFound``
    otherwise (whether it does not exist or is someone else's)."""
    try:
        pk = int(booking_id)
    except (TypeError, ValueError):
        raise NotFound("No such booking.") from None
    booking = (
        bookings_visible_to(user)
        .filter(pk=pk)
        .select_related("listing__cluster__data_center")
        .prefetch_related(
            Prefetch("status_changes", queryset=BookingStatusChange.objects.select_related("actor").order_by("id"))
        )
        .first()
    )
    if booking is None:
        raise NotFound("No such booking.")
    booking.settlement_record = BookingSettlement.objects.filter(booking=booking).first()
    return booking


def booking_movements(booking_id: int) -> QuerySet[JournalTransaction]:
    """The ledger transactions of a booking (reference ``booking:{id}``), oldest first, with their entries."""
    return (
        JournalTransaction.objects.filter(reference=f"booking:{booking_id}")
        .order_by("id")
        .prefetch_related(Prefetch("entries", queryset=Entry.objects.select_related("account").order_by("id")))
    )


def can_read_payouts(user) -> bool:
    """Provider members (their organizations' payouts) and platform staff (every payout: they make the transfers)."""
    return bool(user and user.is_authenticated) and (
        has_org_kind(user, Organization.Kind.PROVIDER) or is_platform_staff(user)
    )


def payouts_visible_to(user, *, status: str | None = None) -> QuerySet[Payout]:
    """Payouts of the provider organizations the user acts for (every provider's for platform staff), newest first;
    optionally only those of one status."""
    qs = Payout.objects.select_related("provider")
    if not is_platform_staff(user):
        qs = qs.filter(provider__in=user_organizations(user, kind=Organization.Kind.PROVIDER))
    return qs.filter(status=status) if status else qs


def unpaid_settlements(user) -> QuerySet[BookingSettlement]:
    """Settlements not yet in a payout (what the next batch will cover): of the user's providers, or of every
    provider for platform staff."""
    qs = BookingSettlement.objects.filter(payout__isnull=True)
    if not is_platform_staff(user):
        qs = qs.filter(provider__in=user_organizations(user, kind=Organization.Kind.PROVIDER))
    return qs


def claims_visible_to(user, *, status: str | None = None) -> QuerySet[ReimbursementClaim]:
    """Reimbursement claims against programs of the issuer organizations the user acts for, newest first."""
    issuers = user_organizations(user, kind=Organization.Kind.ISSUER)
    qs = ReimbursementClaim.objects.filter(program__issuer__in=issuers).select_related("program", "booking")
    return qs.filter(status=status) if status else qs


def can_read_statements(user) -> bool:
    """Issuer members (their programs' statements), platform staff and auditors (every statement)."""
    return bool(user and user.is_authenticated) and (
        has_org_kind(user, Organization.Kind.ISSUER) or is_platform_staff(user) or is_auditor(user)
    )


def statements_visible_to(
    user, *, program_id: int | None = None, status: str | None = None
) -> QuerySet[ReimbursementStatement]:
    """Statements of the programs of the issuers the user acts for (every program's for platform staff and
    auditors), latest period first, with ``claim_count``; optionally one program's or one status's."""
    qs = ReimbursementStatement.objects.select_related("program", "program__issuer", "paid_by")
    if not (is_platform_staff(user) or is_auditor(user)):
        qs = qs.filter(program__issuer__in=user_organizations(user, kind=Organization.Kind.ISSUER))
    if program_id is not None:
        qs = qs.filter(program_id=program_id)
    if status:
        qs = qs.filter(status=status)
    return qs.annotate(claim_count=Count("claims")).order_by("-period_end", "-id")  # annotate drops Meta.ordering


def statement_for(user, statement_id) -> ReimbursementStatement:
    """A statement the user may read (``statements_visible_to``); ``NotFound`` otherwise, whether it does not exist
    or is another city's."""
    try:
        pk = int(statement_id)
    except (TypeError, ValueError):
        raise NotFound("No such statement.") from None
    statement = statements_visible_to(user).filter(pk=pk).first()
    if statement is None:
        raise NotFound("No such statement.")
    return statement


def statement_lines(statement: ReimbursementStatement) -> QuerySet[ReimbursementClaim]:
    """The claims a statement lists, oldest first, with booking, startup (buyer) and provider."""
    return (
        ReimbursementClaim.objects.filter(statement=statement)
        .order_by("created_at", "id")
        .select_related("booking__buyer", "booking__listing__cluster__data_center__provider")
    )


def can_pay_statement(user, statement: ReimbursementStatement) -> bool:
    """Members acting for the program's issuer, and platform staff (auditors only read)."""
    return user_organizations(user, kind=Organization.Kind.ISSUER).filter(
        pk=statement.program.issuer_id
    ).exists() or is_platform_staff(user)
