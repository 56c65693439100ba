"""The listings app's hand-written SQL: availability over the node reservations' ranges, which the ORM cannot say
(range overlap and intersection per day with ``generate_series``, an uncorrelated scalar subquery into a ``jsonb``
map evaluated once per query, ``count(DISTINCT …)`` grouped over an index-only scan).

Table names come from model metadata; every value is a parameter.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import IntegerField
from django.db.models.expressions import RawSQL

from listings.models import Cluster, Listing, Node


def _reservation_table() -> str:
    # NodeReservation belongs to orders, a layer above: named through the relation, never imported.
    return Node._meta.get_field("reservations").related_model._meta.db_table


def clusters_short_of_gpus(*, start: dt.datetime, end: dt.datetime, min_gpus: int) -> list[int]:
    """Ids of the clusters with fewer than ``min_gpus`` GPUs free in ``[start, end)`` (see
    ``listings.selectors.clusters_short_of_gpus``): one aggregate over the reservations in the window (an
    index-only scan of the period index, which includes each reservation's node and cluster), then a lookup per
    busy cluster for its size."""
    cluster, reservation = Cluster._meta.db_table, _reservation_table()
    query = f"""
        SELECT b.cluster_id FROM (
            SELECT r.cluster_id, count(DISTINCT r.node_id) AS busy FROM {reservation} r
            WHERE r.active AND r.period && tstzrange(%s, %s, '[)')
            GROUP BY r.cluster_id) b
        -- a lookup per busy cluster (a join would hash every cluster)
        WHERE (SELECT c.gpus_per_node * (c.node_count - b.busy) FROM {cluster} c WHERE c.id = b.cluster_id) < %s
    """  # noqa: S608 - table names come from model metadata, values are parameters
    with connection.cursor() as cursor:
        cursor.execute(query, (start, end, min_gpus))
        return [row[0] for row in cursor.fetchall()]


def busy_nodes(*, start: dt.datetime, end: dt.datetime, clusters: list[int] | None) -> RawSQL:
    """Expression per listing row: its cluster's nodes with an active reservation overlapping ``[start, end)``.

    With ``clusters`` (a page's cluster ids) they are counted once per query into a ``jsonb`` map cluster → busy
    nodes (an uncorrelated scalar subquery: a PostgreSQL InitPlan) that each row looks up; without, each row counts
    its own."""
    listing, node, reservation = Listing._meta.db_table, Node._meta.db_table, _reservation_table()
    busy_node = f"""EXISTS (SELECT 1 FROM {reservation} r WHERE r.node_id = n.id AND r.active
                           AND r.period && tstzrange(%s, %s, '[)'))"""  # noqa: S608 - names from model metadata
    if clusters is not None:
        query = f"""COALESCE(((
            SELECT jsonb_object_agg(b.cluster_id::text, b.busy) FROM (
                SELECT n.cluster_id, count(*) AS busy FROM {node} n
                WHERE n.cluster_id = ANY(%s::bigint[]) AND {busy_node} GROUP BY n.cluster_id) b
            ) ->> {listing}.cluster_id::text)::int, 0)"""  # noqa: S608 - names from model metadata
        params: tuple = (list(clusters), start, end)
    else:
        query = f"(SELECT count(*) FROM {node} n WHERE n.cluster_id = {listing}.cluster_id AND {busy_node})"  # noqa: S608
        params = (start, end)
    return RawSQL(query, params, output_field=IntegerField())  # noqa: S611 - values are parameters


def free_nodes_per_day(
    *,
    cluster_id: int,
    node_count: int,
    available_from: dt.datetime,
    available_until: dt.datetime,
    first: dt.datetime,
    days: int,
) -> list[tuple[dt.datetime, int]]:
    """``(day, free nodes)`` for ``days`` UTC days from ``first``: the node count minus the nodes with an active
    reservation overlapping the day, 0 outside ``[available_from, available_until)``."""
    reservation, node_table = _reservation_table(), Node._meta.db_table
    query = f"""
        SELECT day, CASE WHEN day + interval '1 day' <= %(avail_from)s OR day >= %(avail_until)s THEN 0
                    ELSE %(node_count)s - (
                        SELECT count(DISTINCT r.node_id) FROM {reservation} r
                        JOIN {node_table} n ON n.id = r.node_id
                        WHERE n.cluster_id = %(cluster)s AND r.active
                          AND r.period && tstzrange(day, day + interval '1 day', '[)'))
                    END AS free
        FROM generate_series(%(first)s::timestamptz, %(first)s::timestamptz + (%(days)s - 1) * interval '1 day',
                             interval '1 day') AS day
        ORDER BY day
    """  # noqa: S608 - table names come from model metadata, values are parameters
    params = {
        "avail_from": available_from,
        "avail_until": available_until,
        "node_count": node_count,
        "cluster": cluster_id,
        "first": first,
        "days": days,
    }
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def reserved_seconds_per_day(*, cluster_ids: list[int], first: dt.datetime, days: int) -> list[tuple]:
    """``(cluster id, day, reserved node-seconds)`` for each cluster and each of ``days`` UTC days from ``first``:
    the summed overlap of the cluster's active reservations with the day, by cluster then day."""
    reservation, node_table = _reservation_table(), Node._meta.db_table
    query = f"""
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
        cursor.execute(query, {"first": first, "days": days, "clusters": cluster_ids})
        return cursor.fetchall()
