"""Settlement races on real PostgreSQL transactions: one set of entries per booking, whatever runs at once."""

import pytest

from ledger.models import JournalTransaction
from ledger.selectors import ledger_breaches
from orders.models import Booking
from settlement import services
from settlement.models import BookingSettlement, Payout, ReimbursementClaim
from tests import factories
from tests.helpers import run_concurrently
from tests.settlement.factories import completed_booking
from tests.vouchers.factories import funded_program, issued_voucher

pytestmark = pytest.mark.django_db(transaction=True)


def test_five_concurrent_settlements_of_one_booking_post_one_set_of_entries():
    # given a completed booking paid partly by a voucher
    startup = factories.StartupFactory()
    voucher = issued_voucher(holder=startup, program=funded_program())
    booking = completed_booking(buyer=startup, subtotal="10000.00", vouchers=[voucher])
    entries_before = JournalTransaction.objects.count()
    # when settled 5 times at once
    results = run_concurrently(lambda: services.booking_settle(booking_id=booking.pk), [()] * 5)
    # then every call returns the settled booking and the money moved once
    assert [getattr(r, "status", r) for r in results] == ["settled"] * 5
    assert JournalTransaction.objects.filter(idempotency_key=f"booking:{booking.pk}:settle").count() == 1
    # the settle posting plus one voucher capture
    assert JournalTransaction.objects.count() - entries_before == 2
    assert BookingSettlement.objects.filter(booking=booking).count() == 1
    assert ReimbursementClaim.objects.filter(booking=booking).count() == 1
    assert ledger_breaches() == []


def test_concurrent_sweeps_split_the_due_bookings_and_settle_each_once():
    # given 12 completed bookings
    listing, buyer = factories.ListingFactory(), factories.StartupFactory()
    ids = [completed_booking(listing=listing, buyer=buyer, subtotal="10.00").pk for _ in range(12)]
    # when three sweepers run at once, in small batches
    results = run_concurrently(lambda: services.sweep_unsettled(batch=3), [()] * 3)
    # then together they settled each booking once (a later run finds nothing)
    assert all(isinstance(r, int) for r in results), results
    assert sum(results) == 12
    assert services.sweep_unsettled() == 0
    assert Booking.objects.filter(pk__in=ids, status="settled").count() == 12
    assert JournalTransaction.objects.filter(kind="settle").count() == 12
    assert ledger_breaches() == []


def test_concurrent_payout_batches_never_pay_a_settlement_twice():
    # given 6 settled bookings of one provider
    listing = factories.ListingFactory()
    for _ in range(6):
        services.booking_settle(booking_id=completed_booking(listing=listing, subtotal="100.00").pk)
    # when two batchers run at once
    run_concurrently(lambda: services.payout_batch_create(), [()] * 2)
    # then the payouts add up to the payable exactly once
    assert BookingSettlement.objects.filter(payout__isnull=True).count() == 0
    assert sum(p.amount for p in Payout.objects.all()) == sum(s.provider_amount for s in
                                                             BookingSettlement.objects.all())
