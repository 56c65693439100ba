import datetime as dt
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from listings import services
from listings.models import Accelerator, Cluster, Listing, ProvenanceDeclaration
from listings.selectors import provenance_cleared
from marketplace.core.exceptions import ApplicationError
from tests import factories
from tests.helpers import run_concurrently
from tests.listings.factories import listing_of

pytestmark = pytest.mark.django_db
PROVENANCE = {
    "invoice_number": "INV-9",
    "supplier": "Distributor Ltd",
    "serial_numbers": ["SN1", "SN2"],
    "import_documents": "Customs 2025-001",
}


def chip(slug):
    return Accelerator.objects.get(slug=slug)


@pytest.fixture
def data_center(provider):
    return services.data_center_create(provider=provider, name="Lingang DC1", city="Shanghai", operator="state")


def test_cluster_create_makes_its_nodes(data_center):
    # when a cluster of 6 nodes is created
    cluster = services.cluster_create(
        data_center=data_center, name="910B pod", accelerator=chip("ascend-910b"), gpus_per_node=8, node_count=6
    )
    # then nodes 1..6 exist and no declaration is needed
    assert list(cluster.nodes.values_list("index", flat=True)) == [1, 2, 3, 4, 5, 6]
    assert not ProvenanceDeclaration.objects.filter(cluster=cluster).exists()
    assert provenance_cleared(cluster)


def test_export_controlled_cluster_requires_a_full_declaration(data_center):
    # when an H100 cluster is created without provenance, or with an incomplete one
    with pytest.raises(ApplicationError) as missing:
        services.cluster_create(
            data_center=data_center, name="H100", accelerator=chip("h100-sxm"), gpus_per_node=8, node_count=2
        )
    with pytest.raises(ApplicationError) as partial:
        services.cluster_create(
            data_center=data_center,
            name="H100",
            accelerator=chip("h100-sxm"),
            gpus_per_node=8,
            node_count=2,
            provenance={**PROVENANCE, "serial_numbers": []},
        )
    # then nothing is written and the fields are named
    assert "provenance" in missing.value.errors
    assert set(partial.value.errors) == {"provenance.serial_numbers"}
    assert not Cluster.objects.exists()
    # and with the full declaration the cluster is created with a pending declaration
    cluster = services.cluster_create(
        data_center=data_center,
        name="H100",
        accelerator=chip("h100-sxm"),
        gpus_per_node=8,
        node_count=2,
        provenance=PROVENANCE,
    )
    assert cluster.provenance.status == "pending" and cluster.provenance.serial_numbers == ["SN1", "SN2"]
    assert not provenance_cleared(cluster)


def test_data_center_rejects_bad_city_and_duplicate_names(provider, data_center):
    with pytest.raises(ApplicationError) as bad:
        services.data_center_create(provider=provider, name="X", city="Atlantis", operator="state")
    with pytest.raises(ApplicationError) as dup:
        services.data_center_create(provider=provider, name="Lingang DC1", city="Shanghai", operator="state")
    assert "city" in bad.value.errors and "name" in dup.value.errors


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"available_until": "start"}, "available_until"),
        ({"available_from": "start+30m"}, "available_from"),
        ({"available_from": "naive"}, "available_from"),
        ({"price_per_gpu_hour": Decimal("-1")}, "price_per_gpu_hour"),
        ({"price_per_gpu_hour": Decimal("0")}, "price_per_gpu_hour"),
        ({"min_hours": 0}, "min_hours"),
        ({"min_hours": 48}, "available_until"),
    ],
)
def test_listing_create_refuses_bad_terms_and_writes_nothing(provider, change, field):
    # given a cluster and a one-day window
    cluster = factories.ClusterFactory(data_center=factories.DataCenterFactory(provider=provider))
    start = factories.next_hour(2)
    values = {"start": start, "start+30m": start + dt.timedelta(minutes=30), "naive": start.replace(tzinfo=None)}
    terms = {
        "price_per_gpu_hour": Decimal("9.5"),
        "available_from": start,
        "available_until": start + dt.timedelta(days=1),
        "min_hours": 1,
    }
    terms.update({k: values.get(v, v) if isinstance(v, str) else v for k, v in change.items()})
    # when / then
    with pytest.raises(ApplicationError) as exc:
        services.listing_create(provider=provider, cluster=cluster, **terms)
    assert exc.value.status == 400 and field in exc.value.errors
    assert not Listing.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="listings.listing").exists()


def test_listing_create_refuses_another_providers_cluster(provider):
    other = factories.ClusterFactory()
    start = factories.next_hour(1)
    with pytest.raises(ApplicationError) as exc:
        services.listing_create(
            provider=provider,
            cluster=other,
            price_per_gpu_hour=Decimal(5),
            available_from=start,
            available_until=start + dt.timedelta(hours=5),
        )
    assert "cluster" in exc.value.errors


