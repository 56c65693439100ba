import datetime as dt

import pytest

from audit.models import AuditEvent
from listings.models import Accelerator, Cluster, DataCenter, Listing, ProvenanceDeclaration
from tests import factories
from tests.helpers import iso
from tests.listings.factories import listing_of, reserve

pytestmark = pytest.mark.django_db
URL = "/api/v1/listings/"


@pytest.fixture
def own_cluster(provider_client, provider):
    return factories.ClusterFactory(data_center=factories.DataCenterFactory(provider=provider), node_count=4)


def listing_body(cluster, **overrides):
    start = factories.next_hour(2)
    body = {
        "cluster": cluster.pk,
        "price_per_gpu_hour": "12.5",
        "available_from": iso(start),
        "available_until": iso(start + dt.timedelta(days=7)),
        "min_hours": 2,
    }
    body.update(overrides)
    return body


def test_accelerators_are_public(api):
    response = api.get("/api/v1/accelerators/")
    assert response.status_code == 200
    slugs = {row["slug"] for row in response.json()["results"]}
    assert {"h100-sxm", "ascend-910b", "mlu370"} <= slugs


def test_search_result_shape_and_window(api, provider):
    # given an active 4×8 910B listing with 1 node booked in the window
    listing = listing_of(provider, accelerator=Accelerator.objects.get(slug="ascend-910b"), price="8.0000")
    t0 = factories.next_hour(3)
    reserve(listing, [2], t0, t0 + dt.timedelta(hours=1))
    # when anonymous users search for 910B in that window
    response = api.get(URL, {"accelerator": "ascend-910b", "start": iso(t0), "end": iso(t0 + dt.timedelta(hours=2))})
    # then the listing is there with its columns
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 1
    row = body["results"][0]
    assert row["id"] == listing.pk and row["accelerator"] == "ascend-910b" and row["city"] == provider.city
    assert (row["nodes_total"], row["gpus_per_node"], row["nodes_available"]) == (4, 8, 3)
    assert row["price_per_gpu_hour"] == "8.0000" and row["price_per_pflop_hour"] == "25.00"
    assert row["status"] == "active" and row["cluster"]["accelerator"]["domestic"] is True


def test_repeated_accelerator_and_ordering(api, provider):
    h100 = listing_of(provider, accelerator=Accelerator.objects.get(slug="h100-sxm"), price="20.0000")
    a100 = listing_of(provider, accelerator=Accelerator.objects.get(slug="a100-80g"), price="10.0000")
    listing_of(provider, accelerator=Accelerator.objects.get(slug="l40s"), price="5.0000")
    response = api.get(URL + "?accelerator=h100-sxm&accelerator=a100-80g&ordering=price_per_pflop")
    assert [r["id"] for r in response.json()["results"]] == [h100.pk, a100.pk]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"accelerator": "tpu-v9"}, "accelerator"),
        ({"start": "2030-01-01T10:00:00Z"}, "end"),
        ({"start": "2030-01-01T10:00:00Z", "end": "2030-01-01T09:00:00Z"}, "end"),
        ({"start": "2030-01-01T10:30:00Z", "end": "2030-01-01T12:00:00Z"}, "start"),
        ({"start": "2030-01-01T10:00:00", "end": "2030-01-01T12:00:00Z"}, "start"),
        ({"city": "Atlantis"}, "city"),
        ({"operator": "military"}, "operator"),
        ({"min_gpus": "-3"}, "min_gpus"),
        ({"max_price": "abc"}, "max_price"),
        ({"ordering": "rand"}, "ordering"),
    ],
)
def test_bad_search_parameters_are_400_with_field_errors(api, query, field):
    response = api.get(URL, query)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]


def test_startups_see_only_active_listings(startup_client, provider):
    active = listing_of(provider)
    draft = listing_of(provider, status="draft")
    response = startup_client.get(URL)
    assert [r["id"] for r in response.json()["results"]] == [active.pk]
    assert startup_client.get(f"{URL}{draft.pk}/").status_code == 404
    assert startup_client.get(f"{URL}{active.pk}/").status_code == 200


