"""Reads for the supply side: listing search (availability computed in SQL), scoping by organization, the review
queue and a listing's availability timeline.

Availability uses the reverse relation ``Node.reservations`` (``orders.NodeReservation``: ``period`` tstzrange,
``active``) so this app does not import ``orders``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import (
    Count,
    ExpressionWrapper,
    F,
    IntegerField,
    Q,
    QuerySet,
)
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from accounts import selectors as account_selectors
from accounts.models import Organization
from listings import sql
from listings.models import Accelerator, Cluster, DataCenter, Listing, ProvenanceDeclaration

# Search parameters that are plain lookups (the window, min_gpus, mine and ordering need more than that). They read
# the listing's own search columns (copies of its cluster's, kept in step by a trigger: see ``Listing``), so a
# search never joins the cluster, data centre or accelerator.
FILTER_LOOKUPS = {
    "status": "status",
    "accelerator": "accelerator__in",
    "city": "city",
    "operator": "operator",
    "domestic": "domestic",
    "max_price": "price_per_gpu_hour__lte",
    # The cluster's 90-day delivered / reserved node-hours (issue 20; ``orders.reliability``): a join to the cluster.
    "min_reliability": "cluster__reliability__gte",
}
ORDERINGS = {
    "price": ("price_per_gpu_hour", "id"),
    "-price": ("-price_per_gpu_hour", "-id"),
    "price_per_pflop": ("price_per_pflop_hour", "price_per_gpu_hour", "id"),
    # Most reliable first, like Vast.ai; clusters without a score yet (no booking ended) last.
    "-reliability": (F("cluster__reliability").desc(nulls_last=True), "price_per_gpu_hour", "id"),
    "reliability": (F("cluster__reliability").asc(nulls_last=True), "price_per_gpu_hour", "id"),
}


def cleared_cluster_ids(clusters) -> set[int]:
    """Of ``clusters`` (their accelerator loaded), the ids whose listings may be active and paid with vouchers: no
    provenance declaration needed (not export-controlled hardware), or it was approved by platform staff. At most
    one query, however many clusters."""
    controlled = {cluster.pk for cluster in clusters if cluster.accelerator.export_controlled}
    approved = (
        set(
            ProvenanceDeclaration.objects.filter(
                cluster_id__in=controlled, status=ProvenanceDeclaration.Status.APPROVED
            ).values_list("cluster_id", flat=True)
        )
        if controlled
        else set()
    )
    return {cluster.pk for cluster in clusters if cluster.pk not in controlled or cluster.pk in approved}


def provenance_cleared(cluster: Cluster) -> bool:
    """True when listings of ``cluster`` may be active (see ``cleared_cluster_ids``)."""
    return cluster.pk in cleared_cluster_ids([cluster])


def listing_reviewed(listing: Listing, *, cleared: set[int] | None = None) -> bool:
    """Active, on a cluster whose provenance is cleared (``cleared``: ``cleared_cluster_ids`` of many listings'
    clusters, read once by the caller; else read here)."""
    if listing.status != Listing.Status.ACTIVE:
        return False
    return listing.cluster_id in (cleared if cleared is not None else cleared_cluster_ids([listing.cluster]))


def accelerators() -> QuerySet[Accelerator]:
    return Accelerator.objects.all()


def provider_organizations(user) -> QuerySet[Organization]:
    return account_selectors.user_organizations(user, kind=Organization.Kind.PROVIDER)


def provider_data_centers(user) -> QuerySet[DataCenter]:
    """Data centres of the provider organizations ``user`` acts for."""
    return DataCenter.objects.filter(provider__in=provider_organizations(user)).select_related("provider")


def public_data_centers(provider_id: int) -> QuerySet[DataCenter]:
    """A provider's data centres as anyone may see them, with how many of their listings are active now."""
    return (
        DataCenter.objects.filter(provider_id=provider_id)
        .annotate(
            active_listings=Count("clusters__listings", filter=Q(clusters__listings__status=Listing.Status.ACTIVE))
        )
        .order_by("city", "name")
    )


def provider_clusters(user) -> QuerySet[Cluster]:
    return Cluster.objects.filter(data_center__provider__in=provider_organizations(user)).select_related(
        "data_center__provider", "accelerator", "provenance"
    )


def provider_listings(user) -> QuerySet[Listing]:
    """Listings of ``user``'s provider organizations, any status: the queryset edits and actions look up in
    (another provider's listing is simply not found → 404)."""
    return with_search_columns(Listing.objects.filter(cluster__data_center__provider__in=provider_organizations(user)))


def clusters_short_of_gpus(start: dt.datetime, end: dt.datetime, min_gpus: int) -> list[int]:
    """The clusters with fewer than ``min_gpus`` GPUs free in ``[start, end)`` because of their nodes' active
    reservations overlapping it (a cluster with no such reservation is not among them: all its GPUs are free): their
    ids, in no order.

    One aggregate over the reservations in the window: an index-only scan of the period index, which includes
    each reservation's node and cluster (copied onto it by a trigger), busy nodes counted per cluster (a node may
    have several reservations in it), then a lookup per busy cluster for its size. Its cost grows with the
    reservations in the window, not with the listings a search scans.
    """
    return sql.clusters_short_of_gpus(start=start, end=end, min_gpus=min_gpus)


