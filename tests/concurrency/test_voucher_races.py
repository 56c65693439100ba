"""Races on real PostgreSQL: 100 bookings holding parts of one voucher at once. Threads, committed data."""

from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Sum

from ledger.models import LedgerAccount
from ledger.selectors import ledger_breaches
from tests.factories import ListingFactory, StartupFactory
from tests.helpers import run_concurrently
from tests.vouchers.factories import funded_program, held_booking, issued_voucher
from vouchers import services
from vouchers.models import Redemption

HOLDS = 100
# PostgreSQL allows 100 connections and other suites share it: 25 threads, each racing 4 holds in a row, each hold
# in its own transaction.
THREADS = 25


def _hold_each(bookings, voucher_id):
    amounts = []
    for booking in bookings:
        with transaction.atomic():
            redemptions = services.vouchers_hold_for_booking(booking=booking, voucher_ids=[voucher_id])
        amounts.append(sum((r.amount for r in redemptions), Decimal("0.00")))
    return amounts


def _race(*, face_value: str, annual_cap: Decimal | None):
    startup = StartupFactory()
    program = funded_program("1000000.00", annual_cap_per_org=annual_cap)
    voucher = issued_voucher(holder=startup, program=program, face_value=face_value)
    listing = ListingFactory()
    # each booking of 10 000.00 at 20 % coverage would take 2 000.00
    bookings = [held_booking(buyer=startup, listing=listing, subtotal="10000.00") for _ in range(HOLDS)]
    chunks = [(bookings[i::THREADS], voucher.pk) for i in range(THREADS)]
    results = run_concurrently(_hold_each, chunks)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    return voucher, [amount for amounts in results for amount in amounts]


def _balances(voucher):
    rows = dict(
        LedgerAccount.objects.filter(owner_id=voucher.pk, kind__in=["voucher", "voucher_hold"]).values_list(
            "kind", "balance"
        )
    )
    return rows["voucher"], rows["voucher_hold"]


@pytest.mark.django_db(transaction=True)
def test_hundred_parallel_holds_never_overdraw_one_voucher():
    # given a 10 000.00 voucher and no annual cap; when 100 bookings hold 2 000.00 each at once
    voucher, amounts = _race(face_value="10000.00", annual_cap=None)
    # then exactly five got a full part, nobody more than the balance left, and the voucher is exactly used up
    balance, held = _balances(voucher)
    assert balance == Decimal("0.00") and held == Decimal("10000.00")
    assert sum(amounts) == Decimal("10000.00") and amounts.count(Decimal("2000.00")) == 5
    assert Redemption.objects.filter(voucher=voucher, status="held").aggregate(t=Sum("amount"))["t"] == held
    assert ledger_breaches() == []


@pytest.mark.django_db(transaction=True)
def test_hundred_parallel_holds_never_exceed_the_annual_cap():
    # given a 10 000.00 voucher in a program capping each organization at 7 000.01 a year
    voucher, amounts = _race(face_value="10000.00", annual_cap=Decimal("7000.01"))
    # then the holds stop exactly at the cap, the voucher keeps the rest
    balance, held = _balances(voucher)
    assert held == Decimal("7000.01") and balance == Decimal("2999.99")
    assert sorted(a for a in amounts if a) == [Decimal("1000.01")] + [Decimal("2000.00")] * 3
    assert Redemption.objects.filter(voucher=voucher).count() == 4
    assert ledger_breaches() == []
