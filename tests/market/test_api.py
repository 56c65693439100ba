"""``GET /api/v1/market/index/``: filters, pagination, field errors for bad parameters; every signed-in role reads
it, anonymous callers do not."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from market.models import Fixing
from tests import factories

pytestmark = pytest.mark.django_db
URL = "/api/v1/market/index/"


@pytest.fixture
def fixings():
    """Ten days of fixings for one chip in Shanghai and Beijing, and one day for another chip."""
    chip, other = factories.AcceleratorFactory(slug="ascend-test"), factories.AcceleratorFactory()
    first = dt.date(2026, 3, 1)
    for n in range(10):
        for city in ("Shanghai", "Beijing"):
            Fixing.objects.create(
                day=first + dt.timedelta(days=n),
                accelerator=chip,
                city=city,
                vwap=Decimal("8.5000") + n,
                trades=2,
                traded_gpu_hours=64,
                ask_mean=Decimal("9.0000"),
                asks=3,
                listed_nodes=8,
                listed_gpus=64,
                listed_node_hours=Decimal("192.00"),
                reserved_node_hours=Decimal("48.00"),
                utilisation=Decimal("0.2500"),
            )
    Fixing.objects.create(day=first, accelerator=other, city="Shanghai", ask_mean=Decimal("3.0000"), asks=1)
    return chip, first


def test_filters_by_accelerator_city_and_days_oldest_first(startup_client, fixings):
    # given
    chip, _ = fixings
    # when
    response = startup_client.get(
        URL, {"accelerator": chip.slug, "city": "Shanghai", "from": "2026-03-03", "to": "2026-03-05"}
    )
    # then
    body = response.json()
    assert response.status_code == 200 and body["count"] == 3
    assert [row["day"] for row in body["results"]] == ["2026-03-03", "2026-03-04", "2026-03-05"]
    row = body["results"][0]
    assert row["accelerator"] == "ascend-test" and row["city"] == "Shanghai"
    assert row["vwap"] == "10.5000" and row["ask_mean"] == "9.0000" and row["utilisation"] == "0.2500"
    assert row["listed_gpus"] == 64 and row["traded_gpu_hours"] == 64


def test_is_paginated(startup_client, fixings):
    response = startup_client.get(URL, {"page_size": 5})
    body = response.json()
    assert body["count"] == 21 and len(body["results"]) == 5 and body["next"] and body["previous"] is None


def test_null_prices_stay_null(startup_client, fixings):
    body = startup_client.get(URL, {"from": "2026-03-01", "to": "2026-03-01", "city": "Shanghai"}).json()
    other = next(row for row in body["results"] if row["accelerator"] != "ascend-test")
    assert other["vwap"] is None and other["utilisation"] is None and other["ask_mean"] == "3.0000"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"accelerator": "no-such-chip"}, "accelerator"),
        ({"city": "Atlantis"}, "city"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-03-05", "to": "2026-03-04"}, "to"),
    ],
)
def test_bad_parameters_answer_400_with_field_errors(startup_client, fixings, params, field):
    response = startup_client.get(URL, params)
    body = response.json()
    assert response.status_code == 400 and list(body["errors"]) == [field] and body["detail"]


def test_anonymous_callers_are_refused(fixings):
    assert APIClient().get(URL).status_code in (401, 403)


@pytest.mark.parametrize("role_client", ["provider_client", "issuer_client", "auditor_client", "staff_client"])
def test_every_signed_in_role_reads_the_index(request, fixings, role_client):
    assert request.getfixturevalue(role_client).get(URL).json()["count"] == 21