def nodes_available(
    start: dt.datetime | None = None, end: dt.datetime | None = None, *, clusters: list[int] | None = None
):
    """SQL expression, per listing row: the cluster's nodes with no active reservation overlapping ``[start, end)``
    (all nodes without a window). Meant for a page of rows (a filter over many uses ``clusters_short_of_gpus``).

    With ``clusters`` (the page's cluster ids) the busy nodes of those clusters are counted once per query (an
    uncorrelated scalar subquery, a PostgreSQL InitPlan, into a ``jsonb`` map cluster → busy nodes) and each row
    looks its cluster up: whichever plan PostgreSQL picks (probes of the (node, period) exclusion index, or one
    pass over the window's reservations), it runs once, not once per row. Without, each row counts its own.
    """
    if not (start and end):
        return F("node_count")
    busy_nodes = sql.busy_nodes(start=start, end=end, clusters=clusters)
    return ExpressionWrapper(F("node_count") - busy_nodes, output_field=IntegerField())


def with_search_columns(
    qs: QuerySet[Listing],
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    clusters: list[int] | None = None,
) -> QuerySet[Listing]:
    """Select the cluster, data centre, provider and accelerator, and annotate ``nodes_total`` and
    ``nodes_available`` (for ``[start, end)`` when given, else all nodes; see ``nodes_available`` for
    ``clusters``). ``gpus_per_node`` and ``price_per_pflop_hour`` (price / (BF16 TFLOPS / 1000)) are the listing's
    own search columns."""
    return qs.select_related("cluster__data_center__provider", "cluster__accelerator").annotate(
        nodes_total=F("node_count"),
        nodes_available=nodes_available(start, end, clusters=clusters),
    )


# What a page of results shows (``ListingSerializer``, ``listings/_results.html``): the rest is not read.
PAGE_COLUMNS = (
    "id",
    "price_per_gpu_hour",
    "available_from",
    "available_until",
    "min_hours",
    "status",
    "review_note",
    "gpus_per_node",
    "node_count",
    "price_per_pflop_hour",
    "city",
    "operator",
    "cluster__name",
    "cluster__interconnect",
    "cluster__reliability",
    "sla_percent",
    "cluster__accelerator",
    "cluster__data_center__name",
    "cluster__data_center__city",
    "cluster__data_center__operator",
    "cluster__data_center__provider__name",
)


def listing_rows(listings, *, start: dt.datetime | None = None, end: dt.datetime | None = None) -> list[Listing]:
    """``listings`` (a page of ``listing_search``) re-read in the same order with the search columns: one query
    for the page, so counting and paging the search never pay for the display joins."""
    listings = list(listings)
    if not listings:
        return []
    ids = [listing.pk for listing in listings]
    clusters = sorted({listing.cluster_id for listing in listings})
    rows = (
        with_search_columns(Listing.objects.filter(pk__in=ids), start=start, end=end, clusters=clusters)
        .only(*PAGE_COLUMNS)
        .order_by()
    )
    by_id = {row.pk: row for row in rows}
    return [by_id[pk] for pk in ids if pk in by_id]


def visible_listings(user) -> Q:
    """Who sees what: everybody sees active listings whose window has not ended; provider members also see their
    own listings in any status; platform staff see all (they review)."""
    if user is not None and user.is_authenticated and account_selectors.is_platform_staff(user):
        return Q()
    visible = Q(status=Listing.Status.ACTIVE, available_until__gt=timezone.now())
    if user is not None and user.is_authenticated:
        visible |= Q(cluster__data_center__provider__in=provider_organizations(user))
    return visible


