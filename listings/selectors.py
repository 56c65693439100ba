"""Reads for the supply side: listing search (availability computed in SQL), scoping by organization, the review
queue and a listing's availability timeline.

Availability uses the reverse relation ``Node.reservations`` (``orders.NodeReservation``: ``period`` tstzrange,
``active``) so this app does not import ``orders``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.postgres.fields import DateTimeRangeField
from django.db import connection
from django.db.models import (
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    Q,
    QuerySet,
    Value,
)
from django.db.models.expressions import Func, RawSQL
from django.utils import timezone

from accounts import selectors as account_selectors
from accounts.models import Organization
from listings.models import Accelerator, Cluster, DataCenter, Listing, Node

# Search parameters that are plain lookups (the window, min_gpus, mine and ordering need more than that).
FILTER_LOOKUPS = {
    "status": "status",
    "accelerator": "cluster__accelerator__in",
    "city": "cluster__data_center__city",
    "operator": "cluster__data_center__operator",
    "domestic": "cluster__accelerator__domestic",
    "max_price": "price_per_gpu_hour__lte",
}
ORDERINGS = {
    "price": ("price_per_gpu_hour", "id"),
    "-price": ("-price_per_gpu_hour", "-id"),
    "price_per_pflop": ("price_per_pflop_hour", "price_per_gpu_hour", "id"),
}


class TstzRange(Func):
    """``tstzrange(start, end, '[)')``: the half-open window ``[start, end)``."""

    function = "tstzrange"
    output_field = DateTimeRangeField()

    def __init__(self, start, end):
        super().__init__(Value(start), Value(end), Value("[)"))


def accelerators() -> QuerySet[Accelerator]:
    return Accelerator.objects.all()


def provider_organizations(user) -> QuerySet[Organization]:
    return account_selectors.user_organizations(user, kind=Organization.Kind.PROVIDER)


def provider_data_centers(user) -> QuerySet[DataCenter]:
    """Data centres of the provider organizations ``user`` acts for."""
    return DataCenter.objects.filter(provider__in=provider_organizations(user)).select_related("provider")


def provider_clusters(user) -> QuerySet[Cluster]:
    return (Cluster.objects.filter(data_center__provider__in=provider_organizations(user))
            .select_related("data_center__provider", "accelerator", "provenance"))


def provider_listings(user) -> QuerySet[Listing]:
    """Listings of ``user``'s provider organizations, any status: the queryset edits and actions look up in
    (another provider's listing is simply not found → 404)."""
    return with_search_columns(Listing.objects.filter(cluster__data_center__provider__in=provider_organizations(user)))


def nodes_available(start: dt.datetime | None = None, end: dt.datetime | None = None, *,
                    clusters: list[int] | None = None):
    """SQL expression, per listing row: the cluster's nodes with no active reservation overlapping
    ``[start, end)`` (all nodes without a window).

    The busy-node counts of every cluster with a reservation in the window are aggregated once per query (an
    uncorrelated scalar subquery, i.e. a PostgreSQL InitPlan, into a ``jsonb`` map cluster → busy nodes); each row
    then looks its cluster up. So the cost does not grow with the number of listings scanned times their nodes.
    ``clusters`` (ids) narrows the map to those clusters (a page of results).
    """
    if not (start and end):
        return F("cluster__node_count")
    reservation = Node._meta.get_field("reservations").related_model._meta.db_table
    params: tuple = (start, end)
    narrow = ""
    if clusters is not None:
        narrow = f"AND r.node_id IN (SELECT id FROM {Node._meta.db_table} WHERE cluster_id = ANY(%s))"  # noqa: S608
        params = (start, end, list(clusters))
    busy = f"""COALESCE(((
        SELECT jsonb_object_agg(b.cluster_id::text, b.busy) FROM (
            SELECT c.cluster_id, count(DISTINCT c.node_id) AS busy FROM (
                -- a scalar lookup per overlapping reservation: few rows, never a scan of all nodes
                SELECT r.node_id, (SELECT n.cluster_id FROM {Node._meta.db_table} n WHERE n.id = r.node_id)
                       AS cluster_id
                FROM {reservation} r WHERE r.active AND r.period && tstzrange(%s, %s, '[)') {narrow}) c
            GROUP BY c.cluster_id) b
        ) ->> {Listing._meta.db_table}.cluster_id::text)::int, 0)"""  # noqa: S608 - names from model metadata
    busy_nodes = RawSQL(busy, params, output_field=IntegerField())  # noqa: S611 - values are parameters
    return ExpressionWrapper(F("cluster__node_count") - busy_nodes,
                             output_field=IntegerField())


PRICE_PER_PFLOP = ExpressionWrapper(
    F("price_per_gpu_hour") * Value(Decimal(1000)) / F("cluster__accelerator__bf16_tflops"),
    output_field=DecimalField(max_digits=16, decimal_places=4),
)


def with_search_columns(qs: QuerySet[Listing], *, start: dt.datetime | None = None, end: dt.datetime | None = None,
                        clusters: list[int] | None = None) -> QuerySet[Listing]:
    """Annotate the columns the API shows: ``nodes_total``, ``gpus_per_node``, ``nodes_available`` (for
    ``[start, end)`` when given, else all nodes) and ``price_per_pflop_hour`` (price / (BF16 TFLOPS / 1000))."""
    return qs.select_related("cluster__data_center__provider", "cluster__accelerator").annotate(
        nodes_total=F("cluster__node_count"),
        gpus_per_node=F("cluster__gpus_per_node"),
        nodes_available=nodes_available(start, end, clusters=clusters),
        price_per_pflop_hour=PRICE_PER_PFLOP,
    )


def listing_rows(listings, *, start: dt.datetime | None = None, end: dt.datetime | None = None) -> list[Listing]:
    """``listings`` (a page of ``listing_search``) re-read in the same order with the search columns: one query
    for the page, so counting and paging the search never pay for the display joins."""
    listings = list(listings)
    ids = [listing.pk for listing in listings]
    rows = with_search_columns(Listing.objects.filter(pk__in=ids), start=start, end=end,
                               clusters=sorted({listing.cluster_id for listing in listings}))
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
    """Listings ``user`` may see, filtered by ``filters`` (``ListingFilterSet.cleaned()``), ordered; ids and own
    columns only: show a page with ``listing_rows(page, start=, end=)``.

    Filters: accelerator (list of Accelerator), city, operator, domestic, min_gpus (GPUs per node × nodes available
    in the window), max_price, start & end (only listings whose window covers ``[start, end)`` and whose minimum
    hours fit in it), status, mine (only the user's own listings), ordering (``ORDERINGS``). One SQL query (plus
    the count); joins only for the filters given; no Python loop over listings or nodes.
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
        # The cheap bound first (all nodes free) spares the availability expression most rows.
        qs = qs.alias(gpus_total=F("cluster__gpus_per_node") * F("cluster__node_count")).filter(
            gpus_total__gte=filters["min_gpus"])
        qs = qs.alias(gpus_free=F("cluster__gpus_per_node") * nodes_available(start, end)).filter(
            gpus_free__gte=filters["min_gpus"])
    ordering = filters.get("ordering") or "price"
    if ordering == "price_per_pflop":
        qs = qs.alias(price_per_pflop_hour=PRICE_PER_PFLOP)
    return qs.order_by(*ORDERINGS[ordering])


def listing_for_user(listing_id: int, user) -> Listing:
    """One visible listing with the search columns, or ``Listing.DoesNotExist``."""
    return with_search_columns(Listing.objects.filter(visible_listings(user))).get(pk=listing_id)


def review_queue() -> QuerySet[Listing]:
    """Listings waiting for platform review, oldest first, with their cluster's provenance declaration."""
    return (with_search_columns(Listing.objects.filter(status=Listing.Status.PENDING_REVIEW))
            .select_related("cluster__provenance").order_by("updated_at", "id"))


def listing_daily_availability(listing: Listing, *, days: int = 14, today: dt.date | None = None) -> list[dict]:
    """Free nodes per UTC day for ``days`` days from ``today``: for each day, the cluster's node count minus the
    nodes with an active reservation overlapping that day (0 outside the listing's window). One SQL query with
    ``generate_series``."""
    today = today or timezone.now().astimezone(dt.UTC).date()
    first = dt.datetime.combine(today, dt.time(0), tzinfo=dt.UTC)
    reservation = Node._meta.get_field("reservations").related_model._meta
    node_table = Node._meta.db_table
    sql = f"""
        SELECT day, CASE WHEN day + interval '1 day' <= %(avail_from)s OR day >= %(avail_until)s THEN 0
                    ELSE %(node_count)s - (
                        SELECT count(DISTINCT r.node_id) FROM {reservation.db_table} r
                        JOIN {node_table} n ON n.id = r.node_id
                        WHERE n.cluster_id = %(cluster)s AND r.active
                          AND r.period && tstzrange(day, day + interval '1 day', '[)'))
                    END AS free
        FROM generate_series(%(first)s::timestamptz, %(first)s::timestamptz + (%(days)s - 1) * interval '1 day',
                             interval '1 day') AS day
        ORDER BY day
    """  # noqa: S608 - table names come from model metadata, values are parameters
    params = {"avail_from": listing.available_from, "avail_until": listing.available_until,
              "node_count": listing.cluster.node_count, "cluster": listing.cluster_id, "first": first, "days": days}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    total = listing.cluster.node_count
    return [{"day": day.date(), "free": free, "total": total, "percent": round(100 * free / total) if total else 0}
            for day, free in rows]


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
    reservation = Node._meta.get_field("reservations").related_model._meta.db_table
    node_table = Node._meta.db_table
    sql = f"""
        WITH days AS (
            SELECT day, tstzrange(day, day + interval '1 day', '[)') AS span
            FROM generate_series(%(first)s::timestamptz,
                                 %(first)s::timestamptz + (%(days)s - 1) * interval '1 day',
                                 interval '1 day') AS day)
        SELECT c.id, d.day,
               COALESCE(SUM(EXTRACT(EPOCH FROM upper(b.period * d.span) - lower(b.period * d.span))), 0)
        FROM days d
        CROSS JOIN unnest(%(clusters)s::bigint[]) AS c(id)
        LEFT JOIN (SELECT n.cluster_id, r.period FROM {reservation} r JOIN {node_table} n ON n.id = r.node_id
                   WHERE r.active) b
               ON b.cluster_id = c.id AND b.period && d.span
        GROUP BY c.id, d.day
        ORDER BY c.id, d.day
    """  # noqa: S608 - table names come from model metadata, values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, {"first": first, "days": days, "clusters": [c.pk for c in clusters]})
        rows = cursor.fetchall()
    busy: dict[int, list] = {}
    for cluster_id, day, seconds in rows:
        busy.setdefault(cluster_id, []).append((day.date(), Decimal(seconds)))
    result = []
    for cluster in clusters:
        capacity = Decimal(cluster.node_count * 24 * 3600)
        series = busy.get(cluster.pk, [])
        result.append({
            "cluster": cluster,
            "days": [day for day, _ in series],
            "percent": [(100 * seconds / capacity).quantize(Decimal("0.1")) if capacity else Decimal(0)
                        for _, seconds in series],
        })
    return result


def utilisation_chart(utilisation: list[dict]) -> dict:
    """A Chart.js bar config (for ``static/js/charts.js`` kind ``config``) of ``cluster_utilisation``'s result:
    one dataset per cluster, y in % of node-hours booked."""
    labels = [day.isoformat() for day in utilisation[0]["days"]] if utilisation else []
    return {
        "type": "bar",
        "data": {"labels": labels, "datasets": [
            {"label": f"{row['cluster'].name} ({row['cluster'].node_count} nodes)",
             "data": [float(p) for p in row["percent"]]} for row in utilisation]},
        "options": {"scales": {"y": {"beginAtZero": True, "max": 100,
                                     "title": {"display": True, "text": "% of node-hours booked (UTC days)"}}}},
    }
