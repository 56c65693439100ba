"""Celery task of delivery: the periodic sweep that opens the outages of silent nodes and turns outages during
bookings into incidents (``orders.handovers.delivery_sweep``). Beat runs it every minute; it is idempotent, so
overlapping or repeated runs change nothing twice."""

from __future__ import annotations

from celery import shared_task

from marketplace.core.tasks import db_task_options
from orders import handovers, reliability


@shared_task(name="orders.delivery_sweep", **db_task_options(soft_time_limit=50, time_limit=55))
def delivery_sweep() -> dict[str, int]:
    return handovers.delivery_sweep()


@shared_task(name="orders.reliability_refresh", **db_task_options(soft_time_limit=300, time_limit=330))
def reliability_refresh() -> int:
    """Every cluster's 90-day reliability (``orders.reliability``; beat, every ten minutes)."""
    return reliability.clusters_reliability_refresh()
