"""Reads for the home page: one panel per kind of organization the user acts for.

Project-level code: it reads from every app through their selectors (apps never import this module).
Each panel costs a fixed number of queries whatever the data size.
"""

from __future__ import annotations

from django.db.models import Count, Q, Sum
from django.utils import timezone

from accounts.models import Organization
from accounts.selectors import is_platform_staff, user_organizations
from ledger.selectors import wallet_summary
from listings import selectors as listing_selectors
from marketplace.core.money import ZERO
from orders import bid_selectors
from orders import selectors as order_selectors
from orders.models import Bid, Booking
from settlement import selectors as settlement_selectors
from settlement.models import Payout, ReimbursementClaim, ReimbursementStatement
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
        "bookings": list(
            order_selectors.bookings_for_buyer(orgs).filter(status__in=UPCOMING, end__gt=now).order_by("start")[:ROWS]
        ),
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
    pending = (
        voucher_selectors.applications_for_issuer(user).filter(Q(status=VoucherApplication.Status.SUBMITTED)).count()
    )
    return {
        "programs": programs,
        "pending_applications": pending,
        "open_claims": _total(
            settlement_selectors.claims_visible_to(user, status=ReimbursementClaim.Status.OPEN).filter(
                statement__isnull=True
            ),
            "amount",
        ),
        "statements_due": _total(
            settlement_selectors.statements_visible_to(user, status=ReimbursementStatement.Status.ISSUED), "total"
        ),
    }


def platform_panel(user) -> dict | None:
    """Platform staff's work: listings waiting for review, payouts to transfer, statements the cities owe."""
    if not is_platform_staff(user):
        return None
    return {
        "reviews": listing_selectors.review_queue().count(),
        "payouts_pending": _total(
            settlement_selectors.payouts_visible_to(user, status=Payout.Status.PENDING), "amount"
        ),
        "settled_unbatched": _total(settlement_selectors.unpaid_settlements(user), "provider_amount"),
        "statements_due": _total(
            settlement_selectors.statements_visible_to(user, status=ReimbursementStatement.Status.ISSUED), "total"
        ),
    }


def _total(queryset, field: str) -> dict:
    """``{"count": rows, "total": sum of field}`` in one query (total 0.00 when there are none)."""
    found = queryset.order_by().aggregate(count=Count("pk"), total=Sum(field))
    return {"count": found["count"], "total": found["total"] or ZERO}
