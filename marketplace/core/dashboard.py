"""Reads for the home page: one panel per kind of organization the user acts for.

Project-level code: it reads from every app through their selectors (apps never import this module).
Each panel costs a fixed number of queries whatever the data size.
"""

from __future__ import annotations

from django.db.models import Q, Sum
from django.utils import timezone

from accounts.models import Organization
from accounts.selectors import user_organizations
from ledger.selectors import wallet_summary
from orders import bid_selectors
from orders import selectors as order_selectors
from orders.models import Bid, Booking
from vouchers import selectors as voucher_selectors
from vouchers.models import VoucherApplication

UPCOMING = (Booking.Status.HELD, Booking.Status.CONFIRMED, Booking.Status.ACTIVE)
ROWS = 5


def startup_panel(user) -> dict | None:
    """Wallet per startup, spendable vouchers with balances and expiry, upcoming bookings, open bids."""
    orgs = list(user_organizations(user, kind=Organization.Kind.STARTUP))
    if not orgs:
        return None
    vouchers = list(voucher_selectors.vouchers_spendable(user)[:ROWS])
    balances = voucher_selectors.voucher_balances([v.pk for v in vouchers])
    for voucher in vouchers:
        voucher.amounts = balances.get(voucher.pk, {})
    now = timezone.now()
    return {
        "wallets": [(org, wallet_summary(org.pk)) for org in orgs],
        "vouchers": vouchers,
        "bookings": list(order_selectors.bookings_for_buyer(orgs).filter(status__in=UPCOMING, end__gt=now)
                         .order_by("start")[:ROWS]),
        "bids": list(bid_selectors.bids_of_user(user, status=Bid.Status.OPEN)[:ROWS]),
    }


def provider_panel(user) -> dict | None:
    """Upcoming bookings on the provider's clusters and revenue booked."""
    orgs = list(user_organizations(user, kind=Organization.Kind.PROVIDER))
    if not orgs:
        return None
    bookings = order_selectors.bookings_for_provider(orgs[0])
    live = bookings.filter(status__in=(*UPCOMING, Booking.Status.COMPLETED, Booking.Status.SETTLED))
    return {
        "organization": orgs[0],
        "bookings": list(bookings.filter(status__in=UPCOMING, end__gt=timezone.now()).order_by("start")[:ROWS]),
        "booked_total": live.aggregate(total=Sum("subtotal"))["total"] or 0,
    }


def issuer_panel(user) -> dict | None:
    """The issuer's programs with budget left, and how many applications wait for a decision."""
    if not user_organizations(user, kind=Organization.Kind.ISSUER).exists():
        return None
    programs = list(voucher_selectors.programs_managed(user)[:ROWS])
    budgets = voucher_selectors.program_budgets_available([p.pk for p in programs])
    for program in programs:
        program.available = budgets.get(program.pk, 0)
    pending = voucher_selectors.applications_for_issuer(user).filter(
        Q(status=VoucherApplication.Status.SUBMITTED)).count()
    return {"programs": programs, "pending_applications": pending}
