"""Resale of booked time (issue 21): asks, purchases that split reservations, the voucher share and the fee."""

from decimal import Decimal

import pytest
from django.core.management import call_command

from ledger.models import JournalTransaction, LedgerAccount
from ledger.selectors import ledger_breaches, wallet_summary
from marketplace.core.exceptions import Conflict
from orders import resale_services, services
from orders.disputes import DISPUTE_WINDOW
from orders.models import Booking, NodeReservation, ResaleAsk, ResaleSale
from oversight.models import AnomalyFlag
from settlement import services as settlement_services
from tests.factories import StartupFactory
from tests.orders.factories import fund
from tests.orders.resale_factories import hours_after, voucher_booking
from vouchers.models import Voucher

pytestmark = pytest.mark.django_db


def _balance(kind, owner_id):
    return LedgerAccount.objects.get(kind=kind, owner_id=owner_id).balance


def _active_periods(booking):
    return sorted(
        (r.node.index, r.period.lower, r.period.upper)
        for r in NodeReservation.objects.filter(booking=booking, active=True).select_related("node")
    )


def _ask(booking, *, nodes=2, from_hour=5, to_hour=10, price="12.0000"):
    return resale_services.resale_ask_create(
        booking_id=booking.pk,
        seller=booking.buyer,
        nodes=nodes,
        start=hours_after(booking.start, from_hour),
        end=hours_after(booking.start, to_hour),
        price_per_gpu_hour=Decimal(price),
    )


def test_a_purchase_splits_the_reservations_pays_the_seller_and_returns_the_voucher_share(
    django_capture_on_commit_callbacks,
):
    # given a confirmed 4-node × 10 h booking (8 GPUs a node, 10.00 per GPU-hour: 3 200.00, 30 % by voucher: 960.00)
    booking, voucher = voucher_booking()
    assert (booking.subtotal, booking.voucher_amount) == (Decimal("3200.00"), Decimal("960.00"))
    voucher_before = _balance("voucher", voucher.pk)
    ask = _ask(booking)  # 2 nodes, the last 5 hours, 12.00 per GPU-hour
    buyer = StartupFactory()
    fund(buyer, "5000.00")
    # when the buyer takes both nodes for the whole window
    with django_capture_on_commit_callbacks(execute=True):
        sale = resale_services.resale_buy(ask_id=ask.pk, buyer=buyer, nodes=2, start=ask.start, end=ask.end)
    # then 80 GPU-hours × 12.00 = 960.00: 960 × 10/40 node-hours = 240.00 back to the voucher, a 3 % fee, the rest
    assert (sale.amount, sale.voucher_return, sale.fee, sale.seller_amount) == (
        Decimal("960.00"),
        Decimal("240.00"),
        Decimal("28.80"),
        Decimal("691.20"),
    )
    assert _balance("voucher", voucher.pk) == voucher_before + Decimal("240.00")
    assert wallet_summary(buyer.pk)["balance"] == Decimal("4040.00")
    seller_wallet = wallet_summary(booking.buyer_id)
    assert seller_wallet["balance"] == Decimal("1000000.00") - booking.cash_amount + Decimal("691.20")
    kinds = set(
        JournalTransaction.objects.filter(idempotency_key__startswith=f"resale-sale:{sale.pk}").values_list(
            "kind", flat=True
        )
    )
    assert kinds == {"resale", "resale_voucher_return"}
    # the buyer's booking is confirmed, paid here (amounts zero), and holds the two nodes for the bought window
    bought = Booking.objects.get(pk=sale.booking.pk)
    assert (bought.status, bought.buyer_id, bought.nodes, bought.subtotal) == ("confirmed", buyer.pk, 2, Decimal("0"))
    n = sorted(booking.listing.cluster.nodes.values_list("index", flat=True))
    assert _active_periods(bought) == [(n[0], ask.start, ask.end), (n[1], ask.start, ask.end)]
    # the seller keeps the first two nodes up to the sold window, the other two whole
    assert _active_periods(booking) == [
        (n[0], booking.start, ask.start),
        (n[1], booking.start, ask.start),
        (n[2], booking.start, booking.end),
        (n[3], booking.start, booking.end),
    ]
    ask.refresh_from_db()
    assert (ask.status, ask.nodes_left) == ("sold", 0)
    # voucher-paid time resold above its price (12 > 10): flagged by oversight
    flag = AnomalyFlag.objects.get(kind=AnomalyFlag.Kind.RESALE_ABOVE_PRICE)
    assert (flag.booking_id, flag.organization_id, flag.details["origin_booking"]) == (
        bought.pk,
        booking.buyer_id,
        booking.pk,
    )
    assert ledger_breaches() == []
    call_command("verify_ledger")


