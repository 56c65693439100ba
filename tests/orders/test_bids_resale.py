"""Bids matching resale asks (issue 21): resale asks are part of the bids market (continuous, on a new ask, and the
batch clearing), priced in cash, never one's own, filled through ``resale_buy`` in the bid's match transaction."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from ledger.models import LedgerAccount
from ledger.selectors import ledger_breaches, wallet_summary
from marketplace.core.exceptions import Conflict
from orders import bid_services, matching, resale_services, resale_tasks
from orders.models import Bid, Booking, NodeReservation, ResaleAsk, ResaleSale
from orders.signals import resale_ask_opened
from tests.concurrency.test_booking_races import _assert_no_double_booking
from tests.factories import ClusterFactory, ListingFactory, StartupFactory
from tests.helpers import run_concurrently
from tests.orders.factories import fund
from tests.orders.resale_factories import domestic_listing, hours_after, voucher_booking
from tests.vouchers.factories import issued_voucher

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def no_enqueue():
    """The real receiver of ``resale_ask_opened`` disconnected (it would publish to the broker): tests call the
    matching themselves, or check the signal with a receiver of their own."""
    resale_ask_opened.disconnect(dispatch_uid="orders.match_on_resale_ask_opened")
    yield
    resale_ask_opened.connect(resale_tasks.on_resale_ask_opened, dispatch_uid="orders.match_on_resale_ask_opened")


def _market(*, ask_price="8.0000", ask_nodes=2, from_hour=5, other_listing_price="9.0000"):
    """A confirmed 4-node × 10 h booking (8 GPUs a node, fully booking its cluster, 30 % paid by a voucher), an
    open resale ask of ``ask_nodes`` nodes for its hours ``from_hour``–10, and another listing of the same chip
    with 4 free nodes (None: no other listing). Returns (booking, ask, other listing)."""
    listing = domestic_listing(node_count=4, price="10.0000")
    booking, _ = voucher_booking(listing=listing)
    other = None
    if other_listing_price is not None:
        other = ListingFactory(
            cluster=ClusterFactory(accelerator=listing.cluster.accelerator, node_count=4, gpus_per_node=8),
            price_per_gpu_hour=Decimal(other_listing_price),
        )
    ask = resale_services.resale_ask_create(
        booking_id=booking.pk,
        seller=booking.buyer,
        nodes=ask_nodes,
        start=hours_after(booking.start, from_hour),
        end=booking.end,
        price_per_gpu_hour=Decimal(ask_price),
    )
    return booking, ask, other


def _bid(booking, *, buyer=None, nodes=2, hours=5, price="12", vouchers=(), funds="100000.00"):
    """A bid for the chip of ``booking`` whose window is the booking's: placed, NOT yet matched (in these
    non-transactional tests the match on commit does not run)."""
    if buyer is None:
        buyer = StartupFactory()
        fund(buyer, funds)
    return bid_services.bid_place(
        buyer=buyer,
        accelerators=[booking.listing.cluster.accelerator.slug],
        nodes=nodes,
        duration_hours=hours,
        earliest_start=booking.start,
        latest_end=booking.end,
        max_price_per_gpu_hour=Decimal(price),
        vouchers=vouchers,
    )


def _voucher_bidder():
    """A funded startup holding an issued voucher (30 % on the domestic chip): (startup, voucher)."""
    buyer = StartupFactory()
    fund(buyer, "100000.00")
    return buyer, issued_voucher(holder=buyer, face_value="100000.00")


def _books_balance():
    assert ledger_breaches() == []
    call_command("verify_ledger")


# --- continuous matching ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_bid_takes_a_cheaper_resale_ask_over_a_listing(no_enqueue):
    # given: a resale ask of 2 nodes × the last 5 h at 8.00, and a free listing of the same chip at 9.00
    booking, ask, _ = _market(ask_price="8.0000", other_listing_price="9.0000")
    seller_before = wallet_summary(booking.buyer_id)["balance"]
    bid = _bid(booking, nodes=2, hours=5, price="12")
    assert bid.held_amount == Decimal("12") * 8 * 2 * 5
    # when
    matched = bid_services.bid_try_match(bid=bid)
    # then: filled from the resale ask, in the slot that ends where the ask ends, at its price (pay-as-ask)
    assert matched is not None and matched.status == Bid.Status.MATCHED
    sale = ResaleSale.objects.get(ask=ask)
    assert matched.booking_id == sale.booking_id
    assert (sale.nodes, sale.start, sale.end, sale.price_per_gpu_hour) == (2, ask.start, ask.end, Decimal("8.0000"))
    assert sale.amount == Decimal("8") * 8 * 2 * 5
    assert ResaleAsk.objects.get(pk=ask.pk).status == ResaleAsk.Status.SOLD
    # the hold went back in full, the buyer paid the sale and holds nothing more; the seller got its share
    wallet = wallet_summary(matched.buyer_id)
    assert wallet["held"] == Decimal("0")
    assert wallet["balance"] == Decimal("100000.00") - sale.amount
    assert wallet_summary(booking.buyer_id)["balance"] == seller_before + sale.seller_amount
    event = AuditEvent.objects.get(action="bid.matched", object_id=str(bid.pk))
    assert (event.data["resale_ask"], event.data["resale_sale"]) == (ask.pk, sale.pk)
    _books_balance()


@pytest.mark.django_db
def test_a_bid_whose_wallet_holds_only_its_hold_pays_the_resale_from_the_released_hold(no_enqueue):
    # given: the buyer deposited exactly the bid's hold (12.00 × 80 GPU-hours): nothing is free in its wallet
    booking, ask, _ = _market(ask_price="8.0000", other_listing_price=None)
    bid = _bid(booking, nodes=2, hours=5, price="12", funds="960.00")
    assert wallet_summary(bid.buyer_id)["balance"] == Decimal("0")
    # when
    matched = bid_services.bid_try_match(bid=bid)
    # then: the release is posted before the payment in the same ledger step; 320.00 comes back to the wallet
    assert matched is not None and matched.booking_id == ResaleSale.objects.get(ask=ask).booking_id
    wallet = wallet_summary(bid.buyer_id)
    assert (wallet["balance"], wallet["held"]) == (Decimal("320.00"), Decimal("0"))
    _books_balance()


@pytest.mark.django_db
def test_a_listing_cheaper_than_the_resale_ask_wins(no_enqueue):
    # given: the resale ask at 9.50, the listing at 9.00
    booking, ask, other = _market(ask_price="9.5000", other_listing_price="9.0000")
    bid = _bid(booking)
    # when
    matched = bid_services.bid_try_match(bid=bid)
    # then
    assert matched.booking.listing_id == other.pk
    assert not ResaleSale.objects.filter(ask=ask).exists()
    assert ResaleAsk.objects.get(pk=ask.pk).nodes_left == 2


@pytest.mark.django_db
def test_a_bid_never_matches_its_own_organizations_resale_ask(no_enqueue):
    # given: the only affordable ask is the bidder's own resale ask (the other listing is too dear)
    booking, ask, _ = _market(ask_price="8.0000", other_listing_price="50.0000")
    held_before = wallet_summary(booking.buyer_id)["held"]
    own = _bid(booking, buyer=booking.buyer)
    # when / then: continuous matching, matching on the new ask and the batch clearing all leave it open
    assert bid_services.bid_try_match(bid=own) is None
    assert bid_services.bids_match_resale_ask(ask_id=ask.pk) == 0
    assert bid_services.bids_clear(time_budget_s=0.5).matched == 0
    assert Bid.objects.get(pk=own.pk).status == Bid.Status.OPEN
    # a direct attempt is refused, writes nothing, and the hold stays
    with pytest.raises(Conflict) as caught:
        bid_services.bid_match_resale(bid=own, ask_id=ask.pk, start=ask.start, end=ask.end)
    assert caught.value.code == "own_ask"
    assert ResaleAsk.objects.get(pk=ask.pk).nodes_left == 2
    assert wallet_summary(booking.buyer_id)["held"] == held_before + own.held_amount
    # while another organization's identical bid takes that very ask
    other = _bid(booking)
    assert bid_services.bid_try_match(bid=other).booking_id == ResaleSale.objects.get(ask=ask).booking_id
    _books_balance()


@pytest.mark.django_db
def test_the_engine_gives_an_own_ask_to_no_bid_of_its_seller(no_enqueue):
    # given
    booking, ask, other = _market(other_listing_price="9.0000")
    own, foreign = _bid(booking, buyer=booking.buyer), _bid(booking)
    # when
    engine_bids, asks = bid_services._engine_market([own, foreign], bid_services._origin())
    # then: the ask is in the market once per bid duration (here one), ending where it ends, on its own capacity
    resale = [a for a in asks if bid_services.resale_ask_of(a.listing_id) == ask.pk]
    assert [(a.cluster_id, a.min_hours, a.end - a.start, len(a.node_free)) for a in resale] == [(-ask.pk, 5, 5, 2)]
    assert resale[0].price == Decimal("8.0000")
    by_id = {b.bid_id: b for b in engine_bids}
    assert resale[0].listing_id not in by_id[own.pk].net_prices  # the seller's bid: a table without its own ask
    assert other.pk in by_id[own.pk].net_prices
    assert by_id[foreign.pk].net_prices is None  # a plain bid of another organization: the whole market
    assert matching.match_one(by_id[own.pk], asks).listing_id == other.pk


@pytest.mark.django_db
def test_a_partial_window_and_fewer_nodes_leave_the_rest_of_the_ask_open(no_enqueue):
    # given: an ask of all 4 nodes for the last 8 hours; no other listing
    booking, ask, _ = _market(ask_nodes=4, from_hour=2, other_listing_price=None)
    short = _bid(booking, nodes=1, hours=3)
    # when: a 1-node, 3-hour bid matches
    assert bid_services.bid_try_match(bid=short) is not None
    # then: it bought the last 3 hours of one node; 3 nodes stay open for the whole window
    sale = ResaleSale.objects.get(ask=ask)
    assert (sale.nodes, sale.start, sale.end) == (1, ask.end - 3 * HOUR, ask.end)
    ask.refresh_from_db()
    assert (ask.status, ask.nodes_left) == (ResaleAsk.Status.OPEN, 3)
    # and a 2-node bid for the whole 8 hours takes two of the rest
    whole = _bid(booking, nodes=2, hours=8)
    assert bid_services.bid_try_match(bid=whole) is not None
    second = ResaleSale.objects.filter(ask=ask).exclude(pk=sale.pk).get()
    assert (second.nodes, second.start, second.end) == (2, ask.start, ask.end)
    ask.refresh_from_db()
    assert (ask.status, ask.nodes_left) == (ResaleAsk.Status.OPEN, 1)
    # three different nodes were sold; the seller keeps the fourth whole and the first 5 hours of the short one
    sold = NodeReservation.objects.filter(booking__resale_purchase__ask=ask, active=True)
    assert sold.values("node_id").distinct().count() == 3
    kept = NodeReservation.objects.filter(booking=booking, active=True)
    assert sum((r.period.upper - r.period.lower) // HOUR for r in kept) == 10 * 4 - 3 - 2 * 8
    _assert_no_double_booking(booking.listing.cluster)
    _books_balance()


@pytest.mark.django_db
def test_a_bid_that_cannot_end_where_the_ask_ends_does_not_match_it(no_enqueue):
    # given: the ask runs to the booking's end; the bid must end 2 hours earlier
    booking, ask, _ = _market(ask_nodes=2, from_hour=2, other_listing_price=None)
    buyer = StartupFactory()
    fund(buyer, "100000.00")
    bid = bid_services.bid_place(
        buyer=buyer,
        accelerators=[booking.listing.cluster.accelerator.slug],
        nodes=1,
        duration_hours=3,
        earliest_start=ask.start,
        latest_end=ask.end - 2 * HOUR,
        max_price_per_gpu_hour=Decimal("12"),
    )
    # when / then
    assert bid_services.bid_try_match(bid=bid) is None
    assert bid_services.bids_match_resale_ask(ask_id=ask.pk) == 0
    assert ResaleAsk.objects.get(pk=ask.pk).nodes_left == 2


# --- vouchers: resale time is paid in cash --------------------------------------------------------------------


@pytest.mark.django_db
def test_a_voucher_bid_pays_a_resale_ask_in_cash_and_keeps_its_voucher(no_enqueue):
    # given: a resale ask at 6.00; the listing at 9.00 nets 6.30 after the bidder's 30 % voucher
    booking, ask, other = _market(ask_price="6.0000", other_listing_price="9.0000")
    buyer, voucher = _voucher_bidder()
    voucher_before = LedgerAccount.objects.get(kind="voucher", owner_id=voucher.pk).balance
    bid = _bid(booking, buyer=buyer, price="6.5", vouchers=[voucher.pk])
    # when
    matched = bid_services.bid_try_match(bid=bid)
    # then: the resale ask (6.00 cash) beats the listing (6.30 net); the voucher is not touched
    sale = ResaleSale.objects.get(ask=ask)
    assert matched.booking_id == sale.booking_id
    assert not Booking.objects.filter(listing=other).exists()
    assert LedgerAccount.objects.get(kind="voucher", owner_id=voucher.pk).balance == voucher_before
    assert wallet_summary(buyer.pk)["held"] == Decimal("0")
    assert wallet_summary(buyer.pk)["balance"] == Decimal("100000.00") - sale.amount
    _books_balance()


@pytest.mark.django_db
def test_a_voucher_bid_prefers_a_listing_whose_net_price_is_lower_than_the_resale_cash_price(no_enqueue):
    # given: the resale ask at 7.00 cash; the listing at 9.00 nets 6.30 with the voucher
    booking, ask, other = _market(ask_price="7.0000", other_listing_price="9.0000")
    buyer, voucher = _voucher_bidder()
    bid = _bid(booking, buyer=buyer, price="8", vouchers=[voucher.pk])
    # when
    matched = bid_services.bid_try_match(bid=bid)
    # then
    assert matched.booking.listing_id == other.pk
    assert matched.booking.voucher_amount > 0
    assert ResaleAsk.objects.get(pk=ask.pk).nodes_left == 2


@pytest.mark.django_db
def test_a_voucher_bid_whose_limit_is_below_the_resale_cash_price_does_not_take_it(no_enqueue):
    # given: the resale ask at 7.00 cash, no other listing; the bid's limit 6.50 (its voucher cannot pay resale)
    booking, ask, _ = _market(ask_price="7.0000", other_listing_price=None)
    buyer, voucher = _voucher_bidder()
    bid = _bid(booking, buyer=buyer, price="6.5", vouchers=[voucher.pk])
    # when / then
    assert bid_services.bid_try_match(bid=bid) is None
    assert bid_services.bids_match_resale_ask(ask_id=ask.pk) == 0
    assert ResaleAsk.objects.get(pk=ask.pk).nodes_left == 2


# --- a new ask, and the batch clearing ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_resale_ask_is_announced_on_commit_and_matches_the_open_bids(
    no_enqueue, django_capture_on_commit_callbacks
):
    # given: open bids placed while nothing affordable was on offer
    listing = domestic_listing(node_count=4, price="10.0000")
    booking, _ = voucher_booking(listing=listing)
    served = _bid(booking, nodes=2, hours=5, price="12")
    too_low = _bid(booking, nodes=2, hours=5, price="7")
    assert bid_services.bid_try_match(bid=served) is None
    sent = []

    def receiver(sender, *, ask_id, **kwargs):
        sent.append(ask_id)

    resale_ask_opened.connect(receiver, weak=False, dispatch_uid="test-resale-ask-opened")
    try:
        # when: a resale ask opens (the signal goes out on commit only)
        with django_capture_on_commit_callbacks(execute=True):
            ask = resale_services.resale_ask_create(
                booking_id=booking.pk,
                seller=booking.buyer,
                nodes=2,
                start=hours_after(booking.start, 5),
                end=booking.end,
                price_per_gpu_hour=Decimal("8.0000"),
            )
            assert sent == []
    finally:
        resale_ask_opened.disconnect(dispatch_uid="test-resale-ask-opened")
    assert sent == [ask.pk]
    # and the task it enqueues runs (here in-process), twice
    assert (resale_tasks.match_resale_ask(ask.pk), resale_tasks.match_resale_ask(ask.pk)) == (1, 0)
    # then
    assert Bid.objects.get(pk=served.pk).status == Bid.Status.MATCHED
    assert Bid.objects.get(pk=too_low.pk).status == Bid.Status.OPEN
    assert ResaleAsk.objects.get(pk=ask.pk).status == ResaleAsk.Status.SOLD
    _books_balance()


@pytest.mark.django_db
def test_the_batch_clearing_uses_resale_asks(no_enqueue):
    # given: a resale ask of 4 nodes × the last 5 h at 8.00, a listing at 11.00, and two 2-node bids
    booking, ask, other = _market(ask_price="8.0000", ask_nodes=4, other_listing_price="11.0000")
    rich = _bid(booking, nodes=2, hours=5, price="12")
    poor = _bid(booking, nodes=2, hours=5, price="9")  # only the resale ask is within its limit
    # when
    result = bid_services.bids_clear(time_budget_s=1.0)
    # then: both fill on the resale ask (most surplus in all), which is sold out
    assert (result.open_bids, result.matched) == (2, 2)
    sales = {s.booking_id for s in ResaleSale.objects.filter(ask=ask)}
    assert {Bid.objects.get(pk=rich.pk).booking_id, Bid.objects.get(pk=poor.pk).booking_id} == sales
    assert ResaleAsk.objects.get(pk=ask.pk).status == ResaleAsk.Status.SOLD
    assert not Booking.objects.filter(listing=other).exists()
    gpu_hours = 8 * 2 * 5
    assert result.surplus == (Decimal("12") - Decimal("8")) * gpu_hours + (Decimal("9") - Decimal("8")) * gpu_hours
    _books_balance()


@pytest.mark.django_db
def test_the_batch_clearing_gives_a_scarce_resale_ask_to_the_bid_that_gains_most(no_enqueue):
    # given: a resale ask of 2 nodes at 8.00, a listing at 11.00; the poor bid can afford only the resale ask
    booking, ask, other = _market(ask_price="8.0000", ask_nodes=2, other_listing_price="11.0000")
    rich = _bid(booking, nodes=2, hours=5, price="12")
    poor = _bid(booking, nodes=2, hours=5, price="9")
    # when
    result = bid_services.bids_clear(time_budget_s=1.0)
    # then: rich on the resale ask (4.00 × 80) beats poor there plus rich on the listing (1.00 × 80 each)
    assert result.matched == 1
    assert Bid.objects.get(pk=rich.pk).booking_id == ResaleSale.objects.get(ask=ask).booking_id
    assert Bid.objects.get(pk=poor.pk).status == Bid.Status.OPEN
    assert not Booking.objects.filter(listing=other).exists()
    assert result.surplus == Decimal("4") * 8 * 2 * 5
    _books_balance()


# --- a race: a bid matching the ask while another buyer buys it directly -----------------------------------------

ROUNDS = 4


def _match(bid_id):
    return bid_services.bid_try_match(bid=bid_id)


def _buy(ask_id, buyer, nodes, start, end):
    return resale_services.resale_buy(ask_id=ask_id, buyer=buyer, nodes=nodes, start=start, end=end)


@pytest.mark.django_db(transaction=True)
def test_a_bid_racing_a_direct_purchase_of_the_same_ask_never_oversells(no_enqueue):
    outcomes = set()
    for _ in range(ROUNDS):
        # given: a bid placed while nothing fits (its match on commit finds nothing), then a 2-node resale ask
        listing = domestic_listing(node_count=4, price="10.0000")
        booking, _ = voucher_booking(listing=listing)
        bid = _bid(booking, nodes=2, hours=5, price="12")
        assert Bid.objects.get(pk=bid.pk).status == Bid.Status.OPEN
        ask = resale_services.resale_ask_create(
            booking_id=booking.pk,
            seller=booking.buyer,
            nodes=2,
            start=hours_after(booking.start, 5),
            end=booking.end,
            price_per_gpu_hour=Decimal("8.0000"),
        )
        direct = StartupFactory()
        fund(direct, "100000.00")
        seller_before = wallet_summary(booking.buyer_id)["balance"]
        # when: the bid's matching and a direct purchase of both nodes race
        matched, bought = run_concurrently(
            lambda kind, *args: _match(*args) if kind == "match" else _buy(*args),
            [("match", bid.pk), ("buy", ask.pk, direct, 2, ask.start, ask.end)],
        )
        # then: exactly one got the nodes; the loser wrote nothing
        sales = list(ResaleSale.objects.filter(ask=ask))
        assert len(sales) == 1 and sum(s.nodes for s in sales) == 2
        bid.refresh_from_db()
        if bid.status == Bid.Status.MATCHED:
            outcomes.add("bid")
            assert isinstance(bought, Exception) and sales[0].buyer_id == bid.buyer_id
            assert bid.booking_id == sales[0].booking_id
            wallet = wallet_summary(bid.buyer_id)
            assert (wallet["held"], wallet["balance"]) == (Decimal("0"), Decimal("100000.00") - sales[0].amount)
            assert wallet_summary(direct.pk)["balance"] == Decimal("100000.00")
        else:
            outcomes.add("direct")
            assert matched is None and sales[0].buyer_id == direct.pk
            assert bid.status == Bid.Status.OPEN
            assert wallet_summary(bid.buyer_id)["held"] == bid.held_amount
            assert wallet_summary(direct.pk)["balance"] == Decimal("100000.00") - sales[0].amount
        ask.refresh_from_db()
        assert (ask.status, ask.nodes_left) == (ResaleAsk.Status.SOLD, 0)
        # the seller was paid exactly once, for what sold
        assert wallet_summary(booking.buyer_id)["balance"] == seller_before + sales[0].seller_amount
        assert NodeReservation.objects.filter(booking__resale_purchase__ask=ask, active=True).count() == 2
        _assert_no_double_booking(booking.listing.cluster)
        _books_balance()
    assert outcomes  # (which side wins varies from round to round)
