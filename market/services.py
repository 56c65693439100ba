"""Writes of the price index: ``fixings_compute`` (one UTC day, idempotent) and ``fixings_backfill`` (several).

A day's fixings are computed from the raw rows only (bookings, listings, node reservations), so recomputing a day
gives the same rows; they are upserted on (day, accelerator, city) and the day's rows that no longer have data are
deleted, in one transaction: running a day twice leaves one identical row set.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEvent
from listings.models import Listing
from market.models import Fixing
from marketplace.core.money import to_price
from orders.models import Booking, NodeReservation

# Bookings that are trades: confirmed or later (a hold is not a trade yet; cancelled and expired ones never were).
TRADED = (Booking.Status.CONFIRMED, Booking.Status.ACTIVE, Booking.Status.COMPLETED, Booking.Status.SETTLED)
# The share of asks cut off each end (by price) before the ask mean: ⌊n × TRIM_SHARE⌋ of the cheapest and dearest.
TRIM_SHARE = Decimal("0.10")
HOURS = Decimal(3600)
UTILISATION_QUANTUM = Decimal("0.0001")
NODE_HOUR_QUANTUM = Decimal("0.01")
UPDATED_FIELDS = list(Fixing.FIGURES)


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """``[00:00, 24:00)`` UTC of ``day``."""
    start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def trimmed_mean(prices: list[Decimal], share: Decimal = TRIM_SHARE) -> Decimal | None:
    """The mean of ``prices`` without the ⌊n × share⌋ lowest and highest, to 4 places; None for no prices."""
    if not prices:
        return None
    ordered = sorted(prices)
    cut = int(len(ordered) * share)
    kept = ordered[cut : len(ordered) - cut]
    return to_price(sum(kept, Decimal(0)) / len(kept))


def _union(intervals: list[tuple[dt.datetime, dt.datetime]]) -> list[tuple[dt.datetime, dt.datetime]]:
    merged: list[list[dt.datetime]] = []
    for lower, upper in sorted(intervals):
        if merged and lower <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], upper)
        else:
            merged.append([lower, upper])
    return [(lower, upper) for lower, upper in merged]


def _overlap_seconds(lower: dt.datetime, upper: dt.datetime, spans: list[tuple[dt.datetime, dt.datetime]]) -> float:
    return sum(max(0.0, (min(upper, b) - max(lower, a)).total_seconds()) for a, b in spans)


def _offered_listings(start: dt.datetime, end: dt.datetime) -> list[Listing]:
    """Listings offered in ``[start, end)``: their window overlaps it and they are active, or closed after ``start``
    having been approved (the sweep closes a listing when its window ends; a closed draft was never offered)."""
    overlapping = Listing.objects.filter(available_from__lt=end, available_until__gt=start)
    closed = list(overlapping.filter(status=Listing.Status.CLOSED, updated_at__gt=start).values_list("pk", flat=True))
    approved = set(
        AuditEvent.objects.filter(
            object_type=Listing._meta.label_lower,
            action="listings.listing_approved",
            object_id__in=[str(pk) for pk in closed],
        ).values_list("object_id", flat=True)
    )
    return list(
        overlapping.filter(Q(status=Listing.Status.ACTIVE) | Q(pk__in=[int(pk) for pk in approved]))
        .select_related("cluster")
        .order_by("pk")
    )


def fixings_for_day(day: dt.date) -> dict[tuple[int, str], dict]:
    """The fixings of ``day`` (not stored): ``{(accelerator id, city): field values}`` for every accelerator and
    city with a trade or an ask that day."""
    start, end = day_bounds(day)
    groups: dict[tuple[int, str], dict] = defaultdict(
        lambda: {"notional": Decimal(0), "trades": 0, "fills": 0, "gpu_hours": 0, "prices": [], "clusters": {}}
    )
    trades = Booking.objects.filter(created_at__gte=start, created_at__lt=end, status__in=TRADED).values_list(
        "listing__accelerator_id", "listing__city", "price_per_gpu_hour", "gpu_hours", "bid__id"
    )
    for accelerator_id, city, price, gpu_hours, bid_id in trades:
        group = groups[(accelerator_id, city)]
        group["notional"] += price * gpu_hours
        group["gpu_hours"] += gpu_hours
        group["trades"] += 1
        group["fills"] += bid_id is not None
    for listing in _offered_listings(start, end):
        group = groups[(listing.accelerator_id, listing.city)]
        group["prices"].append(listing.price_per_gpu_hour)
        windows = group["clusters"].setdefault(listing.cluster_id, (listing.cluster, []))[1]
        windows.append((max(listing.available_from, start), min(listing.available_until, end)))
    listed = {cid: _union(windows) for group in groups.values() for cid, (_, windows) in group["clusters"].items()}
    reserved: dict[int, float] = defaultdict(float)
    if listed:
        periods = NodeReservation.objects.filter(
            active=True, cluster_id__in=list(listed), period__overlap=(start, end)
        ).values_list("cluster_id", "period")
        for cluster_id, period in periods:
            reserved[cluster_id] += _overlap_seconds(period.lower, period.upper, listed[cluster_id])
    fixings = {}
    for key, group in groups.items():
        clusters = group["clusters"]
        listed_seconds = sum(
            cluster.node_count * _overlap_seconds(start, end, listed[cid]) for cid, (cluster, _) in clusters.items()
        )
        reserved_seconds = sum(reserved[cid] for cid in clusters)
        fixings[key] = {
            "vwap": to_price(group["notional"] / group["gpu_hours"]) if group["gpu_hours"] else None,
            "trades": group["trades"],
            "fills": group["fills"],
            "traded_gpu_hours": group["gpu_hours"],
            "ask_mean": trimmed_mean(group["prices"]),
            "asks": len(group["prices"]),
            "listed_nodes": sum(cluster.node_count for cluster, _ in clusters.values()),
            "listed_gpus": sum(cluster.node_count * cluster.gpus_per_node for cluster, _ in clusters.values()),
            "listed_node_hours": _node_hours(listed_seconds),
            "reserved_node_hours": _node_hours(reserved_seconds),
            "utilisation": (
                (Decimal(reserved_seconds) / Decimal(listed_seconds)).quantize(
                    UTILISATION_QUANTUM, rounding=ROUND_HALF_UP
                )
                if listed_seconds
                else None
            ),
        }
    return fixings


def _node_hours(node_seconds: float) -> Decimal:
    return (Decimal(node_seconds) / HOURS).quantize(NODE_HOUR_QUANTUM, rounding=ROUND_HALF_UP)


@transaction.atomic
def fixings_compute(*, day: dt.date) -> list[Fixing]:
    """Compute and store the fixings of ``day`` (UTC): upsert one row per (day, accelerator, city) with data and
    delete the day's rows without. Idempotent; returns the day's rows."""
    computed = fixings_for_day(day)
    rows = [
        Fixing(day=day, accelerator_id=accelerator_id, city=city, **values)
        for (accelerator_id, city), values in sorted(computed.items())
    ]
    if rows:
        Fixing.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["day", "accelerator", "city"],
            update_fields=UPDATED_FIELDS,
        )
    Fixing.objects.filter(day=day).exclude(pk__in=[row.pk for row in rows]).delete()  # groups without data now
    return list(Fixing.objects.filter(day=day).order_by("accelerator_id", "city"))


def last_closed_day(now: dt.datetime | None = None) -> dt.date:
    """Yesterday in UTC: the newest day that is over."""
    return (now or timezone.now()).astimezone(dt.UTC).date() - dt.timedelta(days=1)


def fixings_backfill(
    *, days: int, until: dt.date | None = None, progress: Callable[[dt.date, int], None] | None = None
) -> int:
    """Compute the fixings of the ``days`` days up to and including ``until`` (default: yesterday, UTC), oldest
    first, one transaction per day; ``progress(day, rows)`` after each. Returns the number of rows written."""
    until = until or last_closed_day()
    total = 0
    for offset in range(days - 1, -1, -1):
        day = until - dt.timedelta(days=offset)
        rows = len(fixings_compute(day=day))
        total += rows
        if progress:
            progress(day, rows)
    return total