def test_neither_side_of_a_resale_can_cancel():
    # given a sale out of a booking
    booking, _ = voucher_booking()
    ask = _ask(booking, nodes=1)
    buyer = StartupFactory()
    fund(buyer)
    sale = resale_services.resale_buy(ask_id=ask.pk, buyer=buyer, nodes=1, start=ask.start, end=ask.end)
    # when either buyer cancels / then 409 and both bookings stay confirmed with their payment held
    for resold in (booking, sale.booking):
        with pytest.raises(Conflict) as refused:
            services.booking_cancel(booking=resold.pk)
        assert refused.value.code == "resold"
    assert set(Booking.objects.filter(pk__in=[booking.pk, sale.booking.pk]).values_list("status", flat=True)) == {
        "confirmed"
    }


def test_resold_time_can_be_resold_again_without_a_second_voucher_return():
    # given time bought on resale
    booking, voucher = voucher_booking()
    ask = _ask(booking, nodes=1, price="10.0000")
    first_buyer, second_buyer = StartupFactory(), StartupFactory()
    fund(first_buyer)
    fund(second_buyer)
    first = resale_services.resale_buy(ask_id=ask.pk, buyer=first_buyer, nodes=1, start=ask.start, end=ask.end)
    voucher_after_first = _balance("voucher", voucher.pk)
    # when its buyer resells the last 2 hours and someone buys them
    again = resale_services.resale_ask_create(
        booking_id=first.booking.pk,
        seller=first_buyer,
        nodes=1,
        start=hours_after(ask.start, 3),
        end=ask.end,
        price_per_gpu_hour=Decimal("9.0000"),
    )
    second = resale_services.resale_buy(ask_id=again.pk, buyer=second_buyer, nodes=1, start=again.start, end=again.end)
    # then 16 GPU-hours × 9.00 = 144.00, nothing more to the voucher (its share went back on the first sale)
    assert (second.amount, second.voucher_return, second.fee, second.seller_amount) == (
        Decimal("144.00"),
        Decimal("0"),
        Decimal("4.32"),
        Decimal("139.68"),
    )
    assert _balance("voucher", voucher.pk) == voucher_after_first
    first_node = min(booking.listing.cluster.nodes.values_list("index", flat=True))
    assert _active_periods(first.booking) == [(first_node, ask.start, again.start)]
    assert _active_periods(second.booking) == [(first_node, again.start, again.end)]
    assert ledger_breaches() == []


def test_the_voucher_share_goes_to_the_program_budget_once_the_voucher_has_ended():
    # given a resale ask of voucher-paid time, and the voucher expired since
    booking, voucher = voucher_booking()
    ask = _ask(booking, nodes=1)
    Voucher.objects.filter(pk=voucher.pk).update(status=Voucher.Status.EXPIRED)
    budget_before = _balance("program_budget", voucher.program_id)
    voucher_before = _balance("voucher", voucher.pk)
    buyer = StartupFactory()
    fund(buyer)
    # when it is bought
    sale = resale_services.resale_buy(ask_id=ask.pk, buyer=buyer, nodes=1, start=ask.start, end=ask.end)
    # then the share (960 × 5/40 = 120.00) went to the program budget, not to the ended voucher
    assert sale.voucher_return == Decimal("120.00")
    assert _balance("program_budget", voucher.program_id) == budget_before + Decimal("120.00")
    assert _balance("voucher", voucher.pk) == voucher_before
    assert ledger_breaches() == []


