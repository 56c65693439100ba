import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.test import Client

from listings import selectors
from listings.models import Accelerator, Listing
from tests import factories
from tests.listings.factories import listing_of, reserve

pytestmark = pytest.mark.django_db


def chip(slug):
    return Accelerator.objects.get(slug=slug)


def ids(qs):
    return [listing.pk for listing in qs]


@pytest.fixture
def market():
    """Four active listings in two cities, plus a draft."""
    lingang = factories.ProviderFactory(city="Shanghai")
    tianfu = factories.ProviderFactory(city="Chengdu")
    return {
        "h100_sh": listing_of(lingang, accelerator=chip("h100-sxm"), price="20.0000", nodes=4),
        "910b_sh": listing_of(lingang, accelerator=chip("ascend-910b"), price="8.0000", nodes=2),
        "a100_cd": listing_of(tianfu, accelerator=chip("a100-80g"), price="10.0000", operator="private", nodes=8),
        "910b_cd": listing_of(tianfu, accelerator=chip("ascend-910b"), price="7.0000", operator="private", nodes=1),
        "draft": listing_of(tianfu, accelerator=chip("ascend-910b"), price="1.0000", status=Listing.Status.DRAFT),
    }


def test_catalog_is_seeded_with_real_figures():
    # given the data migration / then the chips the issue names are there with their vendor figures
    assert chip("h100-sxm").bf16_tflops == Decimal("989.0") and chip("h100-sxm").export_controlled
    assert chip("ascend-910b").domestic and not chip("ascend-910b").export_controlled
    assert chip("mlu370").vendor == "Cambricon"
    assert {"h200", "h800", "h20", "a800", "l40s", "rtx-4090", "ascend-910c"} <= set(
        Accelerator.objects.values_list("slug", flat=True)
    )


def test_search_shows_only_active_listings_cheapest_first(market):
    # when anonymous users search without filters
    got = ids(selectors.listing_search(filters={}))
    # then the draft is hidden and prices ascend
    assert got == [market[k].pk for k in ("910b_cd", "910b_sh", "a100_cd", "h100_sh")]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"city": "Shanghai"}, ["910b_sh", "h100_sh"]),
        ({"operator": "private"}, ["910b_cd", "a100_cd"]),
        ({"domestic": True}, ["910b_cd", "910b_sh"]),
        ({"domestic": False, "city": "Chengdu"}, ["a100_cd"]),
        ({"max_price": Decimal("8")}, ["910b_cd", "910b_sh"]),
        ({"min_gpus": 32}, ["a100_cd", "h100_sh"]),
        ({"min_gpus": 9, "domestic": True}, ["910b_sh"]),
        ({"city": "Shanghai", "max_price": Decimal("9"), "domestic": True}, ["910b_sh"]),
        ({"ordering": "-price"}, ["h100_sh", "a100_cd", "910b_sh", "910b_cd"]),
    ],
)
def test_filter_combinations(market, filters, expected):
    assert ids(selectors.listing_search(filters=filters)) == [market[k].pk for k in expected]


def test_accelerator_filter_takes_several_chips(market):
    got = ids(selectors.listing_search(filters={"accelerator": [chip("h100-sxm"), chip("a100-80g")]}))
    assert got == [market["a100_cd"].pk, market["h100_sh"].pk]


def test_ordering_by_price_per_pflop_compares_chips(market):
    # given H100 ¥20 (989 TFLOPS → ¥20.22/PFLOP-h) and A100 ¥10 (312 TFLOPS → ¥32.05/PFLOP-h)
    rows = selectors.listing_rows(selectors.listing_search(filters={"ordering": "price_per_pflop", "domestic": False}))
    # then the H100 is cheaper per PFLOP-hour although dearer per GPU-hour
    assert [r.pk for r in rows] == [market["h100_sh"].pk, market["a100_cd"].pk]
    assert rows[0].price_per_pflop_hour.quantize(Decimal("0.01")) == Decimal("20.22")


