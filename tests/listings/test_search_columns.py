"""The listing's search columns (copies of its cluster's facts, kept in step by PostgreSQL triggers) and the search
that reads them: same results as through the joins, a bounded number of queries per request."""

import datetime as dt
import itertools
import random
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from listings import selectors
from listings.models import Accelerator, Cluster, DataCenter, Listing
from tests import factories
from tests.helpers import iso
from tests.listings.factories import listing_of, reserve

pytestmark = pytest.mark.django_db
URL = "/api/v1/listings/"


def chip(slug):
    return Accelerator.objects.get(slug=slug)


def columns(listing):
    listing.refresh_from_db()
    return (
        listing.accelerator_id,
        listing.city,
        listing.operator,
        listing.domestic,
        listing.gpus_per_node,
        listing.node_count,
        listing.price_per_pflop_hour,
    )


def expected_columns(listing):
    """What the columns must be, read through the joins."""
    cluster = Cluster.objects.select_related("data_center", "accelerator").get(pk=listing.cluster_id)
    price = Listing.objects.values_list("price_per_gpu_hour", flat=True).get(pk=listing.pk)
    pflop = (price * 1000 / cluster.accelerator.bf16_tflops).quantize(Decimal("1E-10"))
    return (
        cluster.accelerator_id,
        cluster.data_center.city,
        cluster.data_center.operator,
        cluster.accelerator.domestic,
        cluster.gpus_per_node,
        cluster.node_count,
        pflop,
    )


def test_columns_are_filled_on_insert_and_read_back_by_django():
    # given a 2×16 Ascend 910B cluster in a private Chengdu data centre
    provider = factories.ProviderFactory(city="Chengdu")
    # when a listing is created (the trigger fills the columns; Django reads them back with RETURNING)
    listing = listing_of(
        provider, accelerator=chip("ascend-910b"), operator="private", nodes=2, gpus_per_node=16, price="8.0000"
    )
    # then the instance already carries them, and they are what the joins say
    assert (listing.city, listing.operator, listing.domestic, listing.gpus_per_node, listing.node_count) == (
        "Chengdu",
        "private",
        True,
        16,
        2,
    )
    assert listing.accelerator_id == chip("ascend-910b").pk
    assert listing.price_per_pflop_hour == Decimal("25.0000000000")  # ¥8 / 0.32 PFLOPS
    assert columns(listing) == expected_columns(listing)


def test_bulk_created_listings_get_their_columns():
    # given two clusters of different chips
    a, b = factories.ClusterFactory(accelerator=chip("h100-sxm")), factories.ClusterFactory(accelerator=chip("l40s"))
    start = factories.next_hour(1)
    # when listings are bulk-inserted
    made = Listing.objects.bulk_create(
        Listing(
            cluster=c,
            price_per_gpu_hour=Decimal("9.5000"),
            available_from=start,
            available_until=start + dt.timedelta(days=2),
        )
        for c in (a, b)
    )
    # then each has its own cluster's columns
    assert [m.accelerator_id for m in made] == [a.accelerator_id, b.accelerator_id]
    assert all(columns(m) == expected_columns(m) for m in made)


def test_columns_follow_cluster_changes():
    # given two listings of one cluster and a listing of another
    cluster = factories.ClusterFactory(accelerator=chip("a100-80g"), node_count=4, gpus_per_node=8)
    first, second = factories.ListingFactory(cluster=cluster), factories.ListingFactory(cluster=cluster)
    other = factories.ListingFactory(cluster=factories.ClusterFactory(node_count=3))
    other_before = columns(other)
    # when the cluster gets more nodes, another chip and another data centre (save() and update() alike)
    cluster.node_count, cluster.accelerator = 6, chip("h100-sxm")
    cluster.save()
    Cluster.objects.filter(pk=cluster.pk).update(gpus_per_node=4, data_center=factories.DataCenterFactory(city="Wuhu"))
    # then both listings of that cluster follow, the other listing is untouched
    for listing in (first, second):
        assert columns(listing) == expected_columns(listing)
        assert (listing.node_count, listing.gpus_per_node, listing.city) == (6, 4, "Wuhu")
        assert listing.accelerator_id == chip("h100-sxm").pk
    assert columns(other) == other_before


