import pytest

from accounts import demo as accounts_demo
from listings import demo
from listings.models import Cluster, Listing, ProvenanceDeclaration

pytestmark = pytest.mark.django_db


def test_demo_seed_is_idempotent_and_covers_the_cities():
    # given the demo organizations
    accounts_demo.seed()
    # when the listings seeder runs twice
    demo.seed()
    first = (Cluster.objects.count(), Listing.objects.count(), ProvenanceDeclaration.objects.count())
    demo.seed()
    # then nothing is duplicated; ~40 clusters in all 17 cities, each with an active listing
    assert (Cluster.objects.count(), Listing.objects.count(), ProvenanceDeclaration.objects.count()) == first
    assert first[0] == demo.CLUSTER_COUNT and first[1] == demo.CLUSTER_COUNT
    assert Cluster.objects.values("data_center__city").distinct().count() == 17
    assert Listing.objects.filter(status="active").count() == demo.CLUSTER_COUNT
    # and export-controlled clusters have approved provenance; Shanghai has an Ascend 910B
    controlled = Cluster.objects.filter(accelerator__export_controlled=True)
    assert controlled.exists()
    assert all(c.provenance.status == "approved" for c in controlled)
    assert Listing.objects.filter(
        cluster__data_center__city="Shanghai", cluster__accelerator__slug="ascend-910b", status="active"
    ).exists()


def test_demo_prices_are_realistic():
    accounts_demo.seed()
    demo.seed()
    for listing in Listing.objects.select_related("cluster__accelerator"):
        low, high = demo.CHIPS[listing.cluster.accelerator.slug][0]
        assert low <= listing.price_per_gpu_hour <= high
