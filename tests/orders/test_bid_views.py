"""The bids page (place with field errors in place, list, cancel) and the market page (depth chart, fills)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from orders.models import Bid
from tests.factories import AcceleratorFactory, ClusterFactory, ListingFactory, member_of, next_hour
from tests.helpers import page_input
from tests.orders.factories import funded_startup

pytestmark = pytest.mark.django_db


def _local(hours: int) -> str:
    return page_input(next_hour(hours))


@pytest.fixture
def buyer():
    return funded_startup("10000.00")


@pytest.fixture
def browser(buyer):
    """A logged-in member of ``buyer`` (session auth, like the pages)."""
    return _logged_in(member_of(buyer))


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def chip():
    accelerator = AcceleratorFactory(slug="page-chip")
    ListingFactory(cluster=ClusterFactory(accelerator=accelerator), price_per_gpu_hour=Decimal("40"))
    return accelerator


def form(chip, **extra):
    return {
        "accelerators": [chip.slug],
        "nodes": 1,
        "duration_hours": 2,
        "start": _local(2),
        "end": _local(6),
        "max_price_per_gpu_hour": "12",
        **extra,
    }


def test_place_a_bid_from_the_page_then_cancel_it(browser, buyer, chip):
    # given
    empty = browser.get("/bids/")
    assert b"You have no bids yet" in empty.content
    # when
    placed = browser.post("/bids/", form(chip), follow=True)
    # then
    bid = Bid.objects.get(buyer=buyer)
    assert b"Bid %d placed" % bid.pk in placed.content
    assert bid.held_amount == Decimal("192.00")  # 12 × 8 GPUs × 1 node × 2 hours
    browser.post(f"/bids/{bid.pk}/cancel/")
    assert Bid.objects.get(pk=bid.pk).status == Bid.Status.CANCELLED


def test_bad_bid_shows_field_errors_in_place(browser, chip):
    # when: the window is shorter than the duration
    response = browser.post("/bids/", form(chip, duration_hours=9))
    # then
    assert response.status_code == 400
    assert b"at least 9 hours" in response.content
    assert not Bid.objects.exists()


def test_market_page_shows_the_depth_chart_and_the_book(browser, chip):
    # given
    browser.post("/bids/", form(chip))
    # when
    response = browser.get("/market/", {"accelerator": chip.slug})
    # then
    assert response.status_code == 200
    assert b'id="depth"' in response.content and b"chart-4.6.1.umd.min.js" in response.content
    assert b"12.0000" in response.content and b"40.0000" in response.content
