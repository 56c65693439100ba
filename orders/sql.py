"""The orders app's hand-written SQL: only statements whose semantics the ORM lacks.

- ``count_one_more``: an upsert whose limit check sits in ``ON CONFLICT … DO UPDATE … WHERE`` (one statement that
  cannot fail, so the caller's transaction needs no savepoint).
- ``take_free_nodes``: choose the lowest free nodes and insert their reservations in one statement, with
  ``ON CONFLICT DO NOTHING`` skipping a row the exclusion constraint refuses instead of failing the statement.
- ``free_gpus_by_price``: the order book's asks, a grouped sum over a correlated anti-join on the reservations'
  range overlap (``&&``).
- ``reserved_node_seconds``: reserved node-time per cluster and time bucket, the reservations' ranges intersected
  (``*``) with each bucket of a ``generate_series``.
Table names come from model metadata; every value is a parameter.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import connection

from listings.models import Cluster, Listing, Node
from orders.models import NodeReservation, OpenOrderLimit

LIMIT_COUNTERS = ("held_bookings", "open_bids")


def count_one_more(*, organization_id: int, counter: str, delta: int, max_held: int, max_open: int) -> bool:
    """Create the organization's ``OpenOrderLimit`` row or add ``delta`` to ``counter`` unless that passes its
    limit: True when counted, False when refused (the row is unchanged). ``counter`` is one of ``LIMIT_COUNTERS``
    (a column name, so checked here: it is not a parameter)."""
    if counter not in LIMIT_COUNTERS:
        raise ValueError(f"unknown counter {counter!r}")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {OpenOrderLimit._meta.db_table} AS l "  # noqa: S608 - names from metadata and LIMIT_COUNTERS
            "(organization_id, held_bookings, open_bids, max_held_bookings, max_open_bids) VALUES (%s, %s, %s, %s, %s) "
            f"ON CONFLICT (organization_id) DO UPDATE SET {counter} = l.{counter} + %s "
            f"WHERE l.{counter} + %s <= l.max_{counter} RETURNING 1",
            [
                organization_id,
                delta if counter == "held_bookings" else 0,
                delta if counter == "open_bids" else 0,
                max_held,
                max_open,
                delta,
                delta,
            ],
        )
        return cursor.fetchone() is not None


def take_free_nodes(
    *, booking_id: int, cluster_id: int, start: dt.datetime, end: dt.datetime, nodes: int
) -> list[tuple[int, bool]]:
    """Reserve for ``booking_id`` the ``nodes`` lowest-numbered nodes of the cluster with no active reservation
    overlapping ``[start, end)``, in node-index order (so concurrent bookings wait on each other in one order: no
    deadlock), only when that many are free. Returns ``(node index, reserved)`` of the free nodes chosen (fewer
    than ``nodes``: nothing was reserved); ``reserved`` is False for a node a concurrent writer reserved meanwhile.
    The free-node test is answered by the exclusion constraint's GiST index (node, period)."""
    reservations, node_table = NodeReservation._meta.db_table, Node._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH free AS (SELECT n.id, n.index FROM {node_table} n "  # noqa: S608 - names from metadata
            f" WHERE n.cluster_id = %s AND NOT EXISTS (SELECT 1 FROM {reservations} r"
            "  WHERE r.node_id = n.id AND r.active AND r.period && tstzrange(%s, %s, '[)'))"
            " ORDER BY n.index LIMIT %s"
            f"), taken AS (INSERT INTO {reservations} (booking_id, node_id, period, active)"
            " SELECT %s, free.id, tstzrange(%s, %s, '[)'), true FROM free"
            " WHERE (SELECT count(*) FROM free) = %s ORDER BY free.index"
            " ON CONFLICT DO NOTHING RETURNING node_id"
            ") SELECT free.index, taken.node_id IS NOT NULL FROM free LEFT JOIN taken ON taken.node_id = free.id"
            " ORDER BY free.index",
            [cluster_id, start, end, nodes, booking_id, start, end, nodes],
        )
        return cursor.fetchall()


def free_gpus_by_price(
    *, accelerator_id: int, start: dt.datetime, end: dt.datetime, levels: int
) -> list[tuple[Decimal, int]]:
    """``(price per GPU-hour, GPUs free in [start, end))`` of the active listings of the accelerator open for the
    whole window, grouped by price, cheapest first, at most ``levels`` prices."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT l.price_per_gpu_hour, SUM(c.gpus_per_node * (SELECT COUNT(*) FROM {Node._meta.db_table} n"  # noqa: S608
            f"  WHERE n.cluster_id = c.id AND NOT EXISTS (SELECT 1 FROM {NodeReservation._meta.db_table} r"
            "   WHERE r.node_id = n.id AND r.active AND r.period && tstzrange(%s, %s, '[)'))))"
            f" FROM {Listing._meta.db_table} l JOIN {Cluster._meta.db_table} c ON c.id = l.cluster_id"
            " WHERE l.status = %s AND c.accelerator_id = %s"
            " AND l.available_from <= %s AND l.available_until >= %s"
            " GROUP BY l.price_per_gpu_hour ORDER BY l.price_per_gpu_hour LIMIT %s",
            [start, end, Listing.Status.ACTIVE, accelerator_id, start, end, levels],
        )
        return [(price, int(gpus)) for price, gpus in cursor.fetchall()]


def reserved_node_seconds(
    *, cluster_ids: list[int], first: dt.datetime, step: dt.timedelta, steps: int
) -> list[tuple[int, dt.datetime, Decimal]]:
    """``(cluster id, bucket start, reserved node-seconds)`` for the clusters of ``cluster_ids`` and the ``steps``
    buckets ``[first + i·step, first + (i+1)·step)``: the summed overlap of the cluster's active reservations with
    the bucket. Buckets without any are absent. Answered from the active reservations' period index (which
    includes the cluster)."""
    query = f"""
        SELECT r.cluster_id, b.start,
               SUM(EXTRACT(EPOCH FROM upper(r.period * b.span) - lower(r.period * b.span)))
        FROM (SELECT s AS start, tstzrange(s, s + %(step)s, '[)') AS span
              FROM generate_series(%(first)s::timestamptz, %(first)s::timestamptz + (%(steps)s - 1) * %(step)s,
                                   %(step)s) AS s) b
        JOIN {NodeReservation._meta.db_table} r
          ON r.active AND r.period && b.span AND r.cluster_id = ANY(%(clusters)s::bigint[])
        GROUP BY r.cluster_id, b.start
    """  # noqa: S608 - the table name comes from model metadata, values are parameters
    with connection.cursor() as cursor:
        cursor.execute(query, {"first": first, "step": step, "steps": steps, "clusters": list(cluster_ids)})
        return cursor.fetchall()
