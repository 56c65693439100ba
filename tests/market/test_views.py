"""The price index page (charts, filters, table, CSV link), its CSV download, the daily task and the backfill
command."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.core.management import call_command
from django.test import Client

from market import services, tasks
from market.models import Fixing
from tests import factories
from tests.market import factories as mf

pytestmark = pytest.mark.django_db


def logged_in(org, role="owner") -> Client:
    client = Client()
    client.force_login(factories.member_of(org, role=role))
    return client


@pytest.fixture
def indexed():
    """Yesterday's market (UTC) of one chip in two cities, computed."""
    day = services.last_closed_day()
    chip = factories.AcceleratorFactory(slug="h20-test", name="H20 test")
    for city, price in (("Shanghai", "6.00"), ("Beijing", "7.00")):
        listing = mf.listing(
            cluster=mf.cluster(accelerator=chip, city=city), price=price, start=mf.at(day, -24), end=mf.at(day, 48)
        )
        mf.booking(listing=listing, made=mf.at(day, 5), start=mf.at(day, 8), hours=4, nodes=2)
    services.fixings_compute(day=day)
    return chip, day


def test_the_page_draws_three_charts_and_a_table(startup, indexed):
    # given
    chip, day = indexed
    # when
    page = logged_in(startup).get("/market/index/", {"accelerator": chip.slug})
    # then
    html = page.content.decode()
    assert page.status_code == 200
    for name in ("price", "utilisation", "depth"):
        assert f'data-chart="config" data-source="index-{name}-data"' in html
    price = json.loads(html.split('id="index-price-data" type="application/json">')[1].split("</script>")[0])
    assert price["data"]["labels"] == [day.isoformat()]
    assert {d["data"][0] for d in price["data"]["datasets"]} == {6.0, 7.0}
    assert 'id="fixing-table"' in html and day.isoformat() in html and "chart-4.6.1.umd.min.js" in html
    since = (day - dt.timedelta(days=29)).isoformat()
    assert f"/market/index.csv?accelerator={chip.slug}&amp;from={since}" in html  # the rows the page shows


def test_one_city_shows_the_traded_price_too(startup, indexed):
    chip, _ = indexed
    html = logged_in(startup).get("/market/index/", {"accelerator": chip.slug, "city": "Beijing"}).content.decode()
    price = json.loads(html.split('id="index-price-data" type="application/json">')[1].split("</script>")[0])
    assert len(price["data"]["datasets"]) == 2  # the ask mean and the VWAP of Beijing


def test_bad_filters_show_errors_and_the_default_view(startup, indexed):
    page = logged_in(startup).get("/market/index/", {"from": "someday", "city": "Atlantis"})
    html = page.content.decode()
    assert page.status_code == 200 and html.count('role="alert"') == 2 and 'id="fixing-table"' in html


def test_the_page_without_fixings_says_so(startup):
    page = logged_in(startup).get("/market/index/")
    assert page.status_code == 200 and "No fixings yet" in page.content.decode()


def test_anonymous_visitors_are_sent_to_login():
    page = Client().get("/market/index/")
    assert page.status_code == 302 and page["Location"].startswith("/login/")


@pytest.mark.parametrize("role", ["provider", "issuer", "platform_org"])
def test_every_kind_of_member_reads_the_page(request, indexed, role):
    assert logged_in(request.getfixturevalue(role)).get("/market/index/").status_code == 200


def test_csv_download(startup, indexed):
    # given
    chip, day = indexed
    # when
    response = logged_in(startup).get("/market/index.csv", {"accelerator": chip.slug})
    # then one row per city, the columns of the API
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:4] == ["day", "accelerator", "city", "vwap"]
    assert sorted(row[2] for row in rows[1:]) == ["Beijing", "Shanghai"]
    assert all(row[0] == day.isoformat() and row[1] == chip.slug for row in rows[1:])


def test_csv_with_bad_filters_answers_400(startup, indexed):
    response = logged_in(startup).get("/market/index.csv", {"to": "not-a-day"})
    assert response.status_code == 400 and list(response.json()["errors"]) == ["to"]


def test_the_daily_task_is_idempotent(indexed):
    # given
    _, day = indexed
    before = list(Fixing.objects.order_by("pk").values())
    # when the task runs for that day again
    assert tasks.compute_fixings.apply(kwargs={"day": day.isoformat()}).get() == 2
    # then the same rows
    assert list(Fixing.objects.order_by("pk").values()) == before
    # and without a day it (re)computes the last two closed days: the listings were offered on both
    assert tasks.compute_fixings.apply().get() == 4
    assert list(Fixing.objects.filter(day=day).order_by("pk").values()) == before
    assert Fixing.objects.filter(day=day - dt.timedelta(days=1)).count() == 2


def test_backfill_command_prints_progress(indexed):
    # given
    _, day = indexed
    out = io.StringIO()
    # when
    call_command("backfill_fixings", days=3, stdout=out)
    # then
    lines = out.getvalue().splitlines()
    assert lines[0] == f"[1/3] {(day - dt.timedelta(days=2)).isoformat()}: 0 fixings"
    assert lines[2] == f"[3/3] {day.isoformat()}: 2 fixings"
    assert lines[1] == f"[2/3] {(day - dt.timedelta(days=1)).isoformat()}: 2 fixings"
    assert "4 fixings over 3 days" in lines[3]
    assert Fixing.objects.filter(day=day).count() == 2


def test_the_market_page_links_to_the_index(startup):
    html = logged_in(startup).get("/market/").content.decode()
    assert 'href="/market/index/" id="price-index-link"' in html