def test_window_counts_only_active_overlapping_reservations(market):
    # given an 8-node listing with nodes 1-3 booked 10:00-14:00, node 4 booked later, node 5 released
    listing = market["a100_cd"]
    t0 = factories.next_hour(24)
    reserve(listing, [1, 2, 3], t0, t0 + dt.timedelta(hours=4))
    reserve(listing, [4], t0 + dt.timedelta(hours=4), t0 + dt.timedelta(hours=6))
    reserve(listing, [5], t0, t0 + dt.timedelta(hours=6), active=False)

    def available(start, end):
        filters = {"start": start, "end": end, "accelerator": [chip("a100-80g")]}
        [row] = selectors.listing_rows(selectors.listing_search(filters=filters), start=start, end=end)
        return row.nodes_available

    # then the window's free nodes count overlaps only ([) ranges: touching is not overlapping)
    assert available(t0, t0 + dt.timedelta(hours=2)) == 5
    assert available(t0 + dt.timedelta(hours=3), t0 + dt.timedelta(hours=5)) == 4
    assert available(t0 + dt.timedelta(hours=4), t0 + dt.timedelta(hours=6)) == 7
    assert available(t0 + dt.timedelta(hours=6), t0 + dt.timedelta(hours=8)) == 8


def test_min_gpus_uses_availability_in_the_window(market):
    # given the 2-node 910B in Shanghai with one node booked in the window
    listing = market["910b_sh"]
    t0 = factories.next_hour(5)
    reserve(listing, [1], t0, t0 + dt.timedelta(hours=3))
    window = {"start": t0, "end": t0 + dt.timedelta(hours=2), "city": "Shanghai", "domestic": True}
    # then 8 GPUs are still free but 16 are not
    assert ids(selectors.listing_search(filters={**window, "min_gpus": 8})) == [listing.pk]
    assert ids(selectors.listing_search(filters={**window, "min_gpus": 16})) == []
    # and without a window all nodes count
    assert ids(selectors.listing_search(filters={"city": "Shanghai", "domestic": True, "min_gpus": 16})) == [listing.pk]


def test_window_must_lie_inside_the_listing_and_fit_min_hours():
    # given a listing open for 2 days from the next hour, minimum 4 hours
    provider = factories.ProviderFactory()
    start = factories.next_hour(1)
    listing = listing_of(provider, start=start, days=2, min_hours=4)

    def found(s, e):
        return ids(selectors.listing_search(filters={"start": s, "end": e})) == [listing.pk]

    # then windows inside it and long enough match; others do not
    assert found(start, start + dt.timedelta(hours=4))
    assert found(start + dt.timedelta(hours=44), start + dt.timedelta(hours=48))
    assert not found(start, start + dt.timedelta(hours=3))
    assert not found(start - dt.timedelta(hours=1), start + dt.timedelta(hours=5))
    assert not found(start + dt.timedelta(hours=45), start + dt.timedelta(hours=49))


def test_providers_also_see_their_own_listings_in_any_status(market):
    # given a member of the provider that owns the draft
    owner = factories.member_of(market["draft"].cluster.data_center.provider)
    stranger = factories.member_of(factories.ProviderFactory())
    # then the owner sees it (and with mine only their own); another provider does not
    assert market["draft"].pk in ids(selectors.listing_search(filters={}, user=owner))
    mine = ids(selectors.listing_search(filters={"mine": True}, user=owner))
    assert sorted(mine) == sorted([market[k].pk for k in ("a100_cd", "910b_cd", "draft")])
    assert market["draft"].pk not in ids(selectors.listing_search(filters={}, user=stranger))


def test_listings_past_their_window_are_hidden_from_search():
    provider = factories.ProviderFactory()
    listing_of(provider, start=factories.next_hour(-48), days=1)
    assert ids(selectors.listing_search(filters={})) == []


