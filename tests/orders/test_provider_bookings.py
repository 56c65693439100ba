"""``/provider/bookings/``: a provider sees every booking on its clusters (buyer, window, status, revenue), not other
providers' ones; other kinds of members are refused."""

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from orders import services
from tests.factories import (
    ClusterFactory,
    DataCenterFactory,
    ListingFactory,
    ProviderFactory,
    StartupFactory,
    member_of,
)
from tests.orders.factories import booking_kwargs, fund

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider():
    return ProviderFactory()


@pytest.fixture
def listing(provider):
    return ListingFactory(cluster=ClusterFactory(data_center=DataCenterFactory(provider=provider)))


def _client(org) -> Client:
    client = Client()
    client.force_login(member_of(org))
    return client


def test_a_provider_lists_the_bookings_on_its_clusters_with_revenue(provider, listing):
    buyer = StartupFactory(name="Loom Robotics")
    fund(buyer)
    mine = services.booking_create(buyer=buyer, confirm=True, **booking_kwargs(listing, nodes=2))
    cancelled = services.booking_create(buyer=buyer, **booking_kwargs(listing, start_in_hours=10))
    services.booking_cancel(booking=cancelled)
    elsewhere = services.booking_create(buyer=buyer, **booking_kwargs(ListingFactory()))
    html = _client(provider).get(reverse("provider-bookings")).content.decode()
    assert reverse("booking-detail", args=[mine.pk]) in html and "Loom Robotics" in html
    assert reverse("booking-detail", args=[elsewhere.pk]) not in html
    assert reverse("booking-progress", args=[mine.pk]) in html  # its money page
    # booked = the bookings not cancelled: 2 nodes × 8 GPUs × 3 h × ¥10.00
    assert mine.subtotal == Decimal("480.00")
    assert 'id="provider-booked-total">¥480.00' in html


def test_the_status_filter(provider, listing):
    buyer = StartupFactory()
    fund(buyer)
    confirmed = services.booking_create(buyer=buyer, confirm=True, **booking_kwargs(listing))
    held = services.booking_create(buyer=buyer, **booking_kwargs(listing, start_in_hours=10))
    html = _client(provider).get(reverse("provider-bookings"), {"status": "held"}).content.decode()
    assert reverse("booking-detail", args=[held.pk]) in html
    assert reverse("booking-detail", args=[confirmed.pk]) not in html


def test_a_provider_can_open_a_booking_on_its_cluster_and_go_back(provider, listing):
    buyer = StartupFactory()
    fund(buyer)
    booking = services.booking_create(buyer=buyer, confirm=True, **booking_kwargs(listing))
    html = _client(provider).get(reverse("booking-detail", args=[booking.pk])).content.decode()
    assert f'href="{reverse("provider-bookings")}"' in html
    assert "data-confirm" not in html  # a provider cannot cancel the buyer's booking


def test_others_are_refused(listing):
    response = _client(StartupFactory()).get(reverse("provider-bookings"))
    assert response.status_code == 403


def test_the_empty_page_says_what_to_do(provider):
    html = _client(provider).get(reverse("provider-bookings")).content.decode()
    assert "No booking on your clusters yet" in html
