"""Races on real PostgreSQL: batch clearing of bids while direct bookings hit the same cluster and window."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ledger.selectors import ledger_breaches, wallet_summary
from marketplace.core.exceptions import Conflict
from orders import bid_services, services, tasks
from orders.models import Bid, Booking, NodeReservation
from tests.factories import AcceleratorFactory, ClusterFactory, ListingFactory, next_hour
from tests.helpers import run_concurrently
from tests.orders.factories import funded_startup

NODES = 2


def _assert_no_double_booking(cluster):
    reservations = list(NodeReservation.objects.filter(node__cluster=cluster, active=True))
    for i, first in enumerate(reservations):
        for second in reservations[i + 1 :]:
            if first.node_id == second.node_id:
                assert first.period.upper <= second.period.lower or second.period.upper <= first.period.lower


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(3))
def test_clearing_racing_direct_bookings_never_double_books(round_):
    # given: a 2-node cluster; three open 1-node bids for the same 3 hours (placed while the listing was dearer)
    accelerator = AcceleratorFactory(slug=f"race-chip-{round_}")
    cluster = ClusterFactory(accelerator=accelerator, node_count=NODES, gpus_per_node=8)
    listing = ListingFactory(cluster=cluster, price_per_gpu_hour=Decimal("100"))
    start = next_hour(3 + round_)
    end = start + dt.timedelta(hours=3)
    bidders = [funded_startup("10000.00") for _ in range(3)]
    bids = [
        bid_services.bid_place(
            buyer=b,
            accelerators=[accelerator.slug],
            nodes=1,
            duration_hours=3,
            earliest_start=start,
            latest_end=end,
            max_price_per_gpu_hour=Decimal("30"),
        )
        for b in bidders
    ]
    listing.price_per_gpu_hour = Decimal("20")
    listing.save(update_fields=["price_per_gpu_hour"])
    direct = [funded_startup("10000.00") for _ in range(2)]

    def clear():
        return bid_services.bids_clear(time_budget_s=0.5)

    def book(buyer):
        return services.booking_create(buyer=buyer, listing_id=listing.pk, nodes=1, start=start, end=end, confirm=True)

    # when: the clearing and two direct bookings start together
    results = run_concurrently(
        lambda job, arg: job(arg) if arg else job(), [(clear, None), (book, direct[0]), (book, direct[1])]
    )

    # then: nothing unexpected was raised; a lost booking race is a 409
    unexpected = [r for r in results if isinstance(r, BaseException) and not isinstance(r, Conflict)]
    assert unexpected == []
    booked = [r for r in results[1:] if isinstance(r, Booking)]
    matched = Bid.objects.filter(pk__in=[b.pk for b in bids], status=Bid.Status.MATCHED)
    # exactly the 2 nodes are sold, to bids or direct buyers, and never twice
    assert len(booked) + matched.count() == NODES
    assert results[0].matched == matched.count()  # a planned bid that lost its slot (409) stayed open
    assert NodeReservation.objects.filter(node__cluster=cluster, active=True).count() == NODES
    _assert_no_double_booking(cluster)
    # the losers: open bids keep their full hold; matched bids hold only their booking's cash part
    for bid in Bid.objects.filter(pk__in=[b.pk for b in bids]):
        held = wallet_summary(bid.buyer_id)["held"]
        assert held == (bid.booking.cash_amount if bid.status == Bid.Status.MATCHED else bid.held_amount)
        if bid.status == Bid.Status.MATCHED:
            assert bid.booking.price_per_gpu_hour == Decimal("20")
    assert ledger_breaches() == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(2))
def test_listing_activation_matching_racing_the_clearing_fills_each_bid_once(round_):
    # given: three open 1-node bids placed while the only listing was dearer than their maximum; then a cheaper
    # 2-node listing goes active
    accelerator = AcceleratorFactory(slug=f"race-act-{round_}")
    ListingFactory(cluster=ClusterFactory(accelerator=accelerator, node_count=NODES), price_per_gpu_hour=Decimal("100"))
    start = next_hour(3 + round_)
    end = start + dt.timedelta(hours=3)
    bids = [
        bid_services.bid_place(
            buyer=funded_startup("10000.00"),
            accelerators=[accelerator.slug],
            nodes=1,
            duration_hours=3,
            earliest_start=start,
            latest_end=end,
            max_price_per_gpu_hour=Decimal("30"),
        )
        for _ in range(3)
    ]
    cluster = ClusterFactory(accelerator=accelerator, node_count=NODES, gpus_per_node=8)
    cheap = ListingFactory(cluster=cluster, price_per_gpu_hour=Decimal("20"))

    # when: two deliveries of the activation's task and a batch clearing run together
    jobs = [(tasks.match_listing, cheap.pk), (tasks.match_listing, cheap.pk), (bid_services.bids_clear, None)]
    results = run_concurrently(lambda job, arg: job(arg) if arg else job(time_budget_s=0.5), jobs)

    # then: nothing raised; the 2 nodes went to 2 bids, each filled once, the third still open with its hold
    assert [r for r in results if isinstance(r, BaseException)] == []
    matched = list(Bid.objects.filter(pk__in=[b.pk for b in bids], status=Bid.Status.MATCHED))
    assert len(matched) == NODES
    assert results[0] + results[1] + results[2].matched == NODES  # each fill counted by exactly one runner
    assert Booking.objects.filter(listing=cheap).count() == NODES
    assert NodeReservation.objects.filter(node__cluster=cluster, active=True).count() == NODES
    _assert_no_double_booking(cluster)
    for bid in Bid.objects.filter(pk__in=[b.pk for b in bids]):
        held = wallet_summary(bid.buyer_id)["held"]
        assert held == (bid.booking.cash_amount if bid.status == Bid.Status.MATCHED else bid.held_amount)
    assert ledger_breaches() == []
