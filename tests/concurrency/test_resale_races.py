"""Races on real PostgreSQL around resale (issue 21): many purchases of one ask, and a purchase against the original
booking's cancellation. Threads, committed data."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import transaction

from ledger.models import JournalTransaction, LedgerAccount
from ledger.selectors import ledger_breaches, wallet_summary
from orders import resale_services
from orders.models import Booking, NodeReservation, ResaleAsk, ResaleSale
from tests.concurrency.test_booking_races import _assert_no_double_booking
from tests.factories import StartupFactory, member_of
from tests.helpers import iso, run_concurrently
from tests.orders.factories import fund
from tests.orders.resale_factories import hours_after, voucher_booking

PURCHASES = 100
# PostgreSQL allows 100 connections and other suites share it: 25 threads, each racing 4 purchases in a row, each in
# its own request (its own transaction).
THREADS = 25


def _buy_each(client, ask_id, bodies):
    codes = []
    for body in bodies:
        response = client.post(f"/api/v1/resale-asks/{ask_id}/buy/", body, format="json")
        codes.append(response.status_code)
    return codes


def _race(client_for, *, ask_nodes: int, nodes_each: int):
    # given a confirmed 4-node × 10 h booking paid 30 % by a voucher, resold: ask_nodes nodes of the last 5 hours
    booking, voucher = voucher_booking()
    ask = resale_services.resale_ask_create(
        booking_id=booking.pk,
        seller=booking.buyer,
        nodes=ask_nodes,
        start=hours_after(booking.start, 5),
        end=booking.end,
        price_per_gpu_hour=Decimal("12.0000"),
    )
    buyers = [StartupFactory() for _ in range(THREADS)]
    for buyer in buyers:
        fund(buyer, "100000.00")
    clients = [client_for(member_of(buyer)) for buyer in buyers]
    body = {"nodes": nodes_each, "start": iso(ask.start), "end": iso(ask.end)}
    voucher_before = LedgerAccount.objects.get(kind="voucher", owner_id=voucher.pk).balance
    seller_before = wallet_summary(booking.buyer_id)["balance"]
    # when 100 purchases race, 4 per thread
    results = run_concurrently(
        _buy_each, [(clients[i], ask.pk, [body] * (PURCHASES // THREADS)) for i in range(THREADS)]
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    codes = [code for result in results for code in result]
    return booking, voucher, ask, codes, voucher_before, seller_before


def _check_books(booking, voucher, ask, voucher_before, seller_before, *, sold_nodes: int):
    sales = list(ResaleSale.objects.filter(ask=ask))
    # exactly the ask's capacity was sold, and no node is booked twice at once
    assert sum(s.nodes for s in sales) == sold_nodes
    ask.refresh_from_db()
    assert (ask.status, ask.nodes_left) == ("sold", 0)
    _assert_no_double_booking(booking.listing.cluster)
    bought = NodeReservation.objects.filter(booking__resale_purchase__ask=ask, active=True).count()
    assert bought == sold_nodes
    # the seller was paid once per sale, the voucher share went back once per sale, and nothing else
    keys = JournalTransaction.objects.filter(idempotency_key__startswith="resale-sale:")
    assert keys.filter(kind="resale").count() == len(sales)
    assert keys.filter(kind="resale_voucher_return").count() == len(sales)
    share = booking.voucher_amount * sold_nodes * 5 / (booking.nodes * 10)  # node-hours sold ÷ booked
    assert sum(s.voucher_return for s in sales) == share
    assert LedgerAccount.objects.get(kind="voucher", owner_id=voucher.pk).balance == voucher_before + share
    assert wallet_summary(booking.buyer_id)["balance"] == seller_before + sum(s.seller_amount for s in sales)
    # every buyer paid exactly its sales
    for sale in sales:
        assert Booking.objects.get(pk=sale.booking_id).status == "confirmed"
    assert ledger_breaches() == []
    call_command("verify_ledger")


@pytest.mark.django_db(transaction=True)
def test_hundred_purchases_of_a_whole_ask_sell_it_once(client_for):
    # 100 purchases of both nodes of a 2-node ask
    booking, voucher, ask, codes, voucher_before, seller_before = _race(client_for, ask_nodes=2, nodes_each=2)
    # then one purchase won; every other one lost with a 409 (nodes gone) or a 404 (the ask is sold)
    assert codes.count(201) == 1, codes
    assert all(code in (201, 404, 409) for code in codes), codes
    _check_books(booking, voucher, ask, voucher_before, seller_before, sold_nodes=2)


@pytest.mark.django_db(transaction=True)
def test_hundred_one_node_purchases_sell_exactly_the_asks_nodes(client_for):
    # 100 purchases of one node each of a 4-node ask
    booking, voucher, ask, codes, voucher_before, seller_before = _race(client_for, ask_nodes=4, nodes_each=1)
    assert codes.count(201) == 4, codes
    assert all(code in (201, 404, 409) for code in codes), codes
    _check_books(booking, voucher, ask, voucher_before, seller_before, sold_nodes=4)


ROUNDS = 8


def _cancel(client, booking_id):
    return client.post(f"/api/v1/bookings/{booking_id}/cancel/").status_code


def _buy(client, ask_id, body):
    return client.post(f"/api/v1/resale-asks/{ask_id}/buy/", body, format="json").status_code


@pytest.mark.django_db(transaction=True)
def test_a_purchase_racing_the_bookings_cancellation_never_both_refunds_and_sells(client_for):
    buyer = StartupFactory()
    fund(buyer, "1000000.00")
    buyer_client = client_for(member_of(buyer))
    outcomes = set()
    for _ in range(ROUNDS):
        # given a confirmed voucher booking with an open ask of one node
        booking, _ = voucher_booking()
        seller_client = client_for(member_of(booking.buyer))
        ask = resale_services.resale_ask_create(
            booking_id=booking.pk,
            seller=booking.buyer,
            nodes=1,
            start=hours_after(booking.start, 5),
            end=booking.end,
            price_per_gpu_hour=Decimal("12.0000"),
        )
        seller_wallet = wallet_summary(booking.buyer_id)
        body = {"nodes": 1, "start": iso(ask.start), "end": iso(ask.end)}
        # when the seller cancels while a buyer buys
        cancelled, bought = run_concurrently(
            lambda kind, *args: _cancel(*args) if kind == "cancel" else _buy(*args),
            [("cancel", seller_client, booking.pk), ("buy", buyer_client, ask.pk, body)],
        )
        # then exactly one of them happened
        booking.refresh_from_db()
        sold = ResaleSale.objects.filter(seller_booking=booking).exists()
        assert (cancelled == 200) != (bought == 201), (cancelled, bought)
        if cancelled == 200:
            # refunded in full, nothing sold, no node of the booking left anywhere
            assert booking.status == "cancelled" and not sold
            assert bought in (404, 409)
            assert not NodeReservation.objects.filter(booking=booking, active=True).exists()
            assert wallet_summary(booking.buyer_id) == {
                "balance": seller_wallet["balance"] + booking.cash_amount,
                "held": seller_wallet["held"] - booking.cash_amount,
            }
            outcomes.add("cancelled")
        else:
            # sold, the booking still confirmed with its payment held (the provider is paid by its settlement)
            assert cancelled == 409 and booking.status == "confirmed" and sold
            assert wallet_summary(booking.buyer_id)["held"] == seller_wallet["held"]
            outcomes.add("sold")
        assert ResaleAsk.objects.get(pk=ask.pk).status in ("open", "sold")
        assert ledger_breaches() == []
    with transaction.atomic():
        call_command("verify_ledger")
    assert outcomes  # at least one round ran to an outcome
