"""The price index recomputed from the raw rows by an independent method (hour by hour, plain sorting) matches
what ``fixings_compute`` stored; a day computed twice keeps one identical row set."""

from __future__ import annotations

import datetime as dt
import random
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from listings.models import Listing
from market import services
from market.models import Fixing
from orders.models import Booking, NodeReservation
from tests import factories
from tests.market import factories as mf

pytestmark = pytest.mark.django_db

FIELDS = services.UPDATED_FIELDS
Q4 = Decimal("0.0001")


def stored(day: dt.date) -> dict[tuple[int, str], dict]:
    return {
        (f.accelerator_id, f.city): {name: getattr(f, name) for name in FIELDS} for f in Fixing.objects.filter(day=day)
    }


def expected_fixings(day: dt.date) -> dict[tuple[int, str], dict]:
    """The index of ``day`` from the raw rows, computed hour by hour (every window here is whole hours)."""
    hours = [mf.at(day, h) for h in range(24)]
    start, end = hours[0], hours[0] + dt.timedelta(days=1)
    approved = {int(e.object_id) for e in AuditEvent.objects.filter(action="listings.listing_approved")}
    offered = [
        listing
        for listing in Listing.objects.select_related("cluster__data_center")
        if listing.available_from < end
        and listing.available_until > start
        and (
            listing.status == "active"
            or (listing.status == "closed" and listing.pk in approved and listing.updated_at > start)
        )
    ]
    trades = [
        b
        for b in Booking.objects.select_related("listing__cluster__data_center").filter(
            status__in=["confirmed", "active", "completed", "settled"]
        )
        if start <= b.created_at < end
    ]
    keys = {(x.cluster.accelerator_id, x.cluster.data_center.city) for x in offered} | {
        (b.listing.cluster.accelerator_id, b.listing.cluster.data_center.city) for b in trades
    }
    result = {}
    for key in keys:
        asks = [x for x in offered if (x.cluster.accelerator_id, x.cluster.data_center.city) == key]
        deals = [b for b in trades if (b.listing.cluster.accelerator_id, b.listing.cluster.data_center.city) == key]
        prices = sorted(x.price_per_gpu_hour for x in asks)
        cut = len(prices) // 10  # 10 % off each end
        kept = prices[cut : len(prices) - cut]
        clusters = {x.cluster_id: x.cluster for x in asks}
        listed_hours = {  # cluster → the hours of the day one of its asks covers
            cid: {h for h in hours for x in asks if x.cluster_id == cid and x.available_from <= h < x.available_until}
            for cid in clusters
        }
        listed = sum(clusters[cid].node_count * len(listed_hours[cid]) for cid in clusters)
        reserved = sum(
            1
            for r in NodeReservation.objects.filter(active=True, node__cluster_id__in=list(clusters)).select_related(
                "node"
            )
            for h in hours
            if r.period.lower <= h < r.period.upper and h in listed_hours[r.node.cluster_id]
        )
        gpu_hours = sum(b.gpu_hours for b in deals)
        result[key] = {
            "vwap": (
                (sum(b.price_per_gpu_hour * b.gpu_hours for b in deals) / gpu_hours).quantize(Q4, ROUND_HALF_UP)
                if gpu_hours
                else None
            ),
            "trades": len(deals),
            "fills": sum(1 for b in deals if hasattr(b, "bid")),
            "traded_gpu_hours": gpu_hours,
            "ask_mean": (sum(kept) / len(kept)).quantize(Q4, ROUND_HALF_UP) if kept else None,
            "asks": len(asks),
            "listed_nodes": sum(c.node_count for c in clusters.values()),
            "listed_gpus": sum(c.node_count * c.gpus_per_node for c in clusters.values()),
            "listed_node_hours": Decimal(listed),
            "reserved_node_hours": Decimal(reserved),
            "utilisation": (Decimal(reserved) / Decimal(listed)).quantize(Q4, ROUND_HALF_UP) if listed else None,
        }
    return result


