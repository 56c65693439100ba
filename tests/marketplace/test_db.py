"""The database connection: server-side binding, and statements longer than its 65,535-parameter limit."""

import pytest
from django.db import connection

from listings.models import Listing
from marketplace.core.db import MAX_BIND_PARAMETERS, ServerBindingCursorWithoutLimit
from tests.factories import ListingFactory

pytestmark = pytest.mark.django_db


def test_the_connection_binds_on_the_server_and_prepares_repeated_statements():
    # when
    with connection.cursor() as cursor:
        raw = cursor.cursor
        for _ in range(6):
            cursor.execute("SELECT %s::int + 1", [41])
        (answer,) = cursor.fetchone()
    # then: a statement run more often than the threshold is prepared on the connection
    assert isinstance(raw, ServerBindingCursorWithoutLimit)
    assert answer == 42
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["SELECT $1::int + 1%"])
        assert cursor.fetchone()[0] == 1


def test_a_long_in_list_beyond_the_parameter_limit_still_runs():
    # given one listing, and 70,000 ids to look it up among
    listing = ListingFactory()
    ids = [listing.pk, *range(10**9, 10**9 + 70_000)]
    assert len(ids) > MAX_BIND_PARAMETERS
    # when
    found = list(Listing.objects.filter(pk__in=ids).values_list("pk", flat=True))
    # then
    assert found == [listing.pk]


def test_a_bulk_create_beyond_the_parameter_limit_still_runs():
    # given 8,000 listings of a cluster to add at once: VALUES rows of 9 parameters each (their database-default
    # columns keep Django from sending UNNEST arrays, as it does for simpler models)
    template = ListingFactory()
    listings = [Listing(cluster=template.cluster, price_per_gpu_hour=template.price_per_gpu_hour,
                        available_from=template.available_from, available_until=template.available_until,
                        status=Listing.Status.DRAFT) for _ in range(8_000)]
    # when
    Listing.objects.bulk_create(listings)
    # then
    assert Listing.objects.filter(cluster=template.cluster, status=Listing.Status.DRAFT).count() == 8_000
