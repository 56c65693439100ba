from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from ledger.selectors import wallet_summary
from listings.models import Listing
from orders import services
from orders.models import Booking
from tests.factories import ListingFactory, ProviderFactory, StartupFactory, member_of, next_hour
from tests.helpers import page_input
from tests.orders.factories import booking_kwargs, fund

pytestmark = pytest.mark.django_db


def _local(hours: int) -> str:
    return page_input(next_hour(hours))


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
    return ListingFactory()


def test_book_page_shows_the_form(browser, listing):
    response = browser.get(reverse("booking-new", args=[listing.pk]))
    assert response.status_code == 200
    assert b'name="nodes"' in response.content
    assert reverse("booking-quote", args=[listing.pk]).encode() in response.content


def test_book_page_of_a_draft_listing_is_404(browser):
    draft = ListingFactory(status=Listing.Status.DRAFT)
    assert browser.get(reverse("booking-new", args=[draft.pk])).status_code == 404


def test_quote_partial_shows_subtotal_and_cash(browser, listing):
    # when
    response = browser.post(
        reverse("booking-quote", args=[listing.pk]),
        {"nodes": 2, "start": _local(2), "end": _local(5)},
        HTTP_HX_REQUEST="true",
    )
    # then 8 × 2 × 3 × 10
    assert response.status_code == 200
    assert b"480.00" in response.content
    assert not Booking.objects.exists()


def test_quote_partial_shows_field_errors_in_place(browser, listing):
    response = browser.post(
        reverse("booking-quote", args=[listing.pk]), {"nodes": 9, "start": _local(2), "end": _local(5)}
    )
    assert response.status_code == 200
    assert b"This cluster has only 4 nodes." in response.content


def test_booking_from_the_page_confirms_and_redirects(browser, buyer, listing):
    # when
    response = browser.post(
        reverse("booking-new", args=[listing.pk]), {"nodes": 1, "start": _local(2), "end": _local(4)}
    )
    # then
    booking = Booking.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("booking-detail", args=[booking.pk])
    assert booking.status == "confirmed"
    assert wallet_summary(buyer.pk)["held"] == Decimal("160.00")


def test_booking_page_with_short_funds_shows_the_reason_and_writes_nothing(listing):
    # given a startup with 10.00
    poor = StartupFactory()
    fund(poor, "10.00")
    client = Client()
    client.force_login(member_of(poor))
    # when
    response = client.post(
        reverse("booking-new", args=[listing.pk]), {"nodes": 1, "start": _local(2), "end": _local(4)}
    )
    # then
    assert response.status_code == 409
    assert b"Insufficient funds" in response.content
    assert not Booking.objects.exists()


def test_booking_page_field_errors_are_400(browser, listing):
    response = browser.post(
        reverse("booking-new", args=[listing.pk]), {"nodes": 1, "start": _local(-3), "end": _local(4)}
    )
    assert response.status_code == 400
    assert b"The start must be in the future." in response.content
    assert not Booking.objects.exists()


def test_my_bookings_lists_mine_only_and_cancels(browser, buyer, listing):
    # given one booking of mine and one of another startup
    mine = services.booking_create(buyer=buyer, **booking_kwargs(listing))
    other = StartupFactory()
    fund(other)
    theirs = services.booking_create(buyer=other, **booking_kwargs(listing))
    # when
    page = browser.get(reverse("booking-list"))
    cancel = browser.post(reverse("booking-cancel", args=[mine.pk]), {"next": reverse("booking-list")})
    # then
    assert reverse("booking-detail", args=[mine.pk]).encode() in page.content
    assert reverse("booking-detail", args=[theirs.pk]).encode() not in page.content
    assert cancel.status_code == 302 and cancel.url == reverse("booking-list")
    mine.refresh_from_db()
    assert mine.status == "cancelled"
    assert browser.post(reverse("booking-cancel", args=[theirs.pk])).status_code == 404


def test_my_bookings_empty_state_says_what_to_do(browser):
    response = browser.get(reverse("booking-list"))
    assert b"You have no bookings yet" in response.content


def test_booking_detail_shows_history_and_hides_others(browser, buyer, listing):
    booking = services.booking_create(buyer=buyer, **booking_kwargs(listing, nodes=2))
    services.booking_confirm(booking=booking)
    other = StartupFactory()
    fund(other)
    theirs = services.booking_create(buyer=other, **booking_kwargs(listing))
    response = browser.get(reverse("booking-detail", args=[booking.pk]))
    assert response.status_code == 200
    assert "Held → Confirmed" in response.content.decode()  # the statuses by their names
    assert b"1, 2" in response.content
    assert browser.get(reverse("booking-detail", args=[theirs.pk])).status_code == 404


def test_pages_need_login(listing):
    response = Client().get(reverse("booking-list"))
    assert response.status_code == 302
    assert "/login/" in response.url


def test_booking_page_for_a_non_startup_member_is_403(listing):
    client = Client()
    client.force_login(member_of(ProviderFactory()))
    response = client.post(
        reverse("booking-new", args=[listing.pk]), {"nodes": 1, "start": _local(2), "end": _local(4)}
    )
    assert response.status_code == 403
    assert b"Only members of a startup organization" in response.content
    assert not Booking.objects.exists()


def test_quote_partial_shows_each_voucher_part_and_its_binding_rule(browser, buyer, listing):
    from tests.vouchers.factories import issued_voucher

    # given a voucher of the buyer (20 % tier for this non-domestic chip)
    voucher = issued_voucher(holder=buyer, face_value="100000.00")
    # when the htmx quote is asked with the voucher ticked
    response = browser.post(
        reverse("booking-quote", args=[listing.pk]),
        {"nodes": 1, "start": _local(2), "end": _local(5), "vouchers": [voucher.pk]},
    )
    # then 20 % of 8 × 3 × 10.00 = 240.00 is the voucher part, bound by the coverage ratio
    html = response.content.decode()
    assert response.status_code == 200
    assert f"Voucher {voucher.pk}" in html and 'data-rule="coverage_ratio">¥48.00' in html
    assert "¥192.00" in html  # the cash part
