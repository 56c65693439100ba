"""Resale pages (issue 21): the booking page's resale section and form, withdraw, the buy page, the resale asks
page and the resale asks in listing search."""

from decimal import Decimal

import pytest
from django.test import Client

from orders import resale_services
from orders.models import ResaleAsk, ResaleSale
from tests.factories import ProviderFactory, StartupFactory, member_of
from tests.helpers import page_input
from tests.orders.factories import fund
from tests.orders.resale_factories import hours_after, voucher_booking

pytestmark = pytest.mark.django_db


def _browser(organization) -> Client:
    client = Client()
    client.force_login(member_of(organization))
    return client


@pytest.fixture
def booking():
    return voucher_booking()[0]


def _ask(booking, *, nodes=2):
    return resale_services.resale_ask_create(
        booking_id=booking.pk,
        seller=booking.buyer,
        nodes=nodes,
        start=hours_after(booking.start, 5),
        end=booking.end,
        price_per_gpu_hour=Decimal("12.0000"),
    )


def test_the_booking_page_offers_the_resell_form_to_its_buyer_only(booking):
    # the buyer sees the form
    page = _browser(booking.buyer).get(f"/bookings/{booking.pk}/")
    assert page.status_code == 200
    assert b'id="resell-form"' in page.content
    # the provider sees the booking, not the form
    provider = booking.listing.cluster.data_center.provider
    seen = _browser(provider).get(f"/bookings/{booking.pk}/")
    assert seen.status_code == 200 and b'id="resell-form"' not in seen.content


def test_resell_from_the_booking_page_then_withdraw(booking):
    browser = _browser(booking.buyer)
    # when the buyer offers 1 node of the last 5 hours
    response = browser.post(
        f"/bookings/{booking.pk}/resell/",
        {
            "nodes": 1,
            "start": page_input(hours_after(booking.start, 5)),
            "end": page_input(booking.end),
            "price_per_gpu_hour": "11.5",
        },
    )
    # then an open ask, shown on the booking page
    assert response.status_code == 302
    ask = ResaleAsk.objects.get(booking=booking)
    assert (ask.nodes, ask.price_per_gpu_hour, ask.start) == (1, Decimal("11.5"), hours_after(booking.start, 5))
    assert b'id="resale-asks"' in browser.get(f"/bookings/{booking.pk}/").content
    # a bad price is refused with a message and writes nothing
    browser.post(
        f"/bookings/{booking.pk}/resell/",
        {"nodes": 1, "start": page_input(booking.start), "end": page_input(booking.end), "price_per_gpu_hour": "-1"},
    )
    assert ResaleAsk.objects.count() == 1
    # another startup cannot withdraw it; its seller can
    assert _browser(StartupFactory()).post(f"/resale/{ask.pk}/withdraw/").status_code == 404
    assert browser.post(f"/resale/{ask.pk}/withdraw/").status_code == 302
    ask.refresh_from_db()
    assert ask.status == "withdrawn"


def test_the_resale_asks_page_and_the_listing_search_show_open_asks(booking):
    ask = _ask(booking)
    browser = _browser(StartupFactory())
    page = browser.get("/resale/")
    assert page.status_code == 200
    assert f"/resale/{ask.pk}/buy/".encode() in page.content
    found = browser.get("/listings/", {"accelerator": booking.listing.cluster.accelerator.slug})
    assert found.status_code == 200
    assert b'id="resale-asks-found"' in found.content and f"/resale/{ask.pk}/buy/".encode() in found.content


def test_the_buy_page_sells_to_a_startup_and_refuses_other_roles(booking):
    ask = _ask(booking)
    # a provider member may not buy
    assert _browser(ProviderFactory()).get(f"/resale/{ask.pk}/buy/").status_code == 403
    buyer = StartupFactory()
    fund(buyer)
    browser = _browser(buyer)
    assert browser.get(f"/resale/{ask.pk}/buy/").status_code == 200
    # a window outside the ask: 400 with the error on the form, nothing written
    outside = browser.post(
        f"/resale/{ask.pk}/buy/",
        {"nodes": 1, "start": page_input(booking.start), "end": page_input(booking.end)},
    )
    assert outside.status_code == 400 and ResaleSale.objects.count() == 0
    # when buying one node for the ask's window / then the new booking's page
    response = browser.post(
        f"/resale/{ask.pk}/buy/", {"nodes": 1, "start": page_input(ask.start), "end": page_input(ask.end)}
    )
    sale = ResaleSale.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/bookings/{sale.booking_id}/"
    assert b'id="resale-bought-in"' in browser.get(response["Location"]).content