@pytest.fixture
def market_day():
    """Three days ago (UTC) with a busy market: two chips in two cities, a dozen asks of one chip in Shanghai
    (trimmed), windows starting and ending inside the day, asks that do not count (draft, paused, closed without
    approval, outside the day), bookings made that day in every status, bid fills, reservations from earlier
    bookings spilling into the day and released ones."""
    rng = random.Random(21)
    day = timezone.now().astimezone(dt.UTC).date() - dt.timedelta(days=3)
    chips = [factories.AcceleratorFactory(), factories.AcceleratorFactory()]
    for chip in chips:
        for city, clusters in (("Shanghai", 12), ("Beijing", 3)):
            for _ in range(clusters if chip is chips[0] else 2):
                cluster = mf.cluster(accelerator=chip, city=city, nodes=rng.choice([4, 8]), gpus=rng.choice([8, 16]))
                opens, closes = rng.choice([-48, -5, 0, 3, 10]), rng.choice([14, 20, 24, 30, 200])
                price = f"{rng.randint(500, 3000) / 100:.2f}"
                ask = mf.listing(cluster=cluster, price=price, start=mf.at(day, opens), end=mf.at(day, closes))
                if rng.random() < 0.3:  # a second ask of the same cluster overlapping the first
                    mf.listing(cluster=cluster, price=price, start=mf.at(day, opens + 2), end=mf.at(day, closes + 3))
                for node, (made_hour, status) in enumerate(
                    ((-30, "settled"), (2, "confirmed"), (7, "active"), (9, "cancelled")), start=1
                ):
                    if rng.random() < 0.6:
                        mf.booking(
                            listing=ask,
                            made=mf.at(day, made_hour),
                            start=mf.at(day, rng.choice([-4, 1, 6, 20])),
                            hours=rng.choice([2, 5, 12]),
                            nodes=1,
                            first_node=node,  # a node of its own: reservations never overlap
                            status=status,
                            filled_bid=rng.random() < 0.5,
                        )
    beijing = mf.cluster(accelerator=chips[1], city="Beijing")
    mf.listing(cluster=beijing, price="99.00", start=mf.at(day, 0), end=mf.at(day, 24), status="draft")
    mf.listing(cluster=beijing, price="98.00", start=mf.at(day, 0), end=mf.at(day, 24), status="paused")
    mf.listing(cluster=beijing, price="97.00", start=mf.at(day, 0), end=mf.at(day, 24), status="closed")
    mf.listing(cluster=beijing, price="96.00", start=mf.at(day, 24), end=mf.at(day, 48))
    approved = mf.listing(cluster=beijing, price="20.00", start=mf.at(day, -24), end=mf.at(day, 12), status="closed")
    audit_record(action="listings.listing_approved", obj=approved, data={"from": "pending_review", "to": "active"})
    # a city where the only trade of the day was a hold (not a trade) and nothing was listed: no fixing
    held_only = mf.listing(
        cluster=mf.cluster(accelerator=chips[0], city="Wuhan"), price="9.00", start=mf.at(day, 30), end=mf.at(day, 60)
    )
    mf.booking(listing=held_only, made=mf.at(day, 3), start=mf.at(day, 40), hours=2, status="held")
    return day


def test_fixings_recomputed_from_the_raw_rows_match_the_stored_ones(market_day):
    # when the day is computed
    rows = services.fixings_compute(day=market_day)
    # then every (accelerator, city) with an ask or a trade has one row, equal to the independent recomputation
    expected = expected_fixings(market_day)
    assert len(rows) == len(expected) == 4
    assert stored(market_day) == expected
    shanghai = next(v for (_, city), v in expected.items() if city == "Shanghai" and v["asks"] >= 10)
    assert shanghai["ask_mean"] is not None and shanghai["trades"] > 0 and shanghai["fills"] > 0  # the data exercised
    assert all(0 < v["utilisation"] <= 1 for v in expected.values())


def test_a_day_computed_twice_keeps_one_identical_row_set(market_day):
    # given the day computed once
    first = {f.pk: {name: getattr(f, name) for name in ["day", "accelerator_id", "city", *FIELDS]}
             for f in services.fixings_compute(day=market_day)}  # fmt: skip
    # when it is computed again (the daily job's rerun, a backfill)
    second = {f.pk: {name: getattr(f, name) for name in ["day", "accelerator_id", "city", *FIELDS]}
              for f in services.fixings_compute(day=market_day)}  # fmt: skip
    # then the same rows, same ids, same values, and nothing else for that day
    assert first == second and Fixing.objects.filter(day=market_day).count() == len(first) == 4


def test_a_recomputed_day_follows_the_raw_rows_and_drops_groups_without_data(market_day):
    # given the day computed, then every Beijing trade of that day cancelled and Beijing's asks closed before it
    services.fixings_compute(day=market_day)
    start, end = services.day_bounds(market_day)
    Booking.objects.filter(listing__city="Beijing", created_at__gte=start, created_at__lt=end).update(
        status="cancelled"
    )
    Listing.objects.filter(city="Beijing").update(status="closed", updated_at=start - dt.timedelta(hours=1))
    # when it is computed again
    services.fixings_compute(day=market_day)
    # then Beijing's rows are gone and the rest still match the raw rows
    assert not Fixing.objects.filter(day=market_day, city="Beijing").exists()
    assert stored(market_day) == expected_fixings(market_day)


def test_trimmed_mean_cuts_a_tenth_off_each_end():
    prices = [Decimal(p) for p in ["1", "2", "3", "4", "5", "6", "7", "8", "9", "100"]]
    assert services.trimmed_mean(prices) == Decimal("5.5000")  # 1 and 100 cut
    assert services.trimmed_mean(prices[:9]) == Decimal("5.0000")  # 9 asks: nothing cut
    assert services.trimmed_mean([]) is None


def test_backfill_computes_each_day_oldest_first(market_day):
    # when three days around the market day are backfilled
    seen = []
    total = services.fixings_backfill(
        days=3, until=market_day + dt.timedelta(days=1), progress=lambda day, rows: seen.append((day, rows))
    )
    # then each day once, oldest first, and the rows written add up
    assert [day for day, _ in seen] == [market_day + dt.timedelta(days=n) for n in (-1, 0, 1)]
    assert total == sum(rows for _, rows in seen) == Fixing.objects.count()
    assert dict(seen)[market_day] == 4