def test_partial_purchases_return_the_voucher_share_exactly_in_total():
    # given an ask of 3 nodes of voucher-paid time bought one node and one sub-window at a time
    booking, voucher = voucher_booking(nodes=3, hours=7)  # 3 × 7 × 8 × 10.00 = 1 680.00, voucher 504.00
    ask = _ask(booking, nodes=3, from_hour=1, to_hour=7, price="10.0000")
    voucher_before = _balance("voucher", voucher.pk)
    buyer = StartupFactory()
    fund(buyer)
    windows = [(1, 7), (2, 7), (4, 7)]  # resold time runs to the ask's end
    sales = [
        resale_services.resale_buy(
            ask_id=ask.pk,
            buyer=buyer,
            nodes=1,
            start=hours_after(booking.start, a),
            end=hours_after(booking.start, b),
        )
        for a, b in windows
    ]
    # then the returns add up to the voucher part × node-hours sold ÷ booked (14/21 of 504.00 = 336.00)
    assert sum(s.voucher_return for s in sales) == Decimal("336.00")
    assert _balance("voucher", voucher.pk) == voucher_before + Decimal("336.00")
    ask.refresh_from_db()
    assert (ask.status, ask.nodes_left) == ("sold", 0)
    assert ResaleSale.objects.filter(ask=ask).count() == 3
    assert ledger_breaches() == []


def test_the_sweep_withdraws_asks_whose_window_started_and_is_a_no_op_the_second_time():
    # given two open asks, one starting later than the other
    booking, _ = voucher_booking(voucher=False)
    early = _ask(booking, nodes=1, from_hour=2, to_hour=10, price="8.0000")
    late = _ask(booking, nodes=1, from_hour=6, to_hour=10, price="8.0000")
    # when the sweep runs once the early one's window has started
    moment = hours_after(booking.start, 3)
    assert resale_services.resale_asks_sweep(now=moment) == 1
    assert resale_services.resale_asks_sweep(now=moment) == 0
    # then only the early one is withdrawn
    assert dict(ResaleAsk.objects.values_list("pk", "status")) == {early.pk: "withdrawn", late.pk: "open"}


def test_the_sweep_withdraws_the_asks_of_a_cancelled_booking():
    # given an open ask, then the booking cancelled (nothing was sold yet)
    booking, _ = voucher_booking(voucher=False)
    ask = _ask(booking, nodes=1, price="8.0000")
    services.booking_cancel(booking=booking.pk)
    # when the sweep runs / then the ask is withdrawn and cannot be bought
    assert resale_services.resale_asks_sweep() == 1
    ask.refresh_from_db()
    assert ask.status == "withdrawn"


def test_withdrawn_or_sold_out_asks_cannot_be_bought():
    booking, _ = voucher_booking(voucher=False)
    ask = _ask(booking, nodes=1, price="8.0000")
    resale_services.resale_ask_withdraw(ask=ask.pk, seller=booking.buyer)
    buyer = StartupFactory()
    fund(buyer)
    with pytest.raises(Exception) as refused:
        resale_services.resale_buy(ask_id=ask.pk, buyer=buyer, nodes=1, start=ask.start, end=ask.end)
    assert refused.value.status == 404
    assert ResaleSale.objects.count() == 0


def test_both_bookings_settle_the_provider_is_paid_once_by_the_original():
    # given a sale out of a voucher booking
    booking, _ = voucher_booking()
    ask = _ask(booking, nodes=1)
    buyer = StartupFactory()
    fund(buyer)
    sale = resale_services.resale_buy(ask_id=ask.pk, buyer=buyer, nodes=1, start=ask.start, end=ask.end)
    # when both bookings have run (status set directly: no clock travel here) and settle
    Booking.objects.filter(pk__in=[booking.pk, sale.booking.pk]).update(status="completed")
    later = max(booking.end, sale.booking.end) + DISPUTE_WINDOW  # settlement waits for the dispute window
    settlement_services.booking_settle(booking_id=booking.pk, now=later)
    settlement_services.booking_settle(booking_id=sale.booking.pk, now=later)
    # then the original pays the provider its whole subtotal less the fee; the resale booking posts nothing
    provider_id = booking.listing.cluster.data_center.provider_id
    assert _balance("provider_payable", provider_id) == booking.subtotal - resale_services.platform_fee(
        booking.subtotal
    )
    assert not JournalTransaction.objects.filter(idempotency_key=f"booking:{sale.booking.pk}:settle").exists()
    assert set(Booking.objects.filter(pk__in=[booking.pk, sale.booking.pk]).values_list("status", flat=True)) == {
        "settled"
    }
    assert ledger_breaches() == []
