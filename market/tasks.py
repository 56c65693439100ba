"""Celery tasks of the price index: thin wrappers around ``market.services``."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from market import services
from marketplace.core.tasks import db_task_options

# The daily run recomputes this many closed days: a day's trades can still change status after midnight (a hold
# confirmed, a booking cancelled), and a missed run is caught up the next day. Recomputing is idempotent.
RECOMPUTE_DAYS = 2


@shared_task(name="market.compute_fixings", **db_task_options(max_retries=5, soft_time_limit=240, time_limit=300))
def compute_fixings(day: str | None = None) -> int:
    """The fixings of ``day`` (ISO date, UTC) or, without one, of the last ``RECOMPUTE_DAYS`` closed days; returns
    the number of rows written."""
    if day is not None:
        return len(services.fixings_compute(day=dt.date.fromisoformat(day)))
    return services.fixings_backfill(days=RECOMPUTE_DAYS)
