"""Reads about capacity use: listed vs booked node-hours of clusters (the idle-capacity view for cities) and each
cluster's utilisation over the last 7 days (a fact of the vouchers' idle-capacity rule).

Definitions, one for both:

    listed node-hours  = the cluster's node count × the hours of the bucket covered by its listings' windows (the
                         union, so overlapping listings of one cluster count once)
    booked node-hours  = the summed overlap of the cluster's active node reservations with the bucket
    utilisation        = booked ÷ listed (at most 1); unknown (None) when nothing was listed

Which listings count: for the days ahead, those on offer (``active``); for the past week, those that were
published (``active``, ``paused``, or ``closed`` — a listing is closed when its window ends).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

from listings.models import Cluster, Listing
from orders import sql

ONE = Decimal(1)
HOUR = Decimal(3600)
UTILISATION_PLACES = Decimal("0.0001")
NODE_HOUR_PLACES = Decimal("0.1")
RECENT_DAYS = 7
LISTED_AHEAD = (Listing.Status.ACTIVE,)
LISTED_BEFORE = (Listing.Status.ACTIVE, Listing.Status.PAUSED, Listing.Status.CLOSED)

Window = tuple[dt.datetime, dt.datetime]


def _merged(windows: Iterable[Window]) -> list[Window]:
    """The union of ``windows`` as sorted, disjoint windows."""
    merged: list[Window] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _covered_seconds(windows: list[Window], start: dt.datetime, end: dt.datetime) -> Decimal:
    """Seconds of ``[start, end)`` covered by the disjoint ``windows``."""
    total = 0.0
    for w_start, w_end in windows:
        overlap = (min(w_end, end) - max(w_start, start)).total_seconds()
        if overlap > 0:
            total += overlap
    return Decimal(int(total))


def _listing_windows(cluster_ids, *, start: dt.datetime, end: dt.datetime, statuses) -> dict[int, list[Window]]:
    """``{cluster id: merged windows}`` of the listings in ``statuses`` of those clusters overlapping ``[start, end)``
    (one query)."""
    windows: dict[int, list[Window]] = {}
    rows = Listing.objects.filter(
        cluster_id__in=list(cluster_ids), status__in=statuses, available_from__lt=end, available_until__gt=start
    ).values_list("cluster_id", "available_from", "available_until")
    for cluster_id, available_from, available_until in rows:
        windows.setdefault(cluster_id, []).append((available_from, available_until))
    return {cluster_id: _merged(ws) for cluster_id, ws in windows.items()}


def recent_window(now: dt.datetime) -> Window:
    """The 7 days the utilisation is measured over: up to ``now``'s whole hour (stable within the hour)."""
    end = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return end - dt.timedelta(days=RECENT_DAYS), end


def recent_utilisation(clusters: Iterable[Cluster], *, now: dt.datetime) -> dict[int, Decimal | None]:
    """``{cluster id: utilisation over the last 7 days}`` (a share in [0, 1], 4 places; None when nothing was
    listed then) for ``clusters`` (rows with ``node_count``). At most two queries whatever their number; none for
    none."""
    clusters = {cluster.pk: cluster for cluster in clusters}
    if not clusters:
        return {}
    start, end = recent_window(now)
    windows = _listing_windows(clusters, start=start, end=end, statuses=LISTED_BEFORE)
    reserved = (
        {
            cluster_id: Decimal(seconds)
            for cluster_id, _, seconds in sql.reserved_node_seconds(
                cluster_ids=list(windows), first=start, step=end - start, steps=1
            )
        }
        if windows
        else {}
    )
    out: dict[int, Decimal | None] = {}
    for cluster_id, cluster in clusters.items():
        listed = cluster.node_count * _covered_seconds(windows.get(cluster_id, []), start, end)
        if not listed:
            out[cluster_id] = None
            continue
        share = min(reserved.get(cluster_id, Decimal(0)) / listed, ONE)
        out[cluster_id] = share.quantize(UTILISATION_PLACES, rounding=ROUND_HALF_UP)
    return out


def _node_hours(seconds: Decimal) -> Decimal:
    return (seconds / HOUR).quantize(NODE_HOUR_PLACES, rounding=ROUND_HALF_UP)


