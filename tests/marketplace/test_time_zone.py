"""China time for people, UTC for machines: pages show and read times in Beijing time (or the user's own zone),
storage and the API stay in UTC, and bookings still take whole hours."""

import datetime as dt
import re
import zoneinfo

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.preferences import UserPreference
from orders.models import Booking
from tests.factories import ListingFactory, StartupFactory, member_of, next_hour
from tests.marketplace.test_i18n import ZH, compile_catalog
from tests.orders.factories import fund

pytestmark = pytest.mark.django_db
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    compile_catalog()


@pytest.fixture
def buyer():
    startup = StartupFactory()
    fund(startup, "100000.00")
    return startup


@pytest.fixture
def user(buyer):
    return member_of(buyer)


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def listing():
    return ListingFactory()


def tomorrow_at(hour: int, zone) -> dt.datetime:
    """``hour``:00 tomorrow in ``zone`` (at least a day ahead, inside a fresh listing's 30-day window)."""
    day = (next_hour(24).astimezone(zone) + dt.timedelta(days=1)).date()
    return dt.datetime.combine(day, dt.time(hour), tzinfo=zone)


def typed(start: dt.datetime, hours: int) -> dict:
    """The booking form as a person fills it: ``start`` and ``start + hours`` as datetime-local values."""
    end = start + dt.timedelta(hours=hours)
    return {"nodes": 1, "start": f"{start:%Y-%m-%dT%H:%M}", "end": f"{end:%Y-%m-%dT%H:%M}"}


def test_a_shanghai_user_entering_14_00_books_06_00_utc(browser, listing):
    # given 14:00 and 16:00 typed into the booking form (datetime-local: no zone)
    start = tomorrow_at(14, SHANGHAI)
    form = typed(start, 2)
    # when booked
    response = browser.post(reverse("booking-new", args=[listing.pk]), form)
    # then the booking is for 06:00–08:00 UTC of that day, a whole hour
    assert response.status_code == 302, response.content.decode()[-2000:]
    booking = Booking.objects.get()
    assert booking.start == start.astimezone(dt.UTC) and booking.start.astimezone(dt.UTC).hour == 6
    assert booking.end - booking.start == dt.timedelta(hours=2)
    # and its page shows 14:00 again, labelled Beijing time
    html = browser.get(reverse("booking-detail", args=[booking.pk])).content.decode()
    assert f"{start:%Y-%m-%d} 14:00 – {start:%Y-%m-%d} 16:00" in html
    assert "Beijing time (UTC+8)" in html and "(UTC)" not in html


def test_whole_hours_still_hold_in_beijing_time(browser, listing):
    start = tomorrow_at(14, SHANGHAI) + dt.timedelta(minutes=30)
    response = browser.post(reverse("booking-new", args=[listing.pk]), typed(start, 2))
    assert response.status_code == 400 and not Booking.objects.exists()


def test_the_form_offers_the_next_hour_in_beijing_time(browser, listing):
    html = browser.get(reverse("booking-new", args=[listing.pk])).content.decode()
    shown = re.search(r'name="start" value="([^"]+)"', html).group(1)
    expected = max(listing.available_from, next_hour()).astimezone(SHANGHAI)
    assert shown == f"{expected:%Y-%m-%dT%H:%M}"
    assert "Start · Beijing time (UTC+8)" in html


def test_labels_say_beijing_time_in_chinese(browser, listing):
    compile_catalog()
    html = browser.get(reverse("booking-new", args=[listing.pk]), **ZH).content.decode()
    assert "开始时间 · 北京时间 (UTC+8)" in html and "北京时间 (UTC+8)" in html


def test_the_browse_filter_reads_beijing_time(listing):
    # given a window typed in Beijing time that starts one hour before the listing opens (in UTC terms)
    opens = listing.available_from.astimezone(SHANGHAI)
    inside = {"start": f"{opens:%Y-%m-%dT%H:%M}", "end": f"{opens + dt.timedelta(hours=2):%Y-%m-%dT%H:%M}"}
    before = {"start": f"{opens - dt.timedelta(hours=1):%Y-%m-%dT%H:%M}", "end": inside["end"]}
    href = f'href="/listings/{listing.pk}/"'
    # then the window at the opening hour finds the listing, the one an hour earlier does not
    assert href in Client().get("/listings/", inside).content.decode()
    assert href not in Client().get("/listings/", before).content.decode()


def test_the_api_stays_in_utc_with_offset(user, browser, listing):
    # given a booking made on the page at 14:00 Beijing time
    start = tomorrow_at(14, SHANGHAI)
    browser.post(reverse("booking-new", args=[listing.pk]), typed(start, 1))
    booking = Booking.objects.get()
    # when read over the API, by a Chinese client, and also by the session of the page's user
    api = APIClient()
    api.force_authenticate(user)
    for client in (api, browser):
        body = client.get(f"/api/v1/bookings/{booking.pk}/", **ZH).json()
        # then the times are UTC, ISO 8601 with an offset
        assert body["start"] in (
            f"{start.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%S}Z",
            f"{start.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%S}+00:00",
        ), body["start"]


def test_the_api_refuses_naive_times_whatever_the_page_zone(user, listing):
    api = APIClient()
    api.force_authenticate(user)
    start = next_hour(3)
    response = api.post(
        "/api/v1/bookings/",
        {
            "listing": listing.pk,
            "nodes": 1,
            "start": f"{start:%Y-%m-%dT%H:%M:%S}",
            "end": f"{start + dt.timedelta(hours=1):%Y-%m-%dT%H:%M:%S}",
        },
        format="json",
    )
    assert response.status_code == 400 and not Booking.objects.exists()


def test_a_user_with_another_zone_sees_and_enters_times_in_it(user, browser, listing):
    # given a user who chose Berlin on the preferences page
    response = browser.post("/account/preferences/", {"time_zone": "Europe/Berlin", "language": ""})
    assert response.status_code == 302
    assert UserPreference.objects.get(user=user).time_zone == "Europe/Berlin"
    # when they book 14:00–15:00 in their zone
    start = tomorrow_at(14, BERLIN)
    browser.post(reverse("booking-new", args=[listing.pk]), typed(start, 1))
    # then it is 14:00 Berlin time, shown so, labelled with their zone
    booking = Booking.objects.get()
    assert booking.start == start
    html = browser.get(reverse("booking-detail", args=[booking.pk])).content.decode()
    assert f"{start:%Y-%m-%d} 14:00" in html and "Europe/Berlin (UTC+" in html
    # and another user still sees it in Beijing time
    assert UserPreference.objects.count() == 1


def test_preferences_refuse_an_unknown_zone_and_save_nothing(user, browser):
    response = browser.post("/account/preferences/", {"time_zone": "Mars/Olympus", "language": ""})
    assert response.status_code == 400 and not UserPreference.objects.exists()


def test_a_saved_language_applies_without_the_cookie(user):
    UserPreference.objects.create(user=user, time_zone="Asia/Shanghai", language="zh-hans")
    client = Client()
    client.force_login(user)
    assert '<html lang="zh-hans"' in client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_anonymous_pages_show_beijing_time():
    html = Client().get("/listings/").content.decode()
    assert "Times in Beijing time (UTC+8)" in html
