"""Search by what I will pay: ``GET /api/v1/listings/?vouchers=…`` and the listings page with vouchers ticked;
and ``orders.pricing``'s bulk booking contexts against ``vouchers.selectors.booking_context``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from listings.models import ProvenanceDeclaration
from marketplace.core.money import ZERO
from orders import pricing
from tests.factories import (
    AcceleratorFactory,
    ClusterFactory,
    DataCenterFactory,
    ListingFactory,
    ProviderFactory,
    StartupFactory,
    next_hour,
)
from tests.helpers import iso
from tests.vouchers.factories import funded_program, issued_voucher
from vouchers.selectors import booking_context

pytestmark = pytest.mark.django_db


def city_listing(city: str, price: str, *, accelerator=None, provider=None):
    data_center = DataCenterFactory(provider=provider or ProviderFactory(city=city), city=city)
    return ListingFactory(
        cluster=ClusterFactory(
            data_center=data_center, gpus_per_node=8, **({"accelerator": accelerator} if accelerator else {})
        ),
        price_per_gpu_hour=Decimal(price),
    )


def shanghai_voucher(holder, **program):
    """Half of a booking in a Shanghai data centre, nowhere else."""
    return issued_voucher(
        holder=holder,
        program=funded_program(
            city="Shanghai",
            city_data_centers_only=True,
            domestic_ratio=Decimal("0.50"),
            other_ratio=Decimal("0.50"),
            **program,
        ),
    )


def net_prices(response) -> dict[int, str | None]:
    return {row["id"]: row["net_price_per_gpu_hour"] for row in response.json()["results"]}


@pytest.fixture
def market():
    return {
        "hangzhou": city_listing("Hangzhou", "8"),
        "shanghai": city_listing("Shanghai", "10"),
        "shanghai_dear": city_listing("Shanghai", "14"),
    }


def test_vouchers_add_the_net_price_where_they_may_pay_and_null_elsewhere(startup, startup_client, market):
    # given
    voucher = shanghai_voucher(startup)
    # when
    response = startup_client.get("/api/v1/listings/", {"vouchers": str(voucher.pk)})
    plain = startup_client.get("/api/v1/listings/")
    # then: half of the Shanghai prices; Hangzhou, where the voucher may not pay, null; without vouchers null too
    assert response.status_code == 200, response.json()
    assert net_prices(response) == {
        market["hangzhou"].pk: None,
        market["shanghai"].pk: "5.0000",
        market["shanghai_dear"].pk: "7.0000",
    }
    assert all(row["net_price_per_gpu_hour"] is None for row in plain.json()["results"])


def test_ordering_by_net_price_puts_what_i_pay_first_and_ineligible_listings_last(startup, startup_client, market):
    # given
    voucher = shanghai_voucher(startup)
    # when
    ascending = startup_client.get("/api/v1/listings/", {"vouchers": str(voucher.pk), "ordering": "net_price"})
    descending = startup_client.get("/api/v1/listings/", {"vouchers": str(voucher.pk), "ordering": "-net_price"})
    by_price = startup_client.get("/api/v1/listings/", {"vouchers": str(voucher.pk), "ordering": "price"})
    no_vouchers = startup_client.get("/api/v1/listings/", {"ordering": "net_price"})
    # then: Shanghai 5, Shanghai 7, then Hangzhou (null) — though Hangzhou is the cheapest before vouchers
    ids = {name: listing.pk for name, listing in market.items()}
    assert [r["id"] for r in ascending.json()["results"]] == [ids["shanghai"], ids["shanghai_dear"], ids["hangzhou"]]
    assert [r["id"] for r in descending.json()["results"]] == [ids["shanghai_dear"], ids["shanghai"], ids["hangzhou"]]
    assert [r["id"] for r in by_price.json()["results"]] == [ids["hangzhou"], ids["shanghai"], ids["shanghai_dear"]]
    assert [r["id"] for r in no_vouchers.json()["results"]] == [
        ids["hangzhou"],
        ids["shanghai"],
        ids["shanghai_dear"],
    ]  # as price
    assert ascending.json()["count"] == 3


def test_the_net_price_is_for_one_node_over_the_window_or_the_minimum_hours(startup, startup_client):
    # given: a per-booking cap of 40: 8 GPUs × 1 h × 10 = 80 → 40 paid (net 5); over 4 h 320 → 40 paid (net 8.75)
    listing = city_listing("Shanghai", "10")
    voucher = shanghai_voucher(startup, per_booking_cap=Decimal("40.00"))
    start = next_hour(3)
    # when
    no_window = startup_client.get("/api/v1/listings/", {"vouchers": str(voucher.pk)})
    window = startup_client.get(
        "/api/v1/listings/",
        {"vouchers": str(voucher.pk), "start": iso(start), "end": iso(start + dt.timedelta(hours=4))},
    )
    # then
    assert net_prices(no_window) == {listing.pk: "5.0000"}
    assert net_prices(window) == {listing.pk: "8.7500"}


def test_another_organizations_voucher_or_a_bad_id_answers_400_on_vouchers(startup, startup_client, api, market):
    # given
    theirs = shanghai_voucher(StartupFactory())
    mine = shanghai_voucher(startup)
    # when
    other = startup_client.get("/api/v1/listings/", {"vouchers": f"{mine.pk},{theirs.pk}"})
    garbage = startup_client.get("/api/v1/listings/", {"vouchers": "1,x"})
    anonymous = api.get("/api/v1/listings/", {"vouchers": str(mine.pk)})
    bad_ordering = startup_client.get("/api/v1/listings/", {"ordering": "net"})
    # then
    assert other.status_code == 400
    assert other.json()["errors"]["vouchers"] == [
        f"Voucher {theirs.pk}: not one of your vouchers (rule: organization)."
    ]
    assert garbage.status_code == 400 and "vouchers" in garbage.json()["errors"]
    assert anonymous.status_code == 400 and "vouchers" in anonymous.json()["errors"]
    assert bad_ordering.status_code == 400 and "ordering" in bad_ordering.json()["errors"]


def test_the_page_offers_my_vouchers_and_shows_the_net_price_when_ticked(startup, startup_client, client, market):
    # given: a logged-in member of the startup holding a Shanghai voucher
    voucher = shanghai_voucher(startup)
    client.force_login(startup_client.user)
    # when
    unticked = client.get("/listings/")
    ticked = client.get("/listings/", {"vouchers": voucher.pk, "ordering": "net_price"})
    # then: a checkbox per spendable voucher; ticked, the column with 5.00 and 7.00 and a dash for Hangzhou,
    # Shanghai first
    assert unticked.status_code == 200
    assert f'name="vouchers" value="{voucher.pk}"' in unticked.content.decode()
    assert "after vouchers" not in unticked.content.decode()
    page = ticked.content.decode()
    assert ticked.status_code == 200
    assert "After vouchers / GPU-h" in page and 'class="num net-price">¥5.00<' in page
    assert [row.net_price_per_gpu_hour for row in ticked.context["page"].object_list] == [
        Decimal("5.0000"),
        Decimal("7.0000"),
        None,
    ]


def test_an_unticked_voucher_box_is_not_counted_as_a_filter_set(startup, startup_client, client, market):
    # given: a buyer offered a voucher checkbox, who sets only the city
    voucher = shanghai_voucher(startup)
    client.force_login(startup_client.user)
    # when
    city_only = client.get("/listings/", {"city": "Shanghai"})
    ticked = client.get("/listings/", {"city": "Shanghai", "vouchers": voucher.pk})
    # then: the nothing-ticked voucher field is no filter; a ticked voucher is one
    assert city_only.context["filters_set"] == 1 and "(1 set)" in city_only.content.decode()
    assert ticked.context["filters_set"] == 2


def test_the_page_refuses_a_voucher_that_is_not_mine(startup_client, client, market):
    # given
    theirs = shanghai_voucher(StartupFactory())
    client.force_login(startup_client.user)
    # when
    response = client.get("/listings/", {"vouchers": theirs.pk})
    # then: a form error, no results
    assert response.status_code == 200
    assert response.context["form"].errors["vouchers"]
    assert not response.context["page"].object_list


def test_bulk_contexts_agree_with_the_vouchers_booking_context():
    # given: listings of various providers, cities, review states and a related-party provider
    buyer = StartupFactory(city="Hangzhou")
    related = ProviderFactory(city="Beijing", legal_representative=buyer.legal_representative)
    controlled = AcceleratorFactory(slug="h800-ctx", export_controlled=True)
    domestic = AcceleratorFactory(slug="910b-ctx", domestic=True)
    reviewed = city_listing("Shanghai", "10", accelerator=controlled)
    ProvenanceDeclaration.objects.create(
        cluster=reviewed.cluster,
        invoice_number="I-1",
        supplier="S",
        import_documents="D",
        status=ProvenanceDeclaration.Status.APPROVED,
    )
    listings = [
        reviewed,
        city_listing("Shenzhen", "9", accelerator=controlled),
        city_listing("Hangzhou", "7", accelerator=domestic),
        city_listing("Beijing", "8", provider=related),
    ]
    now = timezone.now()
    # when
    contexts = pricing.listing_contexts(buyer, [listing.pk for listing in listings], now)
    # then
    for listing in listings:
        assert contexts[listing.pk] == booking_context(buyer=buyer, listing=listing, subtotal=ZERO, now=now)
    assert [contexts[listing.pk].listing_reviewed for listing in listings] == [True, False, True, True]
    assert contexts[listings[3].pk].related_party
