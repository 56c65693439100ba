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
from tests.factories import (
    AcceleratorFactory,
    ClusterFactory,
    DataCenterFactory,
    ListingFactory,
    ProviderFactory,
    next_hour,
)
from tests.orders.factories import funded_startup
from tests.vouchers.factories import funded_program, issued_voucher
from vouchers.services import voucher_revoke

pytestmark = pytest.mark.django_db


def bid_kwargs(accelerator, *, nodes=1, hours=3, start_in=2, window=6, price="12", **extra):
    start = next_hour(start_in)
    return {
        "accelerators": [accelerator.slug],
        "nodes": nodes,
        "duration_hours": hours,
        "earliest_start": start,
        "latest_end": start + dt.timedelta(hours=window),
        "max_price_per_gpu_hour": Decimal(price),
        **extra,
    }


@pytest.fixture
def h100():
    return AcceleratorFactory(slug="h100-test")


def listing_of(accelerator, *, price="10", gpus=8, node_count=2):
    return ListingFactory(
        cluster=ClusterFactory(accelerator=accelerator, gpus_per_node=gpus, node_count=node_count),
        price_per_gpu_hour=Decimal(price),
    )


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


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"accelerators": ["no-such-chip"]}, "accelerators"),
        ({"nodes": 0}, "nodes"),
        ({"duration_hours": 10}, "latest_end"),
        ({"max_price_per_gpu_hour": Decimal("0")}, "max_price_per_gpu_hour"),
        ({"earliest_start": next_hour(2) + dt.timedelta(minutes=30)}, "earliest_start"),
        ({"earliest_start": next_hour(-3)}, "earliest_start"),
        ({"expires_at": timezone.now() - dt.timedelta(minutes=1)}, "expires_at"),
    ],
)
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
    services.booking_create(
        buyer=funded_startup(), listing_id=cheap.pk, nodes=1, start=next_hour(2), end=next_hour(4), confirm=True
    )
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
    services.booking_create(
        buyer=funded_startup(),
        listing_id=listing.pk,
        nodes=1,
        start=start,
        end=start + dt.timedelta(hours=3),
        confirm=True,
    )
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


# --- bids with vouchers: net prices, the net hold, re-planning (issue 17, defect 3) ----------------------------


def city_listing(accelerator, city, price, *, node_count=1):
    data_center = DataCenterFactory(provider=ProviderFactory(city=city), city=city)
    return ListingFactory(
        cluster=ClusterFactory(
            data_center=data_center, accelerator=accelerator, gpus_per_node=8, node_count=node_count
        ),
        price_per_gpu_hour=Decimal(price),
    )


def shanghai_voucher(holder, *, face_value="100000.00", ratio="0.50"):
    """A voucher that pays ``ratio`` of bookings in Shanghai data centres only."""
    program = funded_program(
        city="Shanghai", city_data_centers_only=True, domestic_ratio=Decimal(ratio), other_ratio=Decimal(ratio)
    )
    return issued_voucher(holder=holder, program=program, face_value=face_value)


def test_defect_3_a_shanghai_voucher_bid_fills_on_shanghai_at_net_5(h100, django_capture_on_commit_callbacks):
    # given: Hangzhou at 8, Shanghai at 10; the bid's voucher pays half, in Shanghai only
    hangzhou, shanghai = city_listing(h100, "Hangzhou", "8"), city_listing(h100, "Shanghai", "10")
    buyer = funded_startup("1000.00")
    voucher = shanghai_voucher(buyer)
    # when: placed with a limit of 12 (3 h × 8 GPUs)
    with django_capture_on_commit_callbacks(execute=True):
        bid = bid_services.bid_place(buyer=buyer, **bid_kwargs(h100, price="12", vouchers=[voucher.pk]))
    # then: matched on Shanghai; the voucher pays 120 of 240, the wallet 120 (5 per GPU-hour)
    bid.refresh_from_db()
    assert bid.status == Bid.Status.MATCHED
    assert bid.booking.listing_id == shanghai.pk
    assert (bid.booking.voucher_amount, bid.booking.cash_amount) == (Decimal("120.00"), Decimal("120.00"))
    assert hangzhou.bookings.count() == 0
    assert ledger_breaches() == []


