"""Celery tasks for the audit reporting layer: thin wrappers around ``audit.flags``."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from audit import flags

# Each periodic run looks back this far: several runs overlap, so a missed run or a slow commit loses nothing
# (the rules are idempotent); a full recomputation is ``flags_compute()`` with no ``since``.
LOOKBACK = dt.timedelta(days=2)


@shared_task(name="audit.compute_flags", ignore_result=True, acks_late=True, reject_on_worker_lost=True,
             autoretry_for=(OperationalError, InterfaceError), retry_backoff=2, max_retries=5,
             soft_time_limit=240, time_limit=300)
def compute_flags(full: bool = False) -> int:
    """Run the anomaly rules over recent voucher bookings (all of them when ``full``); returns new flags."""
    return flags.flags_compute(since=None if full else timezone.now() - LOOKBACK)


@shared_task(name="audit.flags_for_booking", ignore_result=True, acks_late=True, reject_on_worker_lost=True,
             autoretry_for=(OperationalError, InterfaceError), retry_backoff=2, max_retries=5)
def flags_for_booking(booking_id: int) -> int:
    """The settlement hook, as a task (``flags_for_booking.delay_on_commit(booking.pk)``)."""
    return flags.flags_for_booking(booking_id)
