"""Celery task of resale: the periodic sweep that withdraws resale asks whose window has started or whose booking
can no longer be resold (``orders.resale_services.resale_asks_sweep``). Beat runs it every minute; it is idempotent
(``SKIP LOCKED`` batches, conditional updates), so overlapping or repeated runs change nothing twice."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from orders import resale_services


@shared_task(
    name="orders.resale_sweep",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    max_retries=3,
    soft_time_limit=50,
    time_limit=55,
)
def resale_sweep() -> int:
    return resale_services.resale_asks_sweep()
