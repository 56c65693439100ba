import datetime as dt

import pytest
from django.test import Client

from listings.models import Accelerator, Cluster, DataCenter, Listing
from tests import factories
from tests.helpers import page_input
from tests.listings.factories import listing_of

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_browse_page_filters_and_htmx_partial(provider):
    # given a Shanghai 910B listing and a Chengdu A100 listing
    shanghai = factories.ProviderFactory(city="Shanghai")
    ascend = listing_of(shanghai, accelerator=Accelerator.objects.get(slug="ascend-910b"))
    listing_of(factories.ProviderFactory(city="Chengdu"), accelerator=Accelerator.objects.get(slug="a100-80g"))
    client = Client()
    # when the full page loads it has the filter form wired to htmx
    page = client.get("/listings/")
    assert page.status_code == 200
    assert b'hx-get="/listings/"' in page.content and b'id="listing-results"' in page.content
    # and an htmx request with filters gets only the results partial
    partial = client.get("/listings/", {"city": "Shanghai", "accelerator": "ascend-910b"}, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200
    assert b"<html" not in partial.content and b"Ascend 910B" in partial.content and b"A100" not in partial.content
    assert f'href="/listings/{ascend.pk}/"'.encode() in partial.content


def test_browse_page_shows_field_errors_and_empty_state():
    client = Client()
    bad = client.get("/listings/", {"start": "2030-01-01T10:30", "end": "2030-01-01T09:00"})
    assert bad.status_code == 200 and b"whole hour" in bad.content
    empty = client.get("/listings/", {"city": "Kunming"})
    assert b"No listing matches these filters" in empty.content


def test_the_filter_panel_counts_the_filters_set_and_stays_open_on_an_error():
    client = Client()
    # the order of the results is not a filter; a blank parameter is not one either
    page = client.get("/listings/", {"city": "Shanghai", "max_price": "30", "ordering": "price", "operator": ""})
    html = page.content.decode()
    assert page.context["filters_set"] == 2 and "(2 set)" in html
    assert 'id="filter-panel" class="filter-panel" open data-fold-narrow>' in html
    # a filter in error keeps the panel open on a phone too, where its message is
    bad = client.get("/listings/", {"min_gpus": "-1"}).content.decode()
    assert 'id="filter-panel" class="filter-panel" open data-fold-narrow data-keep-open>' in bad
    assert " set)</small>" not in client.get("/listings/").content.decode()  # none set: no count
    # an htmx results swap carries the new count out of band, for the summary outside the swapped results
    swapped = client.get("/listings/", {"city": "Shanghai"}, HTTP_HX_REQUEST="true").content.decode()
    assert '<small id="filters-set" class="muted" hx-swap-oob="true">(1 set)</small>' in swapped
    cleared = client.get("/listings/", {"city": ""}, HTTP_HX_REQUEST="true").content.decode()
    assert '<small id="filters-set" class="muted" hx-swap-oob="true"></small>' in cleared


def test_browse_reads_datetime_local_in_beijing_time(provider):
    listing = listing_of(provider)
    start = listing.available_from + dt.timedelta(hours=1)
    page = Client().get("/listings/", {"start": page_input(start), "end": page_input(start + dt.timedelta(hours=2))})
    assert f'href="/listings/{listing.pk}/"'.encode() in page.content


def test_detail_has_timeline_and_book_link(provider):
    listing = listing_of(provider)
    page = Client().get(f"/listings/{listing.pk}/")
    assert page.status_code == 200
    assert page.content.count(b'class="bar"') == 14
    assert f'href="/listings/{listing.pk}/book/"'.encode() in page.content
    draft = listing_of(provider, status="draft")
    assert Client().get(f"/listings/{draft.pk}/").status_code == 404


def test_provider_page_creates_things_and_shows_errors_in_place(provider):
    client = logged_in(factories.member_of(provider))
    assert client.get("/provider/").status_code == 200
    # when a data centre, a cluster and a listing are created through the forms
    created = client.post("/provider/data-centers/", {"name": "DC", "city": "Hefei", "operator": "state"})
    assert created.status_code == 302
    dc = DataCenter.objects.get(provider=provider)
    assert (
        client.post(
            "/provider/clusters/",
            {"data_center": dc.pk, "name": "P1", "accelerator": "ascend-910b", "gpus_per_node": 8, "node_count": 2},
        ).status_code
        == 302
    )
    cluster = Cluster.objects.get(data_center=dc)
    start = factories.next_hour(2)
    form = {
        "cluster": cluster.pk,
        "price_per_gpu_hour": "7",
        "min_hours": 1,
        "available_from": page_input(start),
        "available_until": page_input(start + dt.timedelta(days=2)),
    }
    assert client.post("/provider/listings/", form).status_code == 302
    listing = Listing.objects.get(cluster=cluster)
    # then an export-controlled cluster without provenance is refused in place
    refused = client.post(
        "/provider/clusters/",
        {"data_center": dc.pk, "name": "P2", "accelerator": "h100-sxm", "gpus_per_node": 8, "node_count": 2},
    )
    assert refused.status_code == 400 and b"provenance declaration" in refused.content
    # and a window that ends before it starts is a field error
    bad = client.post("/provider/listings/", {**form, "available_until": form["available_from"]})
    assert bad.status_code == 400 and b"Must be after the start" in bad.content
    # and absurd minimum hours are a field error, not a 500
    for absurd in ("1e30", "1" + "0" * 30):
        huge = client.post("/provider/listings/", {**form, "min_hours": absurd})
        assert huge.status_code == 400 and b"Minimum hours" in huge.content
    # and the draft can be submitted
    assert client.post(f"/provider/listings/{listing.pk}/submit/").status_code == 302
    listing.refresh_from_db()
    assert listing.status == "pending_review" and Listing.objects.count() == 1


def test_provider_page_refuses_others(startup):
    assert logged_in(factories.member_of(startup)).get("/provider/").status_code == 403
    assert Client().get("/provider/").status_code == 302  # to the login page


def test_review_queue_for_staff_only(provider, platform_org, startup):
    listing = listing_of(
        provider, accelerator=Accelerator.objects.get(slug="h20"), status="pending_review", provenance_status="pending"
    )
    assert logged_in(factories.member_of(startup)).get("/review/").status_code == 403
    staff = logged_in(factories.member_of(platform_org))
    page = staff.get("/review/")
    assert page.status_code == 200 and b"INV-1" in page.content
    assert staff.post(f"/review/{listing.pk}/", {"decision": "approve", "note": ""}).status_code == 302
    listing.refresh_from_db()
    assert listing.status == "active"
    assert b"Nothing to review" in staff.get("/review/").content


def test_provider_edits_the_terms_of_a_paused_listing_and_sees_errors_in_place():
    from decimal import Decimal

    from django.test import Client

    from listings.models import Listing
    from tests.factories import ListingFactory, member_of

    # given a paused listing of this provider
    listing = ListingFactory(status=Listing.Status.PAUSED)
    client = Client()
    client.force_login(member_of(listing.cluster.data_center.provider))
    url = f"/provider/listings/{listing.pk}/edit/"
    start = page_input(listing.available_from)
    until = page_input(listing.available_until)
    assert client.get(url).status_code == 200
    # when a bad window is posted / then 400 with the error shown and nothing changed
    bad = client.post(
        url, {"price_per_gpu_hour": "9.5", "available_from": until, "available_until": start, "min_hours": 1}
    )
    assert bad.status_code == 400 and 'class="error"' in bad.content.decode()
    listing.refresh_from_db()
    assert listing.price_per_gpu_hour == Decimal("10.0000")
    # when good terms are posted / then saved
    good = client.post(
        url, {"price_per_gpu_hour": "9.5", "available_from": start, "available_until": until, "min_hours": 2}
    )
    assert good.status_code == 302
    listing.refresh_from_db()
    assert (listing.price_per_gpu_hour, listing.min_hours) == (Decimal("9.5000"), 2)


def test_another_providers_listing_cannot_be_edited():
    from django.test import Client

    from tests.factories import ListingFactory, ProviderFactory, member_of

    listing = ListingFactory()
    client = Client()
    client.force_login(member_of(ProviderFactory()))
    assert client.get(f"/provider/listings/{listing.pk}/edit/").status_code == 404
