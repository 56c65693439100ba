"""Reads for settlement: a booking's money movements and timeline, payouts for providers, claims for issuers.

Every queryset is scoped to the user's organizations, so another organization's objects answer 404.
"""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from accounts.models import Organization
from accounts.selectors import user_organizations
from ledger.models import Entry, JournalTransaction
from marketplace.core.exceptions import NotFound
from orders.models import Booking, BookingStatusChange
from orders.selectors import bookings_visible_to
from settlement.models import BookingSettlement, Payout, ReimbursementClaim


def booking_for_progress(user, booking_id) -> Booking:
    """A booking the user's organization bought or provides, with its status history and settlement; ``NotFound``
    otherwise (whether it does not exist or is someone else's)."""
    try:
        pk = int(booking_id)
    except (TypeError, ValueError):
        raise NotFound("No such booking.") from None
    booking = (bookings_visible_to(user).filter(pk=pk).select_related("listing__cluster__data_center")
               .prefetch_related(Prefetch("status_changes",
                                          queryset=BookingStatusChange.objects.select_related("actor")
                                          .order_by("id")))
               .first())
    if booking is None:
        raise NotFound("No such booking.")
    booking.settlement_record = BookingSettlement.objects.filter(booking=booking).first()
    return booking


def booking_movements(booking_id: int) -> QuerySet[JournalTransaction]:
    """The ledger transactions of a booking (reference ``booking:{id}``), oldest first, with their entries."""
    return (JournalTransaction.objects.filter(reference=f"booking:{booking_id}").order_by("id")
            .prefetch_related(Prefetch("entries", queryset=Entry.objects.select_related("account").order_by("id"))))


def payouts_visible_to(user) -> QuerySet[Payout]:
    """Payouts of the provider organizations the user acts for, newest first."""
    providers = user_organizations(user, kind=Organization.Kind.PROVIDER)
    return Payout.objects.filter(provider__in=providers).select_related("provider")


def unpaid_settlements(user) -> QuerySet[BookingSettlement]:
    """Settlements of the user's providers not yet in a payout (what the next batch will cover)."""
    providers = user_organizations(user, kind=Organization.Kind.PROVIDER)
    return BookingSettlement.objects.filter(provider__in=providers, payout__isnull=True)


def claims_visible_to(user, *, status: str | None = None) -> QuerySet[ReimbursementClaim]:
    """Reimbursement claims against programs of the issuer organizations the user acts for, newest first."""
    issuers = user_organizations(user, kind=Organization.Kind.ISSUER)
    qs = ReimbursementClaim.objects.filter(program__issuer__in=issuers).select_related("program", "booking")
    return qs.filter(status=status) if status else qs