def idle_capacity(*, city: str, first: dt.datetime, days: int = 14) -> dict:
    """Listed vs booked node-hours of the clusters of data centres in ``city`` for ``days`` days from ``first`` (an
    aware datetime, the reader's local midnight), by accelerator and provider::

        {"city", "start", "end", "days": [first of each day, ...],
         "rows": [{"accelerator", "accelerator_name", "domestic", "provider_id", "provider",
                   "listed": [node-hours per day], "booked": [...], "idle": [...],
                   "listed_total", "booked_total", "idle_total", "utilisation_percent" (None when nothing listed)}],
         "totals": {"listed": [...], "booked": [...], "idle": [...], "listed_total", ...}}

    ``idle`` = listed − booked, never below 0. Rows are sorted by accelerator then provider; groups with nothing
    listed or booked are left out. Days are 24 h from ``first`` (computed in UTC, as the SQL buckets). Three
    queries."""
    first = first.astimezone(dt.UTC)
    step = dt.timedelta(days=1)
    end = first + days * step
    starts = [first + i * step for i in range(days)]
    clusters = {
        c.pk: c
        for c in Cluster.objects.filter(data_center__city=city).select_related("accelerator", "data_center__provider")
    }
    windows = _listing_windows(clusters, start=first, end=end, statuses=LISTED_AHEAD) if clusters else {}
    reserved: dict[tuple[int, dt.datetime], Decimal] = {}
    if clusters:
        for cluster_id, start, seconds in sql.reserved_node_seconds(
            cluster_ids=list(clusters), first=first, step=step, steps=days
        ):
            reserved[cluster_id, start] = Decimal(seconds)
    groups: dict[tuple, dict] = {}
    for cluster in clusters.values():
        accelerator, provider = cluster.accelerator, cluster.data_center.provider
        key = (accelerator.slug, provider.name, provider.pk)
        group = groups.setdefault(
            key,
            {
                "accelerator": accelerator.slug,
                "accelerator_name": accelerator.name,
                "domestic": accelerator.domestic,
                "provider_id": provider.pk,
                "provider": provider.name,
                "listed_seconds": [Decimal(0)] * days,
                "booked_seconds": [Decimal(0)] * days,
            },
        )
        cluster_windows = windows.get(cluster.pk, [])
        for i, start in enumerate(starts):
            group["listed_seconds"][i] += cluster.node_count * _covered_seconds(cluster_windows, start, start + step)
            group["booked_seconds"][i] += reserved.get((cluster.pk, start), Decimal(0))
    rows = []
    for key in sorted(groups):
        group = groups[key]
        listed, booked = group.pop("listed_seconds"), group.pop("booked_seconds")
        if not any(listed) and not any(booked):
            continue
        rows.append({**group, **_series(listed, booked)})
    total_listed = [sum((r["listed"][i] for r in rows), Decimal(0)) for i in range(days)]
    total_booked = [sum((r["booked"][i] for r in rows), Decimal(0)) for i in range(days)]
    return {
        "city": city,
        "start": first,
        "end": end,
        "days": starts,
        "rows": rows,
        "totals": _series(total_listed, total_booked, in_hours=True),
    }


def _series(listed: list[Decimal], booked: list[Decimal], *, in_hours: bool = False) -> dict:
    """Per-day listed, booked and idle node-hours with their totals and the booked share of the listed (percent,
    one place; None when nothing was listed). ``listed``/``booked`` are seconds unless ``in_hours``."""
    if not in_hours:
        listed, booked = [_node_hours(s) for s in listed], [_node_hours(s) for s in booked]
    idle = [max(lh - bh, Decimal(0)) for lh, bh in zip(listed, booked, strict=True)]
    listed_total, booked_total = sum(listed, Decimal(0)), sum(booked, Decimal(0))
    percent = (100 * min(booked_total / listed_total, ONE)).quantize(NODE_HOUR_PLACES) if listed_total else None
    return {
        "listed": listed,
        "booked": booked,
        "idle": idle,
        "listed_total": listed_total,
        "booked_total": booked_total,
        "idle_total": sum(idle, Decimal(0)),
        "utilisation_percent": percent,
    }
