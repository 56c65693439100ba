"""100 parallel bookings through ``booking_create``, each paying with the same voucher: the voucher is never
overdrawn, holds never exceed its face value, the annual cap holds, and the ledger verifies."""

from decimal import Decimal

import pytest
from django.db.models import Sum

from ledger.models import LedgerAccount
from ledger.selectors import ledger_breaches, wallet_summary
from marketplace.core.exceptions import ApplicationError
from orders import services as order_services
from orders.models import Booking
from tests.factories import ClusterFactory, ListingFactory, StartupFactory
from tests.helpers import run_concurrently
from tests.orders.factories import booking_kwargs, fund
from tests.vouchers.factories import funded_program, issued_voucher
from vouchers.models import Redemption

BOOKINGS = 100
THREADS = 25  # PostgreSQL's 100 connections are shared with other suites: 25 threads × 4 bookings each


def _book_each(buyer, listing_ids, voucher_id):
    outcomes = []
    for listing_id in listing_ids:
        # 8 GPUs × 3 h × 100.00 = 2 400.00; 20 % coverage → 480.00 of voucher per booking
        kwargs = booking_kwargs(nodes=1, hours=3, vouchers=[voucher_id], confirm=True) | {"listing_id": listing_id}
        try:
            outcomes.append(order_services.booking_create(buyer=buyer, **kwargs).voucher_amount)
        except ApplicationError as exc:
            outcomes.append(exc)
    return outcomes


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("face_value", "annual_cap", "expected_total"),
    [
        ("10000.00", None, Decimal("10000.00")),  # the balance runs out first
        ("50000.00", Decimal("7000.01"), Decimal("7000.01")),  # the annual cap binds first
    ],
)
def test_hundred_parallel_bookings_with_one_voucher(face_value, annual_cap, expected_total):
    # given a startup with a voucher and plenty of cash, and 100 listings (capacity is not what is raced)
    buyer = StartupFactory()
    fund(buyer, "1000000.00")
    program = funded_program("1000000.00", annual_cap_per_org=annual_cap)
    voucher = issued_voucher(holder=buyer, program=program, face_value=face_value)
    listing_ids = [
        ListingFactory(cluster=ClusterFactory(node_count=1), price_per_gpu_hour=Decimal("100")).pk
        for _ in range(BOOKINGS)
    ]
    # when 100 bookings pay with the voucher at once
    chunks = [(buyer, listing_ids[i::THREADS], voucher.pk) for i in range(THREADS)]
    results = [outcome for chunk in run_concurrently(_book_each, chunks) for outcome in chunk]
    # then every booking succeeded (the cash part covers what the voucher no longer can)
    assert all(isinstance(r, Decimal) for r in results), [r for r in results if not isinstance(r, Decimal)][:3]
    assert Booking.objects.filter(buyer=buyer).count() == BOOKINGS
    # and the voucher paid exactly up to its binding limit, never more
    balances = dict(
        LedgerAccount.objects.filter(owner_id=voucher.pk, kind__in=["voucher", "voucher_hold"]).values_list(
            "kind", "balance"
        )
    )
    assert balances["voucher_hold"] == expected_total == sum(results)
    assert balances["voucher"] == Decimal(face_value) - expected_total >= 0
    assert Redemption.objects.filter(voucher=voucher).aggregate(t=Sum("amount"))["t"] == expected_total
    # and cash + voucher parts add up to every subtotal, the wallet hold equals the cash parts
    totals = Booking.objects.filter(buyer=buyer).aggregate(
        s=Sum("subtotal"), v=Sum("voucher_amount"), c=Sum("cash_amount")
    )
    assert totals["s"] == totals["v"] + totals["c"] and totals["v"] == expected_total
    assert wallet_summary(buyer.pk)["held"] == totals["c"]
    assert ledger_breaches() == []
