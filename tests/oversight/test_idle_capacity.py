"""Idle capacity of a city: the page (14-day table, chart, totals by accelerator and provider) and
``GET /api/v1/market/idle-capacity/?city=``, for platform staff, auditors and the city's issuers only."""

import datetime as dt
import json
from decimal import Decimal as D  # noqa: N817

import pytest
from django.test import Client

from oversight.api import capacity_start
from tests import factories
from tests.listings.factories import reserve
from tests.vouchers.factories import VoucherProgramFactory

pytestmark = pytest.mark.django_db
API = "/api/v1/market/idle-capacity/"
PAGE = "/market/idle-capacity/"


def logged_in(org, role="owner") -> Client:
    client = Client()
    client.force_login(factories.member_of(org, role=role))
    return client


@pytest.fixture
def hefei_listing():
    """A Hefei provider's 2-node cluster listed from a day before to a day after the 14 days (whatever the reader's
    time zone), one node booked 10 h on the second day."""
    first = capacity_start()
    listing = factories.ListingFactory(
        cluster=factories.ClusterFactory(
            data_center__provider=factories.ProviderFactory(city="Hefei", name="Hefei Compute"),
            node_count=2,
            accelerator__name="Ascend 910B idle",
        ),
        available_from=first - dt.timedelta(days=1),
        available_until=first + dt.timedelta(days=15),
    )
    day2 = first + dt.timedelta(days=1)
    reserve(listing, [1], day2 + dt.timedelta(hours=2), day2 + dt.timedelta(hours=12))
    return listing


def test_a_city_issuer_reads_the_api(hefei_listing, client_for):
    # given a member of a Hefei issuer
    client = client_for(factories.member_of(factories.IssuerFactory(city="Hefei")))
    # when
    response = client.get(API, {"city": "Hefei"})
    # then 14 days of 48 listed node-hours, 10 booked on day 2
    assert response.status_code == 200, response.data
    (row,) = response.data["rows"]
    assert (row["provider"], row["accelerator_name"]) == ("Hefei Compute", "Ascend 910B idle")
    assert row["listed_node_hours"] == ["48.0"] * 14
    assert row["booked_node_hours"][:3] == ["0.0", "10.0", "0.0"]
    assert row["idle_node_hours"][1] == "38.0"
    assert (row["listed_total"], row["booked_total"], row["idle_total"]) == ("672.0", "10.0", "662.0")
    assert row["utilisation_percent"] == "1.5"
    assert len(response.data["days"]) == 14 and response.data["totals"]["booked_total"] == "10.0"


@pytest.mark.parametrize("who", ["staff", "auditor"])
def test_platform_staff_and_auditors_read_every_city(hefei_listing, client_for, platform_org, who):
    client = client_for(factories.member_of(platform_org, role="auditor" if who == "auditor" else "owner"))
    assert client.get(API, {"city": "Hefei"}).status_code == 200
    shanghai = client.get(API, {"city": "Shanghai"})
    assert shanghai.status_code == 200 and shanghai.data["rows"] == []


def test_an_issuer_with_a_program_in_another_city_reads_that_city_too(hefei_listing, client_for):
    # given a Shanghai issuer running a program in Hefei
    issuer = factories.IssuerFactory(city="Shanghai")
    VoucherProgramFactory(issuer=issuer, city="Hefei")
    client = client_for(factories.member_of(issuer, role="auditor"))
    # when / then both its cities, and no other
    assert client.get(API, {"city": "Hefei"}).status_code == 200
    assert client.get(API, {"city": "Shanghai"}).status_code == 200
    assert client.get(API, {"city": "Beijing"}).status_code == 403


def test_others_are_refused(hefei_listing, client_for):
    shanghai_issuer = client_for(factories.member_of(factories.IssuerFactory(city="Shanghai")))
    assert shanghai_issuer.get(API, {"city": "Hefei"}).status_code == 403  # another city's issuer
    assert client_for(factories.member_of(factories.StartupFactory())).get(API, {"city": "Hefei"}).status_code == 403
    assert client_for(factories.member_of(factories.ProviderFactory())).get(API, {"city": "Hefei"}).status_code == 403
    assert client_for(None).get(API, {"city": "Hefei"}).status_code in (401, 403)


