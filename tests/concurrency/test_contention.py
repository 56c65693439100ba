"""Races on real PostgreSQL that used to deadlock (issue 17, defects 4 and 5): one organization cancelling
voucher-paid and cash-only bookings at once, and bids racing direct bookings on one listing. Every path takes its
locks in the one order of ``marketplace.core.locks``, so none of them deadlocks; what contention remains is retried
and, at worst, answers 409 "busy" — never an unexpected error. Threads, committed data."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

import pytest
from django.db.models import Sum

from ledger.selectors import ledger_breaches, wallet_summary
from marketplace.core.exceptions import ApplicationError
from orders import bid_services, services
from orders.models import Bid, Booking
from tests.factories import AcceleratorFactory, ClusterFactory, ListingFactory, next_hour
from tests.helpers import run_concurrently
from tests.orders.factories import booking_kwargs, funded_startup
from tests.vouchers.factories import funded_program, issued_voucher
from vouchers.models import Redemption

CANCELS = 16
ROUNDS = 4


def _cancel(pk):
    return services.booking_cancel(booking=pk).status


def _contention(caplog) -> list[str]:
    """What ``marketplace.core.locks`` logged: each retry after a deadlock or serialization failure."""
    return [record.getMessage() for record in caplog.records if record.name == "marketplace.core.locks"]


@pytest.mark.django_db(transaction=True)
def test_one_organization_cancelling_voucher_and_cash_bookings_at_once_never_deadlocks(caplog):
    # given one startup with a voucher, cash and (per round) 16 bookings on 16 one-node listings: half paid partly
    # by the voucher, some held and some confirmed
    buyer = funded_startup("1000000.00")
    voucher = issued_voucher(holder=buyer, program=funded_program("1000000.00"), face_value="500000.00")
    listings = [ListingFactory(cluster=ClusterFactory(node_count=1)) for _ in range(CANCELS)]
    for round_ in range(ROUNDS):
        bookings = [
            services.booking_create(
                buyer=buyer,
                **booking_kwargs(
                    listing,
                    start_in_hours=2 + 4 * round_,
                    vouchers=[voucher.pk] if i % 2 == 0 else [],
                    confirm=i % 4 != 3,
                ),
            )
            for i, listing in enumerate(listings)
        ]
        assert sum(1 for b in bookings if b.voucher_amount) == CANCELS // 2
        # when all 16 are cancelled at once
        with caplog.at_level(logging.INFO, logger="marketplace.core.locks"):
            results = run_concurrently(_cancel, [(b.pk,) for b in bookings])
        # then every cancel succeeded the first time: no deadlock (not even a retried one), nothing lost
        assert results == ["cancelled"] * CANCELS, [r for r in results if r != "cancelled"][:3]
        assert _contention(caplog) == []
    # and every hold came back exactly once: wallet whole, voucher whole, ledger sound
    assert wallet_summary(buyer.pk) == {"balance": Decimal("1000000.00"), "held": Decimal("0.00")}
    assert not Redemption.objects.filter(voucher=voucher, status=Redemption.Status.HELD).exists()
    assert Redemption.objects.filter(voucher=voucher).count() == ROUNDS * CANCELS // 2
    assert ledger_breaches() == []


BIDS = 20
BOOKINGS_PER_BID = 4


def _book_then_bid(buyer, listing_id, slug, hours_from_now):
    """A few direct bookings of one node of the listing, then a bid that fits its free capacity (matched on commit);
    every outcome, error or not, in order."""
    outcomes = []
    for offset in hours_from_now:
        start = next_hour(offset)
        try:
            outcomes.append(
                services.booking_create(
                    buyer=buyer,
                    listing_id=listing_id,
                    nodes=1,
                    start=start,
                    end=start + dt.timedelta(hours=2),
                    confirm=True,
                )
            )
        except ApplicationError as exc:
            outcomes.append(exc)
    try:
        outcomes.append(
            bid_services.bid_place(
                buyer=buyer,
                accelerators=[slug],
                nodes=1,
                duration_hours=2,
                earliest_start=next_hour(2),
                latest_end=next_hour(2 + 24 * 7),
                max_price_per_gpu_hour=Decimal("12"),
            )
        )
    except ApplicationError as exc:
        outcomes.append(exc)
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_bids_racing_direct_bookings_on_one_listing_never_deadlock(caplog):
    # given one startup and one 8-node listing with room for every booking and every bid
    accelerator = AcceleratorFactory(slug="contention-chip")
    listing = ListingFactory(
        cluster=ClusterFactory(accelerator=accelerator, node_count=8), price_per_gpu_hour=Decimal("10")
    )
    buyer = funded_startup("10000000.00")
    jobs = [
        (
            buyer,
            listing.pk,
            accelerator.slug,
            [2 + 2 * ((i * BOOKINGS_PER_BID + k) % 40) for k in range(BOOKINGS_PER_BID)],
        )
        for i in range(BIDS)
    ]
    # when 80 direct bookings and 20 bids (each matched as soon as it commits) hit the listing at once
    with caplog.at_level(logging.INFO):
        chunks = run_concurrently(_book_then_bid, jobs)
    outcomes = [o for chunk in chunks for o in (chunk if isinstance(chunk, list) else [chunk])]
    # then nothing failed: every booking was made, every bid placed, and no on-commit match died on an error
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert failures == []
    assert [r.getMessage() for r in caplog.records if "on_commit" in r.getMessage()] == []
    assert _contention(caplog) == []  # not even a deadlock that a retry cured
    # and a bid whose slot was taken by a racing booking is matched by the next clearing: none is left open
    bid_services.bids_clear(time_budget_s=0.5)
    assert Bid.objects.filter(status=Bid.Status.MATCHED).count() == BIDS
    assert Booking.objects.filter(buyer=buyer, status="confirmed").count() == BIDS * (BOOKINGS_PER_BID + 1)
    # and the money adds up: the wallet holds exactly the open bookings' cash, no bid hold is left behind
    cash = Booking.objects.filter(buyer=buyer).aggregate(c=Sum("cash_amount"))["c"]
    assert wallet_summary(buyer.pk)["held"] == cash
    assert ledger_breaches() == []
