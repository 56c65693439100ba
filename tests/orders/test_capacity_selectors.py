"""Capacity use: listed vs booked node-hours (the idle-capacity view) and each cluster's 7-day utilisation, and the
vouchers' idle-capacity rule applied to a real booking with that fact."""

import datetime as dt
import itertools
from decimal import Decimal as D  # noqa: N817

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from listings.models import Listing
from orders import bid_services, capacity_selectors, pricing, services
from tests import factories
from tests.listings.factories import reserve
from tests.orders.factories import booking_body, booking_kwargs, fund, funded_startup
from tests.vouchers.factories import funded_program, issued_voucher

pytestmark = pytest.mark.django_db


def hour_now() -> dt.datetime:
    return timezone.now().astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def listed_for_the_past_week(*, nodes: int = 2, **kwargs) -> Listing:
    """An active listing of a ``nodes``-node cluster open from 8 days ago to 30 days ahead."""
    start = hour_now() - dt.timedelta(days=8)
    return factories.ListingFactory(
        cluster=factories.ClusterFactory(node_count=nodes, **kwargs),
        available_from=start,
        available_until=start + dt.timedelta(days=38),
    )


# --- 7-day utilisation -----------------------------------------------------------------------------------------


def test_recent_utilisation_is_booked_share_of_listed_node_hours(django_assert_num_queries):
    # given a 2-node cluster listed all week with one node booked 84 h of the last 7 days (and 10 h before them)
    busy = listed_for_the_past_week(nodes=2)
    week_start, week_end = capacity_selectors.recent_window(timezone.now())
    reserve(busy, [1], week_start - dt.timedelta(hours=10), week_start + dt.timedelta(hours=84))
    reserve(busy, [2], week_start, week_end, active=False)  # a cancelled booking counts for nothing
    # an idle cluster listed all week, and a cluster listed only from now on
    idle = listed_for_the_past_week(nodes=3)
    new = factories.ListingFactory()
    clusters = [busy.cluster, idle.cluster, new.cluster]
    # when
    with django_assert_num_queries(2):
        utilisation = capacity_selectors.recent_utilisation(clusters, now=timezone.now())
    # then 84 of 2 × 168 node-hours = 25 %; the idle one 0; the new one unknown
    assert utilisation == {busy.cluster_id: D("0.2500"), idle.cluster_id: D("0"), new.cluster_id: None}


def test_recent_utilisation_counts_only_the_listed_part_of_the_week():
    # given a 1-node cluster listed only for the last 2 days (48 node-hours), booked 12 h of them
    now = hour_now()
    listing = factories.ListingFactory(
        cluster=factories.ClusterFactory(node_count=1),
        available_from=now - dt.timedelta(days=2),
        available_until=now + dt.timedelta(days=5),
    )
    # a second, overlapping listing of the same cluster counts once
    factories.ListingFactory(
        cluster=listing.cluster, available_from=now - dt.timedelta(days=1), available_until=now + dt.timedelta(days=1)
    )
    reserve(listing, [1], now - dt.timedelta(hours=12), now)
    # when / then
    assert capacity_selectors.recent_utilisation([listing.cluster], now=now) == {listing.cluster_id: D("0.2500")}
    assert capacity_selectors.recent_utilisation([], now=now) == {}


# --- idle capacity of a city -------------------------------------------------------------------------------------


def test_idle_capacity_sums_listed_and_booked_node_hours_by_accelerator_and_provider(django_assert_num_queries):
    # given, in Hefei, a provider with two 2-node Ascend clusters listed for the first 2 days, one of them booked
    # 6 h on day 1; another Hefei provider's draft listing; and a Shanghai cluster (another city)
    first = hour_now() + dt.timedelta(hours=1)
    provider = factories.ProviderFactory(city="Hefei")
    chip = factories.AcceleratorFactory(slug="ascend-idle-test", domestic=True)
    listings = [
        factories.ListingFactory(
            cluster=factories.ClusterFactory(data_center__provider=provider, accelerator=chip, node_count=2),
            available_from=first,
            available_until=first + dt.timedelta(days=2),
        )
        for _ in range(2)
    ]
    reserve(listings[0], [1], first + dt.timedelta(hours=2), first + dt.timedelta(hours=8))
    factories.ListingFactory(
        cluster__data_center__provider=factories.ProviderFactory(city="Hefei"), status=Listing.Status.DRAFT
    )
    factories.ListingFactory(cluster__data_center__provider=factories.ProviderFactory(city="Shanghai"))
    # when the next 3 days are read
    with django_assert_num_queries(3):
        view = capacity_selectors.idle_capacity(city="Hefei", first=first, days=3)
    # then one row: 2 clusters × 2 nodes × 24 h listed on days 1 and 2, 6 node-hours booked on day 1
    assert view["days"] == [first, first + dt.timedelta(days=1), first + dt.timedelta(days=2)]
    (row,) = view["rows"]
    assert (row["accelerator"], row["provider_id"], row["domestic"]) == ("ascend-idle-test", provider.pk, True)
    assert row["listed"] == [D("96.0"), D("96.0"), D("0.0")]
    assert row["booked"] == [D("6.0"), D("0.0"), D("0.0")]
    assert row["idle"] == [D("90.0"), D("96.0"), D("0.0")]
    assert (row["listed_total"], row["booked_total"], row["idle_total"]) == (D("192.0"), D("6.0"), D("186.0"))
    assert row["utilisation_percent"] == D("3.1")
    assert view["totals"]["listed"] == row["listed"] and view["totals"]["idle_total"] == D("186.0")