@pytest.mark.parametrize("query", [{}, {"city": "Atlantis"}, {"city": ""}])
def test_a_missing_or_unknown_city_is_400_with_a_field_error(client_for, platform_org, query):
    response = client_for(factories.member_of(platform_org)).get(API, query)
    assert response.status_code == 400 and "city" in response.data["errors"], response.data


def test_the_page_shows_the_table_the_chart_and_the_totals(hefei_listing):
    # given a Hefei issuer's member
    client = logged_in(factories.IssuerFactory(city="Hefei"))
    # when
    page = client.get(PAGE)
    # then its city by default: 14 days in the table (the page's days start at midnight in the reader's zone), a
    # stacked chart of booked and idle node-hours, the totals by accelerator and provider
    assert page.status_code == 200
    html = page.content.decode()
    assert "Idle capacity in Hefei" in html and "Hefei Compute" in html
    assert [day["listed"] for day in page.context["days"]] == [D("48.0")] * 14
    # node-hours as counts with thousands separators (no ".0"), labelled for the phone's card layout
    assert html.count('<td class="num" data-label="Listed node-hours">48</td>') == 14  # listed each day
    assert html.count('<td class="num" data-label="Idle node-hours">48</td>') == 13  # idle on all days but one
    assert '<td class="num" data-label="Idle node-hours">38</td>' in html  # the day of the booking
    assert '<td class="num" data-label="Idle node-hours">662</td>' in html and "1.5 %" in html  # total, share
    chart = json.loads(json.dumps(page.context["chart"]))  # what json_script embeds
    assert chart["type"] == "bar" and len(chart["data"]["labels"]) == 14
    booked, idle = chart["data"]["datasets"]
    assert sum(booked["data"]) == 10.0 and sum(idle["data"]) == 662.0
    assert [b + i for b, i in zip(booked["data"], idle["data"], strict=True)] == [48.0] * 14
    assert 'data-chart="config"' in html and "chart-4.6.1.umd.min.js" in html
    assert chart["data"]["labels"][0] == page.context["days"][0]["day"].isoformat()


def test_the_page_refuses_other_roles_and_other_cities(hefei_listing, platform_org):
    assert logged_in(factories.StartupFactory()).get(PAGE).status_code == 403
    assert logged_in(factories.IssuerFactory(city="Shanghai")).get(PAGE, {"city": "Hefei"}).status_code == 403
    staff = logged_in(platform_org)
    assert staff.get(PAGE, {"city": "Hefei"}).status_code == 200
    assert staff.get(PAGE, {"city": "Atlantis"}).status_code == 400
    empty = staff.get(PAGE, {"city": "Wuhu"})
    assert empty.status_code == 200 and "No capacity is listed or booked" in empty.content.decode()
    assert Client().get(PAGE).status_code == 302  # to the login page


def test_the_idle_share_is_never_negative():
    # given a cluster booked although its listing was paused (booked > listed)
    first = capacity_start()
    listing = factories.ListingFactory(
        cluster=factories.ClusterFactory(data_center__provider=factories.ProviderFactory(city="Wuhu"), node_count=1),
        available_from=first,
        available_until=first + dt.timedelta(days=2),
        status="paused",
    )
    reserve(listing, [1], first + dt.timedelta(hours=24), first + dt.timedelta(hours=29))
    client = Client()
    client.force_login(factories.member_of(factories.IssuerFactory(city="Wuhu")))
    # when / then
    response = client.get(API, {"city": "Wuhu"})
    (row,) = response.json()["rows"]
    assert row["listed_total"] == "0.0" and row["booked_total"] == "5.0" and row["idle_total"] == "0.0"
    assert row["utilisation_percent"] is None
    assert sum(D(hours) for hours in row["booked_node_hours"]) == D(5)