def test_columns_follow_data_centre_and_accelerator_changes():
    # given listings in one data centre, one of them on a chip of its own
    data_center = factories.DataCenterFactory(city="Hefei", operator=DataCenter.Operator.STATE)
    own_chip = factories.AcceleratorFactory(slug="test-chip", bf16_tflops=Decimal("500.0"), domestic=False)
    on_own_chip = factories.ListingFactory(
        cluster=factories.ClusterFactory(data_center=data_center, accelerator=own_chip)
    )
    other = factories.ListingFactory(cluster=factories.ClusterFactory(data_center=data_center))
    # when the data centre moves and changes operator, and the chip's figures are corrected
    data_center.city, data_center.operator = "Wuhan", DataCenter.Operator.PRIVATE
    data_center.save()
    Accelerator.objects.filter(pk=own_chip.pk).update(bf16_tflops=Decimal("400.0"), domestic=True)
    # then every listing there follows; the chip's listing has its new price per PFLOP-hour and domestic flag
    for listing in (on_own_chip, other):
        assert columns(listing) == expected_columns(listing)
        assert (listing.city, listing.operator) == ("Wuhan", "private")
    assert (on_own_chip.domestic, on_own_chip.price_per_pflop_hour) == (True, Decimal("25.0000000000"))  # ¥10/0.4


def test_columns_follow_the_listing_itself_and_cannot_be_written_directly():
    # given a listing
    listing = factories.ListingFactory(cluster=factories.ClusterFactory(accelerator=chip("h100-sxm")))
    # when its price and cluster change, and someone writes a search column directly
    Listing.objects.filter(pk=listing.pk).update(price_per_gpu_hour=Decimal("19.7800"))
    Listing.objects.filter(pk=listing.pk).update(
        cluster=factories.ClusterFactory(accelerator=chip("l40s"), node_count=2)
    )
    Listing.objects.filter(pk=listing.pk).update(city="Atlantis", node_count=99, domestic=True)
    # then the columns are still the cluster's and the new price's
    assert columns(listing) == expected_columns(listing)
    assert listing.node_count == 2 and listing.city != "Atlantis"
    # and a stale instance saved whole does not bring old values back
    stale = Listing.objects.get(pk=listing.pk)
    Cluster.objects.filter(pk=listing.cluster_id).update(node_count=5)
    stale.min_hours = 2
    stale.save()
    assert columns(listing)[5] == 5


# A reference search through the joins, evaluated in Python: what ``listing_search`` must return.


def busy_nodes(cluster, start, end) -> int:
    return len(
        {
            r.node_id
            for node in cluster.nodes.all()
            for r in node.reservations.all()
            if r.active and r.period.lower < end and start < r.period.upper
        }
    )


def reference_rows(windows):
    """Every listing with its cluster, data centre and chip, and its cluster's busy nodes per window."""
    rows = []
    for listing in Listing.objects.select_related("cluster__data_center", "cluster__accelerator"):
        busy = {(w.get("start"), w.get("end")): busy_nodes(listing.cluster, w["start"], w["end"]) for w in windows if w}
        rows.append((listing, busy))
    return rows


def reference_search(rows, filters):
    now = timezone.now()
    start, end = filters.get("start"), filters.get("end")
    found = []
    for listing, busy in rows:
        cluster, dc, acc = listing.cluster, listing.cluster.data_center, listing.cluster.accelerator
        checks = [
            listing.status == "active" and listing.available_until > now,
            acc in filters.get("accelerator", [acc]),
            dc.city == filters.get("city", dc.city),
            dc.operator == filters.get("operator", dc.operator),
            acc.domestic == filters.get("domestic", acc.domestic),
            listing.price_per_gpu_hour <= filters.get("max_price", listing.price_per_gpu_hour),
            not start
            or (
                listing.available_from <= start
                and listing.available_until >= end
                and listing.min_hours <= (end - start).total_seconds() // 3600
            ),
            cluster.gpus_per_node * (cluster.node_count - busy.get((start, end), 0)) >= filters.get("min_gpus", 0),
        ]
        if all(checks):
            found.append((listing.price_per_gpu_hour * 1000 / acc.bf16_tflops, listing.price_per_gpu_hour, listing.pk))
    ordering = filters.get("ordering", "price")
    if ordering == "price_per_pflop":
        found.sort()
    else:
        found.sort(key=lambda r: (r[1], r[2]), reverse=ordering == "-price")
    return [pk for _, _, pk in found]