def test_batch_clearing_seats_a_voucher_bid_where_its_voucher_pays(h100):
    # given: the same market and the bid open (placed without its on-commit match running)
    hangzhou, shanghai = city_listing(h100, "Hangzhou", "8"), city_listing(h100, "Shanghai", "10")
    buyer = funded_startup("1000.00")
    voucher = shanghai_voucher(buyer)
    bid = bid_services.bid_place(buyer=buyer, **bid_kwargs(h100, price="12", vouchers=[voucher.pk]))
    # when
    result = bid_services.bids_clear(time_budget_s=0.5)
    # then: on Shanghai; the surplus counted at the net price, (12 − 5) × 24
    assert (result.planned, result.matched) == (1, 1)
    assert Bid.objects.get(pk=bid.pk).booking.listing_id == shanghai.pk
    assert result.surplus == Decimal("168.00")
    assert hangzhou.bookings.count() == 0


def test_a_voucher_bid_holds_its_limit_as_net_cash_and_may_fill_above_it_gross(
    h100, django_capture_on_commit_callbacks
):
    # given: the only listing is at 20 per GPU-hour, above the bid's limit of 12; the voucher pays half there
    listing = city_listing(h100, "Shanghai", "20")
    buyer = funded_startup("1000.00")
    voucher = shanghai_voucher(buyer)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        bid = bid_services.bid_place(buyer=buyer, **bid_kwargs(h100, price="12", vouchers=[voucher.pk]))
    # then: the hold was the net maximum, 12 × 24 = 288 (the gross would be 480), and the bid fills at net 10
    assert bid.held_amount == Decimal("288.00")
    bid.refresh_from_db()
    assert bid.status == Bid.Status.MATCHED and bid.booking.listing_id == listing.pk
    assert (bid.booking.subtotal, bid.booking.cash_amount) == (Decimal("480.00"), Decimal("240.00"))
    assert wallet_summary(buyer.pk)["held"] == Decimal("240.00")
    # and a bid whose voucher cannot bring the price within its limit is not matched
    with django_capture_on_commit_callbacks(execute=True):
        other = bid_services.bid_place(
            buyer=buyer, **bid_kwargs(h100, price="9.99", start_in=10, vouchers=[voucher.pk])
        )
    assert Bid.objects.get(pk=other.pk).status == Bid.Status.OPEN


def _plan(bid):
    planned = bid_services._plan_one(bid.pk)
    assert planned is not None
    return planned


def test_a_slot_taken_meanwhile_re_plans_the_bid_onto_the_next_one(h100, caplog):
    # given: a plan for the cheap listing; then another buyer takes its only node for that slot
    cheap, dear = listing_of(h100, price="9", node_count=1), listing_of(h100, price="11")
    buyer = funded_startup("10000.00")
    bid = bid_services.bid_place(buyer=buyer, **bid_kwargs(h100, window=3, price="12"))
    assignment, origin = _plan(bid)
    assert assignment.listing_id == cheap.pk
    services.booking_create(
        buyer=funded_startup(), listing_id=cheap.pk, nodes=1, start=bid.earliest_start, end=bid.latest_end, confirm=True
    )
    # when
    with caplog.at_level("INFO", logger="orders.bid_services"):
        matched = bid_services._apply(assignment, origin)
    # then: re-planned on the current market and filled on the dearer listing; the failure was logged with why
    assert matched is not None and matched.booking.listing_id == dear.pk
    assert any(f"listing {cheap.pk}" in r.getMessage() and "attempt 1 of 3" in r.getMessage() for r in caplog.records)
    assert ledger_breaches() == []