def test_idle_capacity_of_a_city_without_clusters_is_empty():
    view = capacity_selectors.idle_capacity(city="Hefei", first=hour_now(), days=14)
    assert view["rows"] == [] and view["totals"]["listed"] == [D(0)] * 14
    assert view["totals"]["utilisation_percent"] is None


# --- the vouchers' idle-capacity rule on real bookings ---------------------------------------------------------


@pytest.fixture
def idle_program():
    """30 % on domestic chips, 10 % more on clusters used below 30 % over the last 7 days."""
    return funded_program(idle_threshold_percent=D("30"), idle_extra_ratio=D("0.1"))


_chips = itertools.count()


def _domestic_listing() -> Listing:
    chip = factories.AcceleratorFactory(slug=f"ascend-idle-{next(_chips)}", domestic=True)
    return listed_for_the_past_week(nodes=4, accelerator=chip)


def test_a_booking_on_an_under_used_cluster_gets_the_extra_ratio_and_a_busy_one_does_not(idle_program):
    # given an idle cluster and one fully booked over the last 7 days, both listed all week at 10.00 per GPU-hour
    idle, busy = _domestic_listing(), _domestic_listing()
    week_start, week_end = capacity_selectors.recent_window(timezone.now())
    reserve(busy, [1, 2, 3, 4], week_start, week_end)
    startup = factories.StartupFactory()
    fund(startup, "10000.00")
    voucher = issued_voucher(holder=startup, program=idle_program, face_value="100000.00")
    # when the startup books 1 node for 3 h on each (8 GPUs × 3 h × 10.00 = 240.00)
    on_idle = services.booking_create(buyer=startup, **booking_kwargs(idle, vouchers=[voucher.pk]))
    on_busy = services.booking_create(buyer=startup, **booking_kwargs(busy, vouchers=[voucher.pk]))
    # then the idle cluster's booking is paid 40 % by the voucher, the busy one's 30 %
    assert (on_idle.voucher_amount, on_idle.cash_amount) == (D("96.00"), D("144.00"))
    assert (on_busy.voucher_amount, on_busy.cash_amount) == (D("72.00"), D("168.00"))


def test_quote_and_net_price_search_apply_the_extra_ratio_on_an_idle_cluster(idle_program, startup_client):
    # given an idle cluster listed all week and a voucher of the startup
    startup = startup_client.user.memberships.get().organization
    listing = _domestic_listing()
    voucher = issued_voucher(holder=startup, program=idle_program, face_value="100000.00")
    # when quoting through the API
    response = startup_client.post("/api/v1/quotes/", booking_body(listing, vouchers=[voucher.pk]), format="json")
    # then the part is 40 % of 240.00, bound by the coverage ratio
    assert response.status_code == 200, response.data
    (part,) = response.data["voucher_parts"]
    assert (part["amount"], part["rule"]) == ("96.00", "coverage_ratio")
    # and net-price search reads the same fact: 10.00 less 40 %
    pricer = pricing.NetPricer(buyer=startup, vouchers=[voucher], listing_ids=[listing.pk])
    assert pricer.net_price(listing.pk, price=D("10"), gpu_hours=24) == D("6")


def test_matching_reads_the_utilisation_once_for_every_voucher_bid(idle_program):
    # given an idle cluster listed all week, and two startups' open bids naming vouchers of the idle program
    listing = Listing.objects.select_related("cluster").get(pk=_domestic_listing().pk)
    bids = []
    for _ in range(2):
        buyer = funded_startup("1000.00")
        voucher = issued_voucher(holder=buyer, program=idle_program)
        bids.append(
            bid_services.bid_place(
                buyer=buyer,
                accelerators=[listing.cluster.accelerator.slug],
                nodes=1,
                duration_hours=3,
                earliest_start=factories.next_hour(2),
                latest_end=factories.next_hour(8),
                max_price_per_gpu_hour=D("12"),
                vouchers=[voucher.pk],
            )
        )
    accelerators = {bid.pk: [listing.cluster.accelerator_id] for bid in bids}
    # when matching prices the listing for both bids
    with CaptureQueriesContext(connection) as queries:
        tables = bid_services.net_price_tables(bids, [listing], accelerators)
    # then each pays 10.00 less 40 % per GPU-hour, and the cluster's 7-day utilisation was read once for both
    assert tables == {bid.pk: {listing.pk: D("6")} for bid in bids}
    reads = [q["sql"] for q in queries.captured_queries if "upper(r.period * b.span)" in q["sql"]]
    assert len(reads) == 1, reads