def test_daily_availability_counts_free_nodes_per_day():
    # given a 4-node listing from tomorrow 00:00 for 3 days; 2 nodes booked on day 2 for 2 hours
    provider = factories.ProviderFactory()
    today = factories.next_hour(0).date()
    day1 = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)
    listing = listing_of(provider, start=day1, days=3, nodes=4)
    reserve(listing, [1, 2], day1 + dt.timedelta(days=1, hours=10), day1 + dt.timedelta(days=1, hours=12))
    # when the timeline is computed for 5 days from today
    timeline = selectors.listing_daily_availability(listing, days=5, today=today)
    # then today and day 5 are outside the window; day 2 has 2 free nodes
    assert [d["free"] for d in timeline] == [0, 4, 2, 4, 0]
    assert timeline[1]["day"] == day1.date() and timeline[2]["percent"] == 50


def test_cluster_utilisation_is_booked_share_of_node_hours_per_day(django_assert_num_queries):
    # given a 2-node cluster with one node reserved 06:00–18:00 tomorrow, and a second, idle cluster
    provider = factories.ProviderFactory()
    today = factories.next_hour(0).date()
    day1 = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)
    busy = listing_of(provider, start=day1, days=3, nodes=2)
    idle = listing_of(provider, start=day1, days=3, nodes=3)
    reserve(busy, [1], day1 + dt.timedelta(hours=6), day1 + dt.timedelta(hours=18))
    clusters = [busy.cluster, idle.cluster]
    # when utilisation is computed for 3 days from today
    with django_assert_num_queries(1):
        rows = selectors.cluster_utilisation(clusters, days=3, today=today)
    # then tomorrow is 25 % booked (12 of 48 node-hours) and the day after 0 %; the idle cluster stays at 0
    assert [row["cluster"] for row in rows] == clusters
    assert rows[0]["days"] == [today, today + dt.timedelta(days=1), today + dt.timedelta(days=2)]
    assert rows[0]["percent"] == [Decimal("0.0"), Decimal("25.0"), Decimal("0.0")]
    assert rows[1]["percent"] == [Decimal("0.0")] * 3


def test_cluster_utilisation_ignores_released_reservations_and_clips_to_the_day():
    # given a reservation spanning midnight (18:00 → 06:00) and a cancelled one on the same node
    provider = factories.ProviderFactory()
    today = factories.next_hour(0).date()
    day1 = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)
    listing = listing_of(provider, start=day1, days=3, nodes=1)
    reserve(listing, [1], day1 + dt.timedelta(hours=18), day1 + dt.timedelta(hours=30))
    reserve(listing, [1], day1 + dt.timedelta(hours=1), day1 + dt.timedelta(hours=5), active=False)
    # when / then 6 h fall on each day; the cancelled booking counts for nothing
    rows = selectors.cluster_utilisation([listing.cluster], days=3, today=today + dt.timedelta(days=1))
    assert rows[0]["percent"] == [Decimal("25.0"), Decimal("25.0"), Decimal("0.0")]
    assert selectors.cluster_utilisation([], days=3) == []


def test_provider_page_draws_the_utilisation_chart():
    # given a provider with one cluster
    provider = factories.ProviderFactory()
    listing = listing_of(provider, nodes=2)
    client = Client()
    client.force_login(factories.member_of(provider))
    # when the provider page is shown
    page = client.get("/provider/")
    # then the canvas, its Chart.js config and the chart scripts are there, with no inline script
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-chart="config" data-source="utilisation-data"' in html
    config = json.loads(
        re.search(r'<script id="utilisation-data" type="application/json">(.*?)</script>', html, re.S).group(1)
    )
    assert config["type"] == "bar" and len(config["data"]["labels"]) == 14
    assert config["data"]["datasets"][0]["label"].startswith(listing.cluster.name)
    assert "js/charts.js" in html and "chart-4.6.1.umd.min.js" in html