def test_a_voucher_refused_at_match_time_is_logged_and_the_bid_stays_open(h100, caplog):
    # given: a plan on Shanghai at net 5; then the issuer revokes the voucher
    city_listing(h100, "Shanghai", "10")
    buyer = funded_startup("1000.00")
    voucher = shanghai_voucher(buyer)
    bid = bid_services.bid_place(buyer=buyer, **bid_kwargs(h100, price="6", vouchers=[voucher.pk]))
    assignment, origin = _plan(bid)
    voucher_revoke(voucher=voucher)
    # when
    with caplog.at_level("INFO", logger="orders.bid_services"):
        assert bid_services._apply(assignment, origin) is None
    # then: the refusal and the fruitless re-plan are both logged; the bid keeps its hold
    messages = [r.getMessage() for r in caplog.records]
    assert any("voucher_ineligible" in m and "revoked" in m for m in messages)
    assert any("no other slot" in m for m in messages)
    assert Bid.objects.get(pk=bid.pk).status == Bid.Status.OPEN
    assert wallet_summary(buyer.pk)["held"] == bid.held_amount
    assert ledger_breaches() == []


def test_a_voucher_paying_less_at_match_time_fails_the_net_limit_check(h100):
    # given: planned at net 5 (limit 6); then the buyer spends the voucher down to 40 on another booking, so it
    # would pay 40 of 240 at match time: 200 cash = 8.33 per GPU-hour
    listing = city_listing(h100, "Shanghai", "10", node_count=2)
    buyer = funded_startup("10000.00")
    voucher = shanghai_voucher(buyer, face_value="1000.00")
    bid = bid_services.bid_place(buyer=buyer, **bid_kwargs(h100, price="6", vouchers=[voucher.pk]))
    assignment, origin = _plan(bid)
    services.booking_create(
        buyer=buyer,
        listing_id=listing.pk,
        nodes=1,
        start=next_hour(30),
        end=next_hour(54),
        vouchers=[voucher.pk],
        confirm=True,
    )  # 10 × 8 × 24 = 1920: the voucher pays 960
    # when / then: bid_match refuses the booking (the whole transaction rolls back) and no re-plan fits
    with pytest.raises(Conflict):
        bid_services.bid_match(
            bid=bid,
            listing_id=listing.pk,
            start=origin + assignment.start * dt.timedelta(hours=1),
            end=origin + assignment.end * dt.timedelta(hours=1),
        )
    assert bid_services._apply(assignment, origin) is None
    assert Bid.objects.get(pk=bid.pk).status == Bid.Status.OPEN
    assert listing.bookings.count() == 1
    assert ledger_breaches() == []


def test_re_planning_is_bounded_when_the_market_keeps_offering_the_failed_slot(h100, monkeypatch, caplog):
    # given: a bid and a slot that bid_match refuses for a reason the market does not show
    listing_of(h100, price="9")
    bid = bid_services.bid_place(buyer=funded_startup("10000.00"), **bid_kwargs(h100, price="12"))
    assignment, origin = _plan(bid)
    calls = []

    def refuse(**kwargs):
        calls.append(kwargs)
        raise Conflict("Refused.", code="test")

    monkeypatch.setattr(bid_services, "bid_match", refuse)
    # when
    with caplog.at_level("INFO", logger="orders.bid_services"):
        result = bid_services._apply(assignment, origin)
    # then: tried once, re-planned onto the same slot, stopped (logged) rather than looping
    assert result is None
    assert len(calls) == 1
    assert any("still offers the slot that failed" in r.getMessage() for r in caplog.records)


def test_a_new_listing_matches_voucher_bids_whose_limit_is_below_its_price(h100):
    # given: an open voucher bid (limit 12) and, later, a Shanghai listing at 20 (net 10 after the voucher)
    buyer = funded_startup("1000.00")
    voucher = shanghai_voucher(buyer)
    listing_of(h100, price="50")  # so the accelerator has an open listing when the bid is placed
    bid = bid_services.bid_place(buyer=buyer, **bid_kwargs(h100, price="12", vouchers=[voucher.pk]))
    listing = city_listing(h100, "Shanghai", "20")
    # when
    matched = bid_services.bids_match_listing(listing_id=listing.pk)
    # then
    assert matched == 1
    assert Bid.objects.get(pk=bid.pk).booking.listing_id == listing.pk