def listing_search(*, filters: dict | None = None, user=None) -> QuerySet[Listing]:
    """Listings ``user`` may see, filtered by ``filters`` (``ListingFilterSet.cleaned()``), ordered; ids and clusters
    only: show a page with ``listing_rows(page, start=, end=)``.

    Filters: accelerator (list of Accelerator), city, operator, domestic, min_gpus (GPUs per node × nodes available
    in the window), max_price, start & end (only listings whose window covers ``[start, end)`` and whose minimum
    hours fit in it), status, mine (only the user's own listings), ordering (``ORDERINGS``). One SQL query (plus
    the count) on the listing table alone for anonymous users and startups (an index-only scan of one of the
    search indexes); with min_gpus and a window, one more query first, here: ``clusters_short_of_gpus``. No
    Python loop over listings or nodes.
    """
    filters = {k: v for k, v in (filters or {}).items() if v not in (None, "", [])}
    start, end = filters.get("start"), filters.get("end")
    qs = Listing.objects.filter(visible_listings(user))
    if filters.get("mine"):
        qs = qs.filter(cluster__data_center__provider__in=provider_organizations(user))
    qs = qs.filter(**{lookup: filters[name] for name, lookup in FILTER_LOOKUPS.items() if name in filters})
    if start and end:
        hours = int((end - start).total_seconds() // 3600)
        qs = qs.filter(available_from__lte=start, available_until__gte=end, min_hours__lte=hours)
    if "min_gpus" in filters:
        # All nodes free is an upper bound; in a window, the clusters that reservations leave short are left out.
        qs = qs.alias(gpus_total=F("gpus_per_node") * F("node_count")).filter(gpus_total__gte=filters["min_gpus"])
        if start and end:
            # Read once here rather than in both the count and the page query: a per-row availability expression
            # cost a microsecond or more a row.
            short = clusters_short_of_gpus(start, end, filters["min_gpus"])
            if short:
                qs = qs.exclude(cluster_id__in=short)
    ordering = filters.get("ordering") or "price"
    return qs.only("id", "cluster").order_by(*ORDERINGS[ordering])


def listing_for_user(listing_id: int, user) -> Listing:
    """One visible listing with the search columns, or ``Listing.DoesNotExist``."""
    return with_search_columns(Listing.objects.filter(visible_listings(user))).get(pk=listing_id)


def review_queue() -> QuerySet[Listing]:
    """Listings waiting for platform review, oldest first, with their cluster's provenance declaration."""
    return (
        with_search_columns(Listing.objects.filter(status=Listing.Status.PENDING_REVIEW))
        .select_related("cluster__provenance")
        .order_by("updated_at", "id")
    )


def listing_daily_availability(listing: Listing, *, days: int = 14, today: dt.date | None = None) -> list[dict]:
    """Free nodes per UTC day for ``days`` days from ``today``: for each day, the cluster's node count minus the
    nodes with an active reservation overlapping that day (0 outside the listing's window). One SQL query with
    ``generate_series``."""
    today = today or timezone.now().astimezone(dt.UTC).date()
    first = dt.datetime.combine(today, dt.time(0), tzinfo=dt.UTC)
    rows = sql.free_nodes_per_day(
        cluster_id=listing.cluster_id,
        node_count=listing.cluster.node_count,
        available_from=listing.available_from,
        available_until=listing.available_until,
        first=first,
        days=days,
    )
    total = listing.cluster.node_count
    return [
        {"day": day.date(), "free": free, "total": total, "percent": round(100 * free / total) if total else 0}
        for day, free in rows
    ]


def cluster_utilisation(clusters, *, days: int = 14, today: dt.date | None = None) -> list[dict]:
    """Booked share of node-hours per UTC day for ``days`` days from ``today``, for each of ``clusters`` (Cluster
    rows, in the order given): ``[{"cluster": Cluster, "days": [date, ...], "percent": [Decimal, ...]}]``, where a
    day's percent is the summed overlap of the cluster's active reservations with that day divided by
    ``node_count × 24 h`` (one decimal place). One SQL query for all clusters (``generate_series`` × clusters);
    no query at all for an empty ``clusters``."""
    clusters = list(clusters)
    if not clusters:
        return []
    today = today or timezone.now().astimezone(dt.UTC).date()
    first = dt.datetime.combine(today, dt.time(0), tzinfo=dt.UTC)
    rows = sql.reserved_seconds_per_day(cluster_ids=[c.pk for c in clusters], first=first, days=days)
    busy: dict[int, list] = {}
    for cluster_id, day, seconds in rows:
        busy.setdefault(cluster_id, []).append((day.date(), Decimal(seconds)))
    result = []
    for cluster in clusters:
        capacity = Decimal(cluster.node_count * 24 * 3600)
        series = busy.get(cluster.pk, [])
        result.append(
            {
                "cluster": cluster,
                "days": [day for day, _ in series],
                "percent": [
                    (100 * seconds / capacity).quantize(Decimal("0.1")) if capacity else Decimal(0)
                    for _, seconds in series
                ],
            }
        )
    return result


def utilisation_chart(utilisation: list[dict]) -> dict:
    """A Chart.js bar config (for ``static/js/charts.js`` kind ``config``) of ``cluster_utilisation``'s result:
    one dataset per cluster, y in % of node-hours booked."""
    labels = [day.isoformat() for day in utilisation[0]["days"]] if utilisation else []
    return {
        "type": "bar",
        "data": {
            "labels": labels,
            "datasets": [
                {
                    "label": ngettext(
                        "%(name)s (%(count)s node)", "%(name)s (%(count)s nodes)", row["cluster"].node_count
                    )
                    % {"name": row["cluster"].name, "count": row["cluster"].node_count},
                    "data": [float(p) for p in row["percent"]],
                }
                for row in utilisation
            ],
        },
        "options": {
            "scales": {
                "y": {
                    "beginAtZero": True,
                    "max": 100,
                    "title": {"display": True, "text": gettext("Share of node-hours booked, in percent (UTC days)")},
                }
            }
        },
    }
