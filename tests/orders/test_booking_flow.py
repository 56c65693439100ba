"""The booking pages as a buyer goes through them: the quote shows the nodes free in the window and refuses more,
"Book and confirm" opens a confirmation step that shows the voucher and cash parts before money moves, short funds
say how much is missing (in the platform currency) and where to top up, applicable vouchers come pre-ticked, and a
booking links to its money page."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from ledger.selectors import wallet_summary
from orders import services
from orders.models import Booking
from tests.factories import ListingFactory, StartupFactory, member_of, next_hour
from tests.helpers import page_input
from tests.orders.factories import booking_kwargs, fund

pytestmark = pytest.mark.django_db


def _local(hours: int) -> str:
    return page_input(next_hour(hours))


def _form(nodes=1, start=2, end=4, **extra) -> dict:
    return {"nodes": nodes, "start": _local(start), "end": _local(end), **extra}


@pytest.fixture
def buyer():
    startup = StartupFactory()
    fund(startup, "1000.00")
    return startup


@pytest.fixture
def browser(buyer):
    client = Client()
    client.force_login(member_of(buyer))
    return client


@pytest.fixture
def listing():
    return ListingFactory()  # 4 nodes × 8 GPUs at ¥10.00/GPU-h


@pytest.fixture
def two_nodes_taken(listing):
    other = StartupFactory()
    fund(other)
    return services.booking_create(buyer=other, **booking_kwargs(listing, nodes=2, start_in_hours=2, hours=2))


# --- the quote: free nodes ----------------------------------------------------------------------------------------


def test_the_quote_shows_the_free_nodes_of_the_window(browser, listing, two_nodes_taken):
    html = browser.post(reverse("booking-quote", args=[listing.pk]), _form(nodes=1)).content.decode()
    assert re.search(r'id="quote-free-nodes">\s*2 of 4', html), html
    # and a window that misses the other booking has all four free
    html = browser.post(reverse("booking-quote", args=[listing.pk]), _form(start=6, end=8)).content.decode()
    assert re.search(r'id="quote-free-nodes">\s*4 of 4', html)


def test_the_quote_refuses_more_nodes_than_are_free_and_says_how_many_are(browser, listing, two_nodes_taken):
    response = browser.post(reverse("booking-quote", args=[listing.pk]), _form(nodes=3))
    html = response.content.decode()
    assert "Only 2 of the 4 nodes are free in this window" in html
    assert 'id="quote-table"' not in html  # no price for a booking that cannot be made


def test_booking_more_than_free_is_refused_with_the_free_count_and_writes_nothing(browser, listing, two_nodes_taken):
    for step in ({"review": "1"}, {}):  # the confirmation step and the final post
        response = browser.post(reverse("booking-new", args=[listing.pk]), _form(nodes=3, **step))
        assert response.status_code == 409
        assert "Only 2 of the 4 nodes are free in this window" in response.content.decode()
    assert Booking.objects.count() == 1


# --- the confirmation step ----------------------------------------------------------------------------------------


def test_book_and_confirm_shows_the_split_first_and_moves_no_money(browser, buyer, listing):
    # when the form's "Book and confirm" is pressed
    response = browser.post(reverse("booking-new", args=[listing.pk]), _form(review="1"))
    # then the confirmation step shows the price and the cash part, and nothing is booked or held
    html = response.content.decode()
    assert response.status_code == 200
    assert "Check and confirm your booking" in html
    assert 'id="confirm-cash-amount"><strong>¥160.00' in html  # 1 node × 8 GPUs × 2 h × ¥10.00
    assert "Confirm and pay ¥160.00" in html
    assert not Booking.objects.exists() and wallet_summary(buyer.pk)["held"] == 0
    # and it carries the form's values to the final button
    assert f'name="start" value="{_local(2)}"' in html and 'name="review"' not in html


def test_confirm_and_pay_books(browser, buyer, listing):
    review = browser.post(reverse("booking-new", args=[listing.pk]), _form(review="1")).content.decode()
    data = dict(re.findall(r'<input type="hidden" name="(nodes|start|end)" value="([^"]*)"', review))
    response = browser.post(reverse("booking-new", args=[listing.pk]), data)
    booking = Booking.objects.get()
    assert response.status_code == 302 and response.url == reverse("booking-detail", args=[booking.pk])
    assert booking.status == "confirmed" and wallet_summary(buyer.pk)["held"] == Decimal("160.00")


def test_change_the_booking_goes_back_to_the_form_with_its_values(browser, listing):
    response = browser.post(reverse("booking-new", args=[listing.pk]), _form(nodes=2, edit="1"))
    html = response.content.decode()
    assert response.status_code == 200 and 'name="nodes" value="2"' in html and "Book and confirm" in html
    assert not Booking.objects.exists()


def test_the_confirmation_step_shows_each_voucher_part(browser, buyer, listing):
    from tests.vouchers.factories import issued_voucher

    voucher = issued_voucher(holder=buyer, face_value="100000.00")
    html = browser.post(
        reverse("booking-new", args=[listing.pk]), _form(review="1", vouchers=[voucher.pk])
    ).content.decode()
    # 20 % of ¥160.00 from the voucher, the rest in cash
    assert 'id="confirm-voucher-amount">¥32.00' in html and "Confirm and pay ¥128.00" in html
    assert f'name="vouchers" value="{voucher.pk}"' in html
    # the part is named by its program, as the buyer knows the voucher, and by its number
    assert f"<tr><th>{voucher.program.name} · Voucher {voucher.pk} <small" in html


# --- short funds ----------------------------------------------------------------------------------------------------


@pytest.fixture
def poor_browser():
    poor = StartupFactory()
    fund(poor, "10.00")
    client = Client()
    client.force_login(member_of(poor))
    return client


def test_short_funds_say_how_much_in_the_currency_and_link_to_top_up(poor_browser, listing):
    for step, status in (({"review": "1"}, 200), ({}, 409)):
        response = poor_browser.post(reverse("booking-new", args=[listing.pk]), _form(**step))
        html = response.content.decode()
        assert response.status_code == status
        assert "Insufficient funds" in html and "(CNY)" in html
        assert "your wallet has ¥10.00 available and this booking needs ¥160.00 in cash: ¥150.00 more" in html
        assert f'href="{reverse("wallet")}#top-up"' in html
        assert "Confirm and pay" not in html  # nothing to confirm
    assert not Booking.objects.exists()


def test_the_quote_warns_of_short_funds_before_booking(poor_browser, listing):
    html = poor_browser.post(reverse("booking-quote", args=[listing.pk]), _form()).content.decode()
    assert "Insufficient funds" in html and "#top-up" in html and "¥10.00 available" in html


def test_the_wallet_page_says_how_to_top_up(poor_browser):
    html = poor_browser.get(reverse("wallet")).content.decode()
    assert 'id="top-up"' in html and "unified social credit code" in html


# --- vouchers pre-ticked, the money page, cancelling ------------------------------------------------------------


def test_vouchers_that_apply_are_ticked_on_the_form(browser, buyer, listing):
    from tests.vouchers.factories import issued_voucher

    voucher = issued_voucher(holder=buyer, face_value="1000.00")
    html = browser.get(reverse("booking-new", args=[listing.pk])).content.decode()
    ticked = re.search(rf'<input type="checkbox" name="vouchers" value="{voucher.pk}"[^>]*>', html).group(0)
    assert "checked" in ticked


def test_a_booking_links_to_its_money_page_and_back(browser, buyer, listing):
    booking = services.booking_create(buyer=buyer, confirm=True, **booking_kwargs(listing))
    detail = browser.get(reverse("booking-detail", args=[booking.pk])).content.decode()
    assert f'href="{reverse("booking-progress", args=[booking.pk])}"' in detail
    money = browser.get(reverse("booking-progress", args=[booking.pk])).content.decode()
    assert f'href="{reverse("booking-detail", args=[booking.pk])}"' in money


def test_cancel_asks_first_and_says_what_comes_back(browser, buyer, listing):
    booking = services.booking_create(buyer=buyer, confirm=True, **booking_kwargs(listing))
    for url in (reverse("booking-detail", args=[booking.pk]), reverse("booking-list")):
        html = browser.get(url).content.decode()
        form = re.search(rf'<form[^>]*action="{reverse("booking-cancel", args=[booking.pk])}"[^>]*>', html).group(0)
        assert f'data-confirm="Cancel booking {booking.pk}?' in form
        assert "goes back to your wallet" in form
