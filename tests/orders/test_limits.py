"""Database-backed limits on held bookings and open bids per organization, also under concurrency."""

import pytest

from ledger.selectors import ledger_breaches, wallet_summary
from marketplace.core.exceptions import Conflict
from orders import services
from orders.models import Booking, OpenOrderLimit
from tests.factories import ClusterFactory, ListingFactory
from tests.helpers import run_concurrently
from tests.orders.factories import booking_kwargs, funded_startup


@pytest.mark.django_db
def test_held_bookings_stop_at_the_limit_and_confirming_frees_a_slot(settings):
    # given a limit of 2 unconfirmed bookings
    settings.MAX_HELD_BOOKINGS = 2
    buyer = funded_startup()
    listing = ListingFactory()
    first = services.booking_create(buyer=buyer, **booking_kwargs(listing, start_in_hours=2))
    services.booking_create(buyer=buyer, **booking_kwargs(listing, start_in_hours=6))
    held_before = wallet_summary(buyer.pk)["held"]
    # when a third is held / then 409 naming the limit, and nothing of it is written
    with pytest.raises(Conflict, match="Too many bookings waiting for confirmation"):
        services.booking_create(buyer=buyer, **booking_kwargs(listing, start_in_hours=10))
    assert Booking.objects.filter(buyer=buyer).count() == 2
    assert wallet_summary(buyer.pk)["held"] == held_before
    # when one is confirmed / then there is room again, and a confirmed booking never counted
    services.booking_confirm(booking=first)
    services.booking_create(buyer=buyer, **booking_kwargs(listing, start_in_hours=10))
    services.booking_create(buyer=buyer, confirm=True, **booking_kwargs(listing, start_in_hours=14))
    assert OpenOrderLimit.objects.get(pk=buyer.pk).held_bookings == 2


@pytest.mark.django_db
def test_cancel_and_expiry_free_slots(settings):
    settings.MAX_HELD_BOOKINGS = 1
    buyer = funded_startup()
    booking = services.booking_create(buyer=buyer, **booking_kwargs())
    services.booking_cancel(booking=booking)
    assert OpenOrderLimit.objects.get(pk=buyer.pk).held_bookings == 0
    services.booking_create(buyer=buyer, **booking_kwargs())


@pytest.mark.django_db(transaction=True)
def test_parallel_held_bookings_never_exceed_the_limit(settings):
    # given a limit of 3 and 10 listings (capacity is not what is raced)
    settings.MAX_HELD_BOOKINGS = 3
    buyer = funded_startup("1000000.00")
    listings = [ListingFactory(cluster=ClusterFactory(node_count=1)) for _ in range(10)]

    def book(listing):
        try:
            return services.booking_create(buyer=buyer, **booking_kwargs(listing)).pk
        except Conflict as exc:
            return exc

    # when 10 held bookings race
    results = run_concurrently(book, [(listing,) for listing in listings])
    # then exactly 3 got through, the others were refused by the database's CHECK, and the money reconciles
    assert sum(isinstance(r, int) for r in results) == 3, results
    assert all(isinstance(r, int) or "Too many bookings" in r.message for r in results)
    assert Booking.objects.filter(buyer=buyer, status="held").count() == 3
    assert OpenOrderLimit.objects.get(pk=buyer.pk).held_bookings == 3
    assert ledger_breaches() == []


@pytest.mark.django_db
def test_open_bids_stop_at_the_limit_and_cancel_frees_a_slot(settings):
    from orders import bid_services
    from orders.models import Bid
    from tests.factories import AcceleratorFactory
    from tests.orders.test_bids import bid_kwargs, listing_of

    # given a limit of 2 open bids, with asks above every bid's maximum (so none fills)
    settings.MAX_OPEN_BIDS = 2
    chip = AcceleratorFactory(slug="limit-chip")
    listing_of(chip, price="50")
    buyer = funded_startup("100000.00")
    first = bid_services.bid_place(buyer=buyer, **bid_kwargs(chip))
    bid_services.bid_place(buyer=buyer, **bid_kwargs(chip))
    # when a third is placed / then 409, nothing written
    with pytest.raises(Conflict, match="Too many open bids"):
        bid_services.bid_place(buyer=buyer, **bid_kwargs(chip))
    assert Bid.objects.filter(buyer=buyer).count() == 2
    # when one is cancelled / then a new one fits
    bid_services.bid_cancel(bid=first)
    bid_services.bid_place(buyer=buyer, **bid_kwargs(chip))
    assert OpenOrderLimit.objects.get(pk=buyer.pk).open_bids == 2