def test_full_pipeline_with_provenance(provider, platform_org):
    # given a draft H100 listing with a pending declaration
    staff = factories.member_of(platform_org)
    listing = listing_of(provider, accelerator=chip("h100-sxm"), status="draft", provenance_status="pending")
    # when it is submitted, then resumed too early, then approved
    listing = services.listing_submit(listing=listing)
    assert listing.status == "pending_review"
    listing = services.listing_review(listing=listing, actor=staff, decision="approve", note="invoice checked")
    # then it is active, the declaration approved by staff, and each step audited
    declaration = ProvenanceDeclaration.objects.get(cluster=listing.cluster)
    assert listing.status == "active" and declaration.status == "approved" and declaration.reviewed_by == staff
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["listings.listing_submitted", "listings.provenance_approved", "listings.listing_approved"]
    # and pause / resume round-trip
    assert services.listing_pause(listing=listing).status == "paused"
    assert services.listing_resume(listing=listing).status == "active"


def test_rejection_needs_a_note_and_can_be_resubmitted(provider, platform_org):
    staff = factories.member_of(platform_org)
    listing = services.listing_submit(listing=listing_of(provider, status="draft"))
    with pytest.raises(ApplicationError) as exc:
        services.listing_review(listing=listing, actor=staff, decision="reject")
    assert "note" in exc.value.errors
    listing = services.listing_review(listing=listing, actor=staff, decision="reject", note="price too high")
    assert listing.status == "rejected" and listing.review_note == "price too high"
    listing = services.listing_update(listing=listing, price_per_gpu_hour=Decimal("7.5"))
    assert listing.price_per_gpu_hour == Decimal("7.5000")
    assert services.listing_submit(listing=listing).status == "pending_review"


@pytest.mark.parametrize(
    ("status", "service"),
    [
        ("draft", services.listing_pause),
        ("draft", services.listing_resume),
        ("active", services.listing_submit),
        ("pending_review", services.listing_pause),
        ("closed", services.listing_resume),
    ],
)
def test_transitions_outside_the_map_are_409_and_change_nothing(provider, status, service):
    listing = listing_of(provider, status=status)
    with pytest.raises(ApplicationError) as exc:
        service(listing=listing)
    assert exc.value.status == 409
    listing.refresh_from_db()
    assert listing.status == status and not AuditEvent.objects.exists()


def test_resume_is_refused_while_provenance_is_not_approved(provider):
    listing = listing_of(provider, accelerator=chip("a800"), status="paused", provenance_status="rejected")
    with pytest.raises(ApplicationError) as exc:
        services.listing_resume(listing=listing)
    assert exc.value.status == 409 and "provenance" in exc.value.errors


def test_active_listing_cannot_be_edited(provider):
    listing = listing_of(provider)
    with pytest.raises(ApplicationError) as exc:
        services.listing_update(listing=listing, price_per_gpu_hour=Decimal(1))
    assert exc.value.status == 409


def test_close_expired_sweep_closes_once(provider):
    # given one listing whose window ended and one still open
    ended = listing_of(provider, start=factories.next_hour(-30), days=1)
    open_ = listing_of(provider)
    # when the sweep runs twice
    first = services.listings_close_expired()
    second = services.listings_close_expired()
    # then only the ended listing is closed, once, with one audit event
    ended.refresh_from_db()
    open_.refresh_from_db()
    assert (first, second) == (1, 0)
    assert ended.status == "closed" and open_.status == "active"
    assert AuditEvent.objects.filter(action="listings.listing_closed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_staff_approving_at_once_approve_once():
    # given a pending listing and two staff members
    platform = factories.PlatformFactory()
    staff = [factories.member_of(platform), factories.member_of(platform)]
    listing = listing_of(factories.ProviderFactory(), status="pending_review")

    def approve(user):
        return services.listing_review(listing=listing, actor=user, decision="approve").status

    # when both approve concurrently
    results = run_concurrently(approve, [(u,) for u in staff])
    # then one succeeds and the other gets a 409; one audit event
    statuses = sorted(str(r if isinstance(r, str) else r.status) for r in results)
    assert statuses == ["409", "active"]
    assert AuditEvent.objects.filter(action="listings.listing_approved").count() == 1


def test_a_window_wholly_in_the_past_is_refused_even_as_a_draft():
    # given a provider's cluster
    from django.utils import timezone

    cluster = factories.ClusterFactory()
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=3)
    # when / then
    with pytest.raises(ApplicationError) as excinfo:
        services.listing_create(
            provider=cluster.data_center.provider,
            cluster=cluster,
            price_per_gpu_hour=Decimal("5"),
            available_from=start,
            available_until=start + dt.timedelta(days=1),
        )
    assert "available_until" in excinfo.value.errors
    assert not Listing.objects.exists()
