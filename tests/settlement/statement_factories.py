"""Open reimbursement claims (from real settlements) for the statement tests."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from settlement import payout_services, services
from settlement.models import ReimbursementClaim, ReimbursementStatement
from tests import factories
from tests.settlement.factories import completed_booking
from tests.vouchers.factories import funded_program, issued_voucher
from vouchers.models import VoucherProgram


def open_claims(
    program: VoucherProgram | None = None,
    *,
    count: int = 1,
    subtotal: str = "10000.00",
    created_at: dt.datetime | None = None,
) -> list[ReimbursementClaim]:
    """``count`` settled bookings paid in part (20 %) by a voucher of ``program`` (default: a new funded one),
    each with its open claim; ``created_at`` backdates the claims (what the period of a statement is cut by)."""
    program = program or funded_program()
    startup = factories.StartupFactory()
    voucher = issued_voucher(holder=startup, program=program, face_value="1000000.00")
    listing = factories.ListingFactory()
    claims = []
    for _ in range(count):
        booking = completed_booking(buyer=startup, listing=listing, subtotal=subtotal, vouchers=[voucher])
        services.booking_settle(booking_id=booking.pk)
        claims.append(ReimbursementClaim.objects.get(booking=booking))
    if created_at is not None:
        ReimbursementClaim.objects.filter(pk__in=[c.pk for c in claims]).update(created_at=created_at)
    for claim in claims:
        claim.refresh_from_db()
    return claims


def issued_statement(*, count: int = 1) -> ReimbursementStatement:
    """An issued statement of ``count`` open claims (2000 each) of a new program of its own issuer."""
    open_claims(count=count)
    return payout_services.statements_issue(until=timezone.now())[0]


def days_ago(days: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)
