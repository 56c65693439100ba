"""Reliability of a cluster (issue 20), like Vast.ai's reliability score: of the node-hours its bookings reserved
that ended in the last ``WINDOW`` (90 days), the share delivered (reserved minus the counted incidents' node-hours,
as ``orders.handovers.booking_delivery`` counts them: the union per node, a node-less report covering every node).

``cluster_reliability`` is the selector (two queries, however many bookings); ``clusters_reliability_refresh``
stores it on ``Cluster.reliability``, which listing search filters (``min_reliability``) and orders on without a
join to orders (listings sits below orders). The delivery sweep refreshes it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

from listings.models import Cluster
from orders.handovers import _union
from orders.models import Booking, DeliveryIncident

WINDOW = dt.timedelta(days=90)
FINISHED = (Booking.Status.COMPLETED, Booking.Status.SETTLED)
RATIO = Decimal("0.0001")


def cluster_reliability(*, cluster_ids=None, now: dt.datetime | None = None) -> dict[int, Decimal]:
    """``{cluster id: delivered / reserved node-hours}`` over bookings that ended in the 90 days before ``now``
    (completed or settled), rounded half-up to 4 places; clusters without such bookings are left out."""
    now = now or timezone.now()
    bookings = Booking.objects.filter(status__in=FINISHED, end__gt=now - WINDOW, end__lte=now)
    if cluster_ids is not None:
        bookings = bookings.filter(listing__cluster_id__in=list(cluster_ids))
    rows = list(bookings.values_list("pk", "listing__cluster_id", "nodes", "start", "end"))
    if not rows:
        return {}
    windows = {pk: (start, end, nodes) for pk, _, nodes, start, end in rows}
    periods: dict[tuple[int, int | None], list] = defaultdict(list)
    incidents = DeliveryIncident.objects.filter(
        booking_id__in=list(windows), status__in=DeliveryIncident.COUNTED
    ).values_list("booking_id", "node_id", "started_at", "ended_at")
    for booking_id, node_id, started_at, ended_at in incidents:
        start, end, _ = windows[booking_id]
        lo, hi = max(started_at, start), min(ended_at or end, end)
        if hi > lo:
            periods[(booking_id, node_id)].append((lo, hi))
    lost: dict[int, dt.timedelta] = defaultdict(dt.timedelta)
    for (booking_id, node_id), spans in periods.items():
        nodes = 1 if node_id is not None else windows[booking_id][2]
        lost[booking_id] += _union(spans) * nodes
    reserved: dict[int, dt.timedelta] = defaultdict(dt.timedelta)
    missing: dict[int, dt.timedelta] = defaultdict(dt.timedelta)
    for pk, cluster_id, nodes, start, end in rows:
        reserved[cluster_id] += (end - start) * nodes
        missing[cluster_id] += min(lost.get(pk, dt.timedelta()), (end - start) * nodes)
    return {
        cluster_id: (
            Decimal(1) - Decimal(missing[cluster_id].total_seconds()) / Decimal(total.total_seconds())
        ).quantize(RATIO, rounding=ROUND_HALF_UP)
        for cluster_id, total in reserved.items()
        if total
    }


def clusters_reliability_refresh(*, now: dt.datetime | None = None) -> int:
    """Store ``cluster_reliability`` on every cluster (empty where no booking ended in the window); returns how
    many clusters changed. Idempotent; a cluster's reliability is written by this function only."""
    scores = cluster_reliability(now=now)
    changed = 0
    current = dict(Cluster.objects.filter(reliability__isnull=False).values_list("pk", "reliability"))
    for cluster_id, score in scores.items():
        if current.get(cluster_id) != score:
            changed += Cluster.objects.filter(pk=cluster_id).update(reliability=score)
    stale = set(current) - set(scores)
    if stale:
        changed += Cluster.objects.filter(pk__in=stale).update(reliability=None)
    return changed