def test_provider_creates_edits_and_submits_a_listing(provider_client, own_cluster):
    # when the provider creates a draft
    response = provider_client.post(URL, listing_body(own_cluster), format="json")
    assert response.status_code == 201, response.content
    listing_id = response.json()["id"]
    assert response.json()["status"] == "draft" and response.json()["min_hours"] == 2
    # and changes its price, sees it with mine=1, then submits it
    patched = provider_client.patch(f"{URL}{listing_id}/", {"price_per_gpu_hour": "11.0000"}, format="json")
    assert patched.status_code == 200 and patched.json()["price_per_gpu_hour"] == "11.0000"
    assert [r["id"] for r in provider_client.get(URL, {"mine": "1"}).json()["results"]] == [listing_id]
    submitted = provider_client.post(f"{URL}{listing_id}/submit/")
    # then it waits for review
    assert submitted.status_code == 200 and submitted.json()["status"] == "pending_review"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"available_until": "from"}, "available_until"),
        ({"available_from": "2030-01-01T10:15:00Z", "available_until": "2030-01-02T10:00:00Z"}, "available_from"),
        ({"available_from": "2030-01-01T10:00:00", "available_until": "2030-01-02T10:00:00Z"}, "available_from"),
        ({"price_per_gpu_hour": "-5"}, "price_per_gpu_hour"),
        ({"min_hours": 0}, "min_hours"),
        ({"cluster": 999999}, "cluster"),
    ],
)
def test_bad_listing_input_is_400_and_writes_nothing(provider_client, own_cluster, overrides, field):
    body = listing_body(own_cluster)
    if overrides.get("available_until") == "from":
        overrides = {"available_until": body["available_from"]}
    response = provider_client.post(URL, {**body, **overrides}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not Listing.objects.exists() and not AuditEvent.objects.exists()


def test_a_provider_cannot_touch_another_providers_listing(provider_client, own_cluster):
    # given another provider's draft and cluster
    theirs = listing_of(factories.ProviderFactory(), status="draft")
    # then every write answers 404 (or a field error for the cluster) and nothing changes
    assert provider_client.patch(f"{URL}{theirs.pk}/", {"price_per_gpu_hour": "1"}, format="json").status_code == 404
    for action in ("submit", "pause", "resume"):
        assert provider_client.post(f"{URL}{theirs.pk}/{action}/").status_code == 404
    response = provider_client.post(URL, listing_body(theirs.cluster), format="json")
    assert response.status_code == 400 and "cluster" in response.json()["errors"]
    theirs.refresh_from_db()
    assert theirs.status == "draft" and str(theirs.price_per_gpu_hour) == "10.0000"


def test_startups_cannot_create_listings(startup_client, own_cluster):
    assert startup_client.post(URL, listing_body(own_cluster), format="json").status_code == 403


def test_only_platform_staff_review(provider_client, startup_client, staff_client, provider):
    # given a pending A100 listing with a pending declaration
    listing = listing_of(
        provider,
        accelerator=Accelerator.objects.get(slug="a100-80g"),
        status="pending_review",
        provenance_status="pending",
    )
    url = f"{URL}{listing.pk}/review/"
    # then providers and startups are refused
    assert provider_client.post(url, {"decision": "approve"}, format="json").status_code == 403
    assert startup_client.post(url, {"decision": "approve"}, format="json").status_code == 403
    # and a bad decision is a field error
    assert "decision" in staff_client.post(url, {"decision": "maybe"}, format="json").json()["errors"]
    # and staff approve: the listing goes active and its provenance is approved
    response = staff_client.post(url, {"decision": "approve", "note": "ok"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "active"
    assert ProvenanceDeclaration.objects.get(cluster=listing.cluster).status == "approved"
    # and reviewing again is a conflict
    assert staff_client.post(url, {"decision": "approve"}, format="json").status_code == 409


def test_pause_and_resume(provider_client, provider):
    listing = listing_of(factories.ProviderFactory(), status="active")
    mine = listing_of(provider, status="active")
    assert provider_client.post(f"{URL}{listing.pk}/pause/").status_code == 404
    assert provider_client.post(f"{URL}{mine.pk}/pause/").json()["status"] == "paused"
    assert provider_client.post(f"{URL}{mine.pk}/pause/").status_code == 409
    assert provider_client.post(f"{URL}{mine.pk}/resume/").json()["status"] == "active"


def test_provider_creates_data_centre_and_export_controlled_cluster(provider_client):
    # when a provider adds a data centre and an H800 cluster with its declaration
    dc = provider_client.post(
        "/api/v1/data-centers/", {"name": "DC A", "city": "Wuhan", "operator": "state"}, format="json"
    )
    assert dc.status_code == 201, dc.content
    body = {
        "data_center": dc.json()["id"],
        "name": "H800 pod",
        "accelerator": "h800",
        "gpus_per_node": 8,
        "node_count": 3,
        "interconnect": "RoCE",
    }
    missing = provider_client.post("/api/v1/clusters/", body, format="json")
    provenance = {"invoice_number": "INV-1", "supplier": "S", "serial_numbers": ["A1"], "import_documents": "C-1"}
    created = provider_client.post("/api/v1/clusters/", {**body, "provenance": provenance}, format="json")
    # then without provenance it is refused; with it the cluster, nodes and a pending declaration exist
    assert missing.status_code == 400 and "provenance" in missing.json()["errors"]
    assert created.status_code == 201, created.content
    assert created.json()["provenance"]["status"] == "pending"
    cluster = Cluster.objects.get(pk=created.json()["id"])
    assert cluster.nodes.count() == 3
    assert [c["id"] for c in provider_client.get("/api/v1/clusters/").json()["results"]] == [cluster.pk]


def test_clusters_and_data_centres_are_scoped_to_the_provider(provider_client):
    other_dc = factories.DataCenterFactory()
    factories.ClusterFactory(data_center=other_dc)
    assert provider_client.get("/api/v1/data-centers/").json()["count"] == 0
    assert provider_client.get("/api/v1/clusters/").json()["count"] == 0
    body = {"data_center": other_dc.pk, "name": "x", "accelerator": "ascend-910b", "gpus_per_node": 8, "node_count": 1}
    response = provider_client.post("/api/v1/clusters/", body, format="json")
    assert response.status_code == 400 and "data_center" in response.json()["errors"]
    assert DataCenter.objects.count() == 1
