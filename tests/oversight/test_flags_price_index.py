"""The price rule (``rule_price_above_median``) compares a voucher booking with the price index's fixing of its
accelerator and city (the trimmed ask mean) when one exists, and with the market median of bookings otherwise."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from market.models import Fixing
from oversight import flags
from oversight.models import AnomalyFlag
from tests import factories
from tests.oversight import factories as af

pytestmark = pytest.mark.django_db


def fixing(listing, *, ask_mean: str, asks: int = 5, days_ago: int = 0) -> Fixing:
    return Fixing.objects.create(
        day=timezone.now().astimezone(dt.UTC).date() - dt.timedelta(days=days_ago),
        accelerator=listing.cluster.accelerator,
        city=listing.city,
        ask_mean=Decimal(ask_mean),
        asks=asks,
    )


def voucher_booking(startup, listing, price: str):
    return af.booking(
        buyer=startup,
        listing=listing,
        start=factories.next_hour(2),
        price=price,
        voucher_part="16.00",
        vouchers=[af.voucher(holder=startup)],
    )


def price_flags() -> list[AnomalyFlag]:
    return list(AnomalyFlag.objects.filter(kind="price_above_median"))


@pytest.mark.parametrize(("price", "flagged"), [("18.0001", True), ("18.0000", False)])
def test_a_booking_is_compared_with_its_citys_fixing(startup, price, flagged):
    # given the index at 12/GPU-hour for the chip in the booking's city today
    listing = factories.ListingFactory()
    fixing(listing, ask_mean="12.0000")
    # when a voucher booking at ``price`` is checked
    booking = voucher_booking(startup, listing, price)
    flags.flags_compute()
    # then it is flagged above 1.5 × 12, with the index named in the details
    found = price_flags()
    assert [f.booking_id for f in found] == ([booking.pk] if flagged else [])
    if flagged:
        details = found[0].details
        assert details["index_price"] == "12.0000" and details["index_asks"] == 5
        assert details["index_day"] == timezone.now().astimezone(dt.UTC).date().isoformat()
        assert "market_median" not in details


def test_the_index_takes_precedence_over_the_median(startup):
    # given three cheap bookings (median 10) but the index at 12 for that chip and city
    listing = factories.ListingFactory()
    for _ in range(3):
        af.booking(buyer=factories.StartupFactory(), listing=listing, start=factories.next_hour(2))
    fixing(listing, ask_mean="12.0000", days_ago=3)
    # when a voucher booking at 16 (1.6 × the median, 1.33 × the index) is checked
    voucher_booking(startup, listing, "16.0000")
    flags.flags_compute()
    # then the index decides: not flagged
    assert price_flags() == []


@pytest.mark.parametrize(("asks", "days_ago"), [(2, 0), (5, 8)])
def test_a_thin_or_stale_fixing_falls_back_to_the_median(startup, asks, days_ago):
    # given three bookings at 10 (median 10) and a fixing at 12 that is too thin or too old to be the reference
    listing = factories.ListingFactory()
    for _ in range(3):
        af.booking(buyer=factories.StartupFactory(), listing=listing, start=factories.next_hour(2))
    fixing(listing, ask_mean="12.0000", asks=asks, days_ago=days_ago)
    # when a voucher booking at 16 is checked
    booking = voucher_booking(startup, listing, "16.0000")
    flags.flags_compute()
    # then the median (10) decides: flagged
    found = price_flags()
    assert [f.booking_id for f in found] == [booking.pk]
    assert found[0].details["market_median"] == "10.0000" and "index_price" not in found[0].details


def test_another_citys_fixing_is_not_the_reference(startup):
    # given the index at 30 for the chip in another city only, and bookings at 10 here
    listing = factories.ListingFactory()
    for _ in range(3):
        af.booking(buyer=factories.StartupFactory(), listing=listing, start=factories.next_hour(2))
    Fixing.objects.create(
        day=timezone.now().astimezone(dt.UTC).date(),
        accelerator=listing.cluster.accelerator,
        city="Kunming" if listing.city != "Kunming" else "Beijing",
        ask_mean=Decimal("30.0000"),
        asks=5,
    )
    # when a voucher booking at 16 is checked / then the median decides (flagged)
    booking = voucher_booking(startup, listing, "16.0000")
    flags.flags_compute()
    assert [f.booking_id for f in price_flags()] == [booking.pk]
