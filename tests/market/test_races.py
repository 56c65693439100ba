"""Concurrent runs of one day (a beat run and a backfill, a redelivered task) end with one row per group."""

from __future__ import annotations

import pytest

from market import services
from market.models import Fixing
from tests import factories
from tests.helpers import run_concurrently
from tests.market import factories as mf


@pytest.mark.django_db(transaction=True)
def test_one_day_computed_by_four_workers_at_once_keeps_one_row_set():
    # given yesterday's market of one chip in three cities
    day = services.last_closed_day()
    chip = factories.AcceleratorFactory()
    for n, city in enumerate(("Shanghai", "Beijing", "Hefei")):
        listing = mf.listing(
            cluster=mf.cluster(accelerator=chip, city=city),
            price=f"{6 + n}.00",
            start=mf.at(day, 0),
            end=mf.at(day, 48),
        )
        mf.booking(listing=listing, made=mf.at(day, 3), start=mf.at(day, 4), hours=6)
    # when four workers compute the day at the same moment
    results = run_concurrently(lambda: [f.pk for f in services.fixings_compute(day=day)], [()] * 4)
    # then none failed, all saw the same three rows, and the rows are the day's values
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert len({tuple(r) for r in results}) == 1 and len(results[0]) == 3
    assert Fixing.objects.filter(day=day).count() == 3
    expected = services.fixings_for_day(day)
    for row in Fixing.objects.filter(day=day):
        assert {name: getattr(row, name) for name in services.UPDATED_FIELDS} == expected[
            (row.accelerator_id, row.city)
        ]
