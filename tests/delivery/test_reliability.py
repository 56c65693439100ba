"""Reliability (issue 20): a cluster's delivered / reserved node-hours over the bookings that ended in the last 90
days, stored on the cluster, shown on listings (API field and pages), filtered (``min_reliability``) and sorted."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client

from listings.models import Cluster, Listing
from orders.models import DeliveryIncident
from orders.reliability import cluster_reliability, clusters_reliability_refresh
from tests import factories
from tests.delivery.helpers import booking_on, h100_cluster, hour
from tests.listings.test_api import listing_body

pytestmark = pytest.mark.django_db


def incident(booking, *, node_index=1, start_offset=1, hours=2, status="closed", node=True):
    start = booking.start + dt.timedelta(hours=start_offset)
    return DeliveryIncident.objects.create(
        booking=booking,
        node=booking.listing.cluster.nodes.get(index=node_index) if node else None,
        source="silent" if node else "buyer",
        status=status,
        started_at=start,
        ended_at=start + dt.timedelta(hours=hours),
    )


def test_reliability_is_the_delivered_share_of_reserved_node_hours_over_90_days(cluster, startup):
    # given two finished 24 h bookings of one node, one down 2 h (twice, overlapping), an ongoing one, an old one
    first = booking_on(cluster, startup, start=hour(-50), end=hour(-26), nodes=(1,), status="settled")
    incident(first, hours=2)
    incident(first, start_offset=2, hours=1)
    booking_on(cluster, startup, start=hour(-25), end=hour(-1), nodes=(2,), status="completed")
    old = booking_on(cluster, startup, start=hour(-24 * 95), end=hour(-24 * 94), nodes=(1,), status="settled")
    incident(old, hours=20)
    running = booking_on(cluster, startup, start=hour(-1), end=hour(5), nodes=(1,), status="active")
    incident(running, start_offset=0, hours=1)
    # a rejected report does not count
    incident(first, start_offset=10, hours=5, status="rejected", node=False)
    # when
    scores = cluster_reliability()
    # then 48 node-hours reserved, 2 lost: 46 / 48
    assert scores == {cluster.pk: Decimal("0.9583")}


def test_a_report_about_every_node_counts_on_each(cluster, startup):
    booking = booking_on(cluster, startup, start=hour(-11), end=hour(-1), nodes=(1, 2), status="completed")
    incident(booking, hours=1, node=False)
    assert cluster_reliability(cluster_ids=[cluster.pk]) == {cluster.pk: Decimal("0.9000")}


def test_refresh_stores_it_and_clears_clusters_without_bookings(cluster, startup, provider):
    idle = h100_cluster(provider, node_count=1, serials=[])
    Cluster.objects.filter(pk=idle.pk).update(reliability=Decimal("0.5"))
    booking = booking_on(cluster, startup, start=hour(-5), end=hour(-1), nodes=(1,), status="completed")
    incident(booking, hours=1)
    assert clusters_reliability_refresh() == 2
    assert clusters_reliability_refresh() == 0
    assert Cluster.objects.get(pk=cluster.pk).reliability == Decimal("0.7500")
    assert Cluster.objects.get(pk=idle.pk).reliability is None


def test_listings_show_filter_and_sort_by_reliability(cluster, provider, api):
    # given three active listings: reliable (0.99), flaky (0.80), new (no score)
    flaky_cluster = h100_cluster(provider, node_count=1, serials=[])
    new_cluster = h100_cluster(provider, node_count=1, serials=[])
    Cluster.objects.filter(pk=cluster.pk).update(reliability=Decimal("0.9900"))
    Cluster.objects.filter(pk=flaky_cluster.pk).update(reliability=Decimal("0.8000"))
    reliable = factories.ListingFactory(cluster=cluster)
    flaky = factories.ListingFactory(cluster=flaky_cluster)
    new = factories.ListingFactory(cluster=new_cluster)
    # when / then: the field
    rows = {r["id"]: r for r in api.get("/api/v1/listings/").json()["results"]}
    assert (rows[reliable.pk]["reliability"], rows[new.pk]["reliability"]) == ("0.9900", None)
    assert rows[reliable.pk]["sla_percent"] == "99.00"
    # the filter (a cluster without a score is left out)
    found = [r["id"] for r in api.get("/api/v1/listings/?min_reliability=0.9").json()["results"]]
    assert found == [reliable.pk]
    # the ordering: most reliable first, unscored last
    ordered = [r["id"] for r in api.get("/api/v1/listings/?ordering=-reliability").json()["results"]]
    assert ordered == [reliable.pk, flaky.pk, new.pk]
    # bad input: 400 with the field named
    bad = api.get("/api/v1/listings/?min_reliability=2")
    assert bad.status_code == 400 and "min_reliability" in bad.json()["errors"]
    # the pages
    browser = Client()
    page = browser.get("/listings/?ordering=-reliability")
    assert page.status_code == 200 and "99.0 %" in page.content.decode()
    detail = browser.get(f"/listings/{flaky.pk}/")
    assert detail.status_code == 200 and "80.0 %" in detail.content.decode()


def test_a_listing_states_its_sla_at_creation_and_never_changes_it(provider, provider_client):
    own = h100_cluster(provider, node_count=1, serials=[])
    created = provider_client.post("/api/v1/listings/", listing_body(own, sla_percent="99.50"), format="json")
    assert created.status_code == 201, created.json()
    listing = Listing.objects.get(pk=created.json()["id"])
    assert listing.sla_percent == Decimal("99.50")
    default = provider_client.post("/api/v1/listings/", listing_body(own), format="json").json()
    assert Listing.objects.get(pk=default["id"]).sla_percent == Decimal("99.00")
    bad = provider_client.post("/api/v1/listings/", listing_body(own, sla_percent="50"), format="json")
    assert bad.status_code == 400 and "sla_percent" in bad.json()["errors"]
    patched = provider_client.patch(f"/api/v1/listings/{listing.pk}/", {"sla_percent": "90"}, format="json")
    assert patched.status_code == 400
    assert Listing.objects.filter(sla_percent=Decimal("99.50")).count() == 1
