"""Settlement races on real PostgreSQL transactions: one set of entries per booking, whatever runs at once."""

import pytest
from django.core.management import call_command

from ledger.models import JournalTransaction
from ledger.selectors import ledger_breaches
from orders.models import Booking
from settlement import payout_services, services, sweep_services
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
    results = run_concurrently(lambda: sweep_services.sweep_unsettled(batch=3), [()] * 3)
    # then together they settled each booking once (a later run finds nothing)
    assert all(isinstance(r, int) for r in results), results
    assert sum(results) == 12
    assert sweep_services.sweep_unsettled() == 0
    assert Booking.objects.filter(pk__in=ids, status="settled").count() == 12
    assert JournalTransaction.objects.filter(kind="settle").count() == 12
    assert ledger_breaches() == []


def test_concurrent_payout_batches_never_pay_a_settlement_twice():
    # given 6 settled bookings of one provider
    listing = factories.ListingFactory()
    for _ in range(6):
        services.booking_settle(booking_id=completed_booking(listing=listing, subtotal="100.00").pk)
    # when two batchers run at once
    run_concurrently(lambda: payout_services.payout_batch_create(), [()] * 2)
    # then the payouts add up to the payable exactly once
    assert BookingSettlement.objects.filter(payout__isnull=True).count() == 0
    assert sum(p.amount for p in Payout.objects.all()) == sum(
        s.provider_amount for s in BookingSettlement.objects.all()
    )


def test_overlapping_batches_at_once_settle_each_booking_once():
    # given 16 completed bookings of two buyers on two listings, some paid partly by a voucher
    startup = factories.StartupFactory()
    voucher = issued_voucher(holder=startup, program=funded_program(), face_value="50000.00")
    listings, buyers = [factories.ListingFactory(), factories.ListingFactory()], [startup, factories.StartupFactory()]
    ids = [
        completed_booking(
            listing=listings[i % 2],
            buyer=buyers[i // 2 % 2],
            subtotal=f"{100 + i}.00",
            vouchers=[voucher] if i % 4 == 0 else [],
        ).pk
        for i in range(16)
    ]
    # when four batches overlapping each other run at once (all, all reversed, evens, odds)
    batches = [ids, ids[::-1], ids[::2], ids[1::2]]
    results = run_concurrently(lambda batch: services.bookings_settle(booking_ids=batch), [(b,) for b in batches])
    # then none failed (no deadlock) and together they settled each booking once
    assert all(isinstance(r, list) for r in results), results
    assert sorted(b.pk for r in results for b in r) == sorted(ids)
    assert Booking.objects.filter(pk__in=ids, status="settled").count() == 16
    assert JournalTransaction.objects.filter(kind="settle").count() == 16
    assert BookingSettlement.objects.count() == 16
    assert ReimbursementClaim.objects.count() == 4
    assert ledger_breaches() == []
    call_command("verify_audit")


def test_batches_locking_shared_accounts_in_crossed_orders_do_not_deadlock():
    # given, per round, two disjoint batches naming the same buyers and providers in opposite orders: batch A is 30
    # bookings of buyer X at provider P then one of Y at Q, batch B 30 of Y at Q then one of X at P. Posted one
    # transaction after the other, A would hold X's and the platform-fees account while it needs Y's last, and B
    # hold Y's from the start: the deadlock detector would abort one
    x, y = factories.StartupFactory(), factories.StartupFactory()
    p, q = factories.ListingFactory(), factories.ListingFactory()

    def batch(first, last) -> list[int]:
        return [
            completed_booking(buyer=buyer, listing=listing, subtotal=f"{10 + i}.00").pk
            for i, (buyer, listing) in enumerate([first] * 30 + [last])
        ]

    rounds = [(batch((x, p), (y, q)), batch((y, q), (x, p))) for _ in range(3)]
    for a, b in rounds:
        # when both batches run at once
        results = run_concurrently(lambda ids: services.bookings_settle(booking_ids=ids), [(a,), (b,)])
        # then both settle everything, neither aborted by the deadlock detector
        assert [[booking.pk for booking in r] if isinstance(r, list) else r for r in results] == [a, b]
    assert JournalTransaction.objects.filter(kind="settle").count() == 3 * 62
    assert ledger_breaches() == []


def test_a_batch_and_single_settlements_of_its_bookings_at_once_settle_each_once():
    # given three completed bookings
    listing = factories.ListingFactory()
    ids = [completed_booking(listing=listing, subtotal="10.00").pk for _ in range(3)]
    # when a batch of all three runs at the same time as two single settlements of the first and one of the second
    calls = [lambda: services.bookings_settle(booking_ids=ids)] + [
        (lambda pk=pk: services.booking_settle(booking_id=pk)) for pk in (ids[0], ids[0], ids[1])
    ]
    results = run_concurrently(lambda call: call(), [(c,) for c in calls])
    # then the single settlements (which wait for a batch holding their booking) all return it settled
    assert [r.status for r in results[1:]] == ["settled"] * 3, results
    assert isinstance(results[0], list)
    # and each booking was settled once, whoever did it
    assert Booking.objects.filter(pk__in=ids, status="settled").count() == 3
    for pk in ids:
        assert JournalTransaction.objects.filter(idempotency_key=f"booking:{pk}:settle").count() == 1
        assert BookingSettlement.objects.filter(booking_id=pk).count() == 1
    assert ledger_breaches() == []