@pytest.fixture
def random_market():
    """30 listings over assorted chips, cities, operators, sizes, prices and windows, some nodes reserved."""
    rng = random.Random(11)
    chips = [chip(s) for s in ("h100-sxm", "a100-80g", "ascend-910b", "l40s", "ascend-910c")]
    providers = [factories.ProviderFactory(city=city) for city in ("Shanghai", "Chengdu", "Wuhu")]
    t0 = factories.next_hour(2)
    listings = []
    for _ in range(30):
        start = t0 + dt.timedelta(hours=rng.randint(-30, 30))
        listings.append(
            listing_of(
                rng.choice(providers),
                accelerator=rng.choice(chips),
                operator=rng.choice(["state", "private"]),
                nodes=rng.choice([1, 2, 4]),
                gpus_per_node=rng.choice([4, 8]),
                price=f"{rng.randint(300, 2000) / 100}",
                status=rng.choice(["active"] * 5 + ["paused"]),
                start=start,
                days=rng.choice([1, 3, 6]),
                min_hours=rng.choice([1, 4, 24]),
            )
        )
    for listing in rng.sample(listings, 12):
        begin = t0 + dt.timedelta(hours=rng.randint(0, 60))
        nodes = rng.sample(range(1, listing.cluster.node_count + 1), rng.randint(1, listing.cluster.node_count))
        reserve(listing, nodes, begin, begin + dt.timedelta(hours=rng.randint(2, 30)), active=rng.random() < 0.8)
    return {"t0": t0, "chips": chips}


def test_filter_combinations_match_a_search_through_the_joins(random_market):
    # given the random market and every combination of a few values of each filter
    t0, chips = random_market["t0"], random_market["chips"]
    windows = [
        {},
        {"start": t0 + dt.timedelta(hours=6), "end": t0 + dt.timedelta(hours=10)},
        {"start": t0 + dt.timedelta(hours=12), "end": t0 + dt.timedelta(hours=48)},
    ]
    options = [
        [{}, {"accelerator": chips[:2]}, {"accelerator": [chips[2]]}],
        [{}, {"city": "Chengdu"}],
        [{}, {"operator": "state"}],
        [{}, {"domestic": True}, {"domestic": False}],
        [{}, {"min_gpus": 8}, {"min_gpus": 20}],
        [{}, {"max_price": Decimal("12")}],
        [{}, {"ordering": "-price"}, {"ordering": "price_per_pflop"}],
    ]
    rows = reference_rows(windows)
    checked = nonempty = 0
    for window in windows:
        for parts in itertools.product(*options):
            filters = {k: v for part in (window, *parts) for k, v in part.items()}
            # when searched / then the ids and their order equal the reference's
            expected = reference_search(rows, filters)
            assert [x.pk for x in selectors.listing_search(filters=filters)] == expected, filters
            checked += 1
            nonempty += bool(expected)
    # and the combinations were not all empty
    assert checked == 3 * 3 * 2 * 2 * 3 * 3 * 2 * 3 and nonempty > checked // 4


def test_nodes_available_on_a_page_matches_the_reference(random_market):
    # given windows over the reservations
    t0 = random_market["t0"]
    for hours in ((0, 4), (6, 10), (12, 48), (20, 21)):
        start, end = t0 + dt.timedelta(hours=hours[0]), t0 + dt.timedelta(hours=hours[1])
        # when a page of all listings is shown for the window
        rows = selectors.listing_rows(Listing.objects.order_by("id"), start=start, end=end)
        # then each row's free nodes are its cluster's nodes without an active reservation overlapping the window
        assert len(rows) == 30
        for row in rows:
            assert row.nodes_available == row.cluster.node_count - busy_nodes(row.cluster, start, end)


@pytest.mark.parametrize("count", [3, 30])
def test_a_search_request_runs_a_fixed_number_of_queries_without_joins_to_filter(api, count):
    # given ``count`` listings, some with reserved nodes
    provider = factories.ProviderFactory(city="Shanghai")
    t0 = factories.next_hour(3)
    for i in range(count):
        listing = listing_of(provider, accelerator=chip("h100-sxm" if i % 2 else "a100-80g"), nodes=4)
        if i % 3 == 0:
            reserve(listing, [1], t0, t0 + dt.timedelta(hours=2))
    query = {
        "accelerator": ["h100-sxm", "a100-80g"],
        "city": "Shanghai",
        "operator": "state",
        "domestic": "false",
        "min_gpus": "16",
        "max_price": "50",
        "start": iso(t0),
        "end": iso(t0 + dt.timedelta(hours=4)),
        "ordering": "price_per_pflop",
        "page_size": "50",
    }
    # when anonymous users search with every filter
    with CaptureQueriesContext(connection) as ctx:
        response = api.get(URL, query)
    # then all listings are found with five queries whatever their number: chips, busy nodes, count, page, rows
    assert response.status_code == 200 and response.json()["count"] == count
    assert len(ctx.captured_queries) == 5
    # and the count and the page read the listing table alone
    count_sql, page_sql = ctx.captured_queries[2]["sql"], ctx.captured_queries[3]["sql"]
    assert count_sql.startswith("SELECT COUNT(*)")
    for sql in (count_sql, page_sql):
        assert "listings_listing" in sql
        assert not any(table in sql for table in ("listings_cluster", "listings_datacenter", "listings_accelerator"))
