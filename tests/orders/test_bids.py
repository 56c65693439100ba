"""orders.bid_services: holds, cancel, expiry, continuous matching and batch clearing against the database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from ledger.selectors import ledger_breaches, wallet_summary
from ledger.services import InsufficientFunds
from marketplace.core.exceptions import ApplicationError, Conflict
from orders import bid_services, services
from orders.models import Bid, Booking
from tests.factories import AcceleratorFactory, ClusterFactory, ListingFactory, next_hour
from tests.orders.factories import funded_startup

pytestmark = pytest.mark.django_db


def bid_kwargs(accelerator, *, nodes=1, hours=3, start_in=2, window=6, price="12", **extra):
    start = next_hour(start_in)
    return {"accelerators": [accelerator.slug], "nodes": nodes, "duration_hours": hours, "earliest_start": start,
            "latest_end": start + dt.timedelta(hours=window), "max_price_per_gpu_hour": Decimal(price), **extra}


@pytest.fixture
def h100():
    return AcceleratorFactory(slug="h100-test")


def listing_of(accelerator, *, price="10", gpus=8, node_count=2):
    return ListingFactory(cluster=ClusterFactory(accelerator=accelerator, gpus_per_node=gpus, node_count=node_count),
                          price_per_gpu_hour=Decimal(price))


def test_place_holds_the_maximum_cash_cost_for_the_largest_cluster(h100):
    # given: 8- and 16-GPU clusters of the accelerator; the cheaper (8-GPU) one is dearer than the bid's maximum
    listing_of(h100, gpus=8, price="50")
    listing_of(h100, gpus=16, price="50")
    buyer = funded_startup("10000.00")
    # when
    bid = bid_services.bid_place(buyer=buyer, **bid_kwargs(h100, nodes=2, hours=3, price="12.5"))
    # then: 12.5 × 16 × 2 × 3, and it is not matched (every ask is above the maximum)
    assert bid.held_amount == Decimal("1200.00")
    assert bid.max_gpus_per_node == 16
    assert wallet_summary(buyer.pk)["held"] == Decimal("1200.00")
    assert Bid.objects.get(pk=bid.pk).status == Bid.Status.OPEN
    assert ledger_breaches() == []


def test_place_with_a_short_wallet_answers_409_and_writes_nothing(h100):
    # given
    listing_of(h100, price="50")
    buyer = funded_startup("100.00")
    # when / then
    with pytest.raises(InsufficientFunds):
        bid_services.bid_place(buyer=buyer, **bid_kwargs(h100))
    assert not Bid.objects.exists()
    assert wallet_summary(buyer.pk)["held"] == Decimal("0")


@pytest.mark.parametrize(("change", "field"), [
    ({"accelerators": ["no-such-chip"]}, "accelerators"),
    ({"nodes": 0}, "nodes"),
    ({"duration_hours": 10}, "latest_end"),
    ({"max_price_per_gpu_hour": Decimal("0")}, "max_price_per_gpu_hour"),
    ({"earliest_start": next_hour(2) + dt.timedelta(minutes=30)}, "earliest_start"),
    ({"earliest_start": next_hour(-3)}, "earliest_start"),
    ({"expires_at": timezone.now() - dt.timedelta(minutes=1)}, "expires_at"),
])
def test_place_refuses_bad_input_with_field_errors(h100, change, field):
    # given
    listing_of(h100)
    buyer = funded_startup()
    # when
    with pytest.raises(ApplicationError) as caught:
        bid_services.bid_place(buyer=buyer, **{**bid_kwargs(h100), **change})
    # then
    assert caught.value.status == 400
    assert field in caught.value.errors
    assert not Bid.objects.exists()


def test_cancel_releases_the_hold_once(h100):
    # given
    listing_of(h100, price="50")
    buyer = funded_startup("10000.00")
    bid = bid_services.bid_place(buyer=buyer, **bid_kwargs(h100))
    # when
    bid_services.bid_cancel(bid=bid)
    # then
    assert Bid.objects.get(pk=bid.pk).status == Bid.Status.CANCELLED
    assert wallet_summary(buyer.pk)["held"] == Decimal("0")
    with pytest.raises(Conflict):
        bid_services.bid_cancel(bid=bid)
    assert AuditEvent.objects.filter(action="bid.cancelled", object_id=str(bid.pk)).count() == 1
    assert ledger_breaches() == []


def test_expire_only_after_the_expiry(h100):
    # given
    listing_of(h100, price="50")
    buyer = funded_startup("10000.00")
    bid = bid_services.bid_place(buyer=buyer, **bid_kwargs(h100))
    # when / then
    with pytest.raises(Conflict):
        bid_services.bid_expire(bid=bid)
    Bid.objects.filter(pk=bid.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    bid_services.bid_expire(bid=bid)
    assert Bid.objects.get(pk=bid.pk).status == Bid.Status.EXPIRED
    assert wallet_summary(buyer.pk)["held"] == Decimal("0")


def test_a_new_bid_matches_the_cheapest_slot_at_once(h100, django_capture_on_commit_callbacks):
    # given: two listings; the cheaper one is full at the start of the window
    cheap, dear = listing_of(h100, price="9", node_count=1), listing_of(h100, price="11")
    services.booking_create(buyer=funded_startup(), listing_id=cheap.pk, nodes=1, start=next_hour(2),
                            end=next_hour(4), confirm=True)
    buyer = funded_startup("10000.00")
    # when
    with django_capture_on_commit_callbacks(execute=True):
        bid = bid_services.bid_place(buyer=buyer, **bid_kwargs(h100, hours=3, start_in=2, window=6, price="12"))
    # then: the cheap listing from hour 4 (its first free window), at the ask price; the excess hold released
    bid.refresh_from_db()
    assert bid.status == Bid.Status.MATCHED
    booking = bid.booking
    assert (booking.listing_id, booking.start, booking.status) == (cheap.pk, next_hour(4), Booking.Status.CONFIRMED)
    assert booking.price_per_gpu_hour == Decimal("9")
    assert wallet_summary(buyer.pk)["held"] == booking.cash_amount == Decimal("216.00")
    assert dear.bookings.count() == 0
    assert ledger_breaches() == []


def test_match_conflict_keeps_the_bid_open_with_its_hold(h100):
    # given: an open bid and a listing whose only node is taken for the slot
    listing = listing_of(h100, price="50", node_count=1)
    buyer = funded_startup("10000.00")
    bid = bid_services.bid_place(buyer=buyer, **bid_kwargs(h100, price="60"))
    start = bid.earliest_start
    services.booking_create(buyer=funded_startup(), listing_id=listing.pk, nodes=1, start=start,
                            end=start + dt.timedelta(hours=3), confirm=True)
    # when
    with pytest.raises(Conflict):
        bid_services.bid_match(bid=bid, listing_id=listing.pk, start=start, end=start + dt.timedelta(hours=3))
    # then
    assert Bid.objects.get(pk=bid.pk).status == Bid.Status.OPEN
    assert wallet_summary(buyer.pk)["held"] == bid.held_amount
    assert ledger_breaches() == []


def test_batch_clearing_gives_the_slot_to_the_higher_bid(h100):
    # given: one node; two open bids for the same 3 hours (placed while no listing was cheap enough)
    listing = listing_of(h100, price="100", node_count=1)
    low_buyer, high_buyer = funded_startup("100000.00"), funded_startup("100000.00")
    low = bid_services.bid_place(buyer=low_buyer, **bid_kwargs(h100, window=3, price="20"))
    high = bid_services.bid_place(buyer=high_buyer, **bid_kwargs(h100, window=3, price="30"))
    listing.price_per_gpu_hour = Decimal("15")
    listing.save(update_fields=["price_per_gpu_hour"])
    # when
    result = bid_services.bids_clear(time_budget_s=0.5)
    # then
    assert (result.open_bids, result.planned, result.matched) == (2, 1, 1)
    assert Bid.objects.get(pk=high.pk).status == Bid.Status.MATCHED
    assert Bid.objects.get(pk=low.pk).status == Bid.Status.OPEN
    assert result.surplus == Decimal("15") * 8 * 3
    assert wallet_summary(high_buyer.pk)["held"] == Decimal("360.00")  # 15 × 24 GPU-hours, not the 720 bid hold
    assert ledger_breaches() == []
    # when run again: nothing left to do for the low bid (no capacity)
    assert bid_services.bids_clear(time_budget_s=0.5).matched == 0
