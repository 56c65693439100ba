"""The resale anomaly flag (issue 21): voucher-paid time resold above its price, raised by oversight's receiver of
``orders.signals.resale_above_price``."""

from decimal import Decimal

import pytest

from orders import resale_services
from oversight.models import AnomalyFlag
from oversight.resale_flags import flag_resale_above_price
from tests.factories import StartupFactory
from tests.orders.factories import fund
from tests.orders.resale_factories import hours_after, voucher_booking

pytestmark = pytest.mark.django_db


def _sale(*, price: str, voucher: bool = True):
    booking, _ = voucher_booking(voucher=voucher)
    ask = resale_services.resale_ask_create(
        booking_id=booking.pk,
        seller=booking.buyer,
        nodes=1,
        start=hours_after(booking.start, 5),
        end=booking.end,
        price_per_gpu_hour=Decimal(price),
    )
    buyer = StartupFactory()
    fund(buyer)
    return resale_services.resale_buy(ask_id=ask.pk, buyer=buyer, nodes=1, start=ask.start, end=ask.end)


def test_a_resale_above_the_voucher_paid_price_is_flagged_once(django_capture_on_commit_callbacks):
    # when voucher-paid time (10.00 per GPU-hour) is resold at 15.00 / then the receiver flags it
    with django_capture_on_commit_callbacks(execute=True):
        sale = _sale(price="15.0000")
    flags = list(AnomalyFlag.objects.filter(kind=AnomalyFlag.Kind.RESALE_ABOVE_PRICE))
    assert [(f.booking_id, f.details["resale_price_per_gpu_hour"]) for f in flags] == [(sale.booking_id, "15.0000")]
    # a repeated signal adds nothing
    assert flag_resale_above_price(sale_id=sale.pk) == 0
    assert AnomalyFlag.objects.filter(kind=AnomalyFlag.Kind.RESALE_ABOVE_PRICE).count() == 1


@pytest.mark.parametrize(("price", "voucher"), [("10.0000", True), ("9.0000", True), ("15.0000", False)])
def test_no_flag_at_or_below_the_price_or_without_vouchers(django_capture_on_commit_callbacks, price, voucher):
    with django_capture_on_commit_callbacks(execute=True):
        sale = _sale(price=price, voucher=voucher)
    assert flag_resale_above_price(sale_id=sale.pk) == 0
    assert not AnomalyFlag.objects.filter(kind=AnomalyFlag.Kind.RESALE_ABOVE_PRICE).exists()
