"""No main page makes more queries as the data grows: each is measured with 1,000 listings (and their bookings)."""

import datetime as dt

import pytest
from django.test import Client

from tests import factories
from tests.helpers import page_input
from tests.orders.factories import fund

MAX_QUERIES = 30


@pytest.fixture(scope="module")
def market(django_db_setup, django_db_blocker):
    """1,000 active listings of one provider, spread over chips and cities, plus a startup with bookings."""
    from django.core.management import call_command

    from listings.models import Listing
    from orders.services import booking_create

    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)
        from listings.catalog import load_catalog
        from listings.models import Accelerator

        load_catalog(Accelerator)
        provider = factories.ProviderFactory()
        chips = list(Accelerator.objects.all())
        cities = ["Shanghai", "Beijing", "Hangzhou", "Shenzhen", "Chengdu"]
        listings = []
        for i in range(1000):
            dc = factories.DataCenterFactory(provider=provider, city=cities[i % len(cities)])
            cluster = factories.ClusterFactory(data_center=dc, accelerator=chips[i % len(chips)], node_count=2)
            listings.append(factories.ListingFactory(cluster=cluster))
        startup = factories.StartupFactory()
        fund(startup, "10000000.00")
        start = factories.next_hour(3)
        for listing in listings[:40]:
            booking_create(buyer=startup, listing_id=listing.pk, nodes=1, start=start,
                           end=start + dt.timedelta(hours=2), confirm=True)
        users = {"startup": factories.member_of(startup), "provider": factories.member_of(provider),
                 "staff": factories.member_of(factories.PlatformFactory()),
                 "auditor": factories.member_of(factories.PlatformFactory(), role="auditor")}
        yield {"users": users, "listing": Listing.objects.order_by("pk").first()}
        call_command("flush", interactive=False, verbosity=0)
        load_catalog(Accelerator)  # what the data migration put there, for the tests that follow


def window_query() -> str:
    start = factories.next_hour(4)
    return f"start={page_input(start)}&end={page_input(start + dt.timedelta(hours=3))}"


PAGES = [
    ("startup", "/"),
    ("startup", "/listings/"),
    ("startup", "/listings/?city=Shanghai&{window}"),
    ("startup", "/listings/{listing}/"),
    ("startup", "/listings/{listing}/book/"),
    ("startup", "/bookings/"),
    ("startup", "/bids/"),
    ("startup", "/market/"),
    ("startup", "/wallet/"),
    ("startup", "/vouchers/"),
    ("startup", "/vouchers/programs/"),
    ("provider", "/"),
    ("provider", "/provider/"),
    ("provider", "/payouts/"),
    ("staff", "/"),
    ("staff", "/review/"),
    ("staff", "/deposits/"),
    ("staff", "/payouts/"),
    ("auditor", "/audit/"),
    ("auditor", "/audit/events/"),
    ("auditor", "/audit/flags/"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("who", "path"), PAGES)
def test_main_pages_make_a_fixed_number_of_queries(market, who, path, django_assert_max_num_queries):
    client = Client()
    client.force_login(market["users"][who])
    url = path.format(listing=market["listing"].pk, window=window_query())
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
