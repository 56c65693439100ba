"""Celery tasks of oversight: thin wrappers around ``oversight.flags``."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from oversight import flags
from settlement.tasks import send_many

# Each periodic run looks back this far: several runs overlap, so a missed run or a slow commit loses nothing
# (the rules are idempotent); a full recomputation is ``flags_compute()`` with no ``since``.
LOOKBACK = dt.timedelta(days=2)


@shared_task(
    name="oversight.compute_flags",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    max_retries=5,
    soft_time_limit=240,
    time_limit=300,
)
def compute_flags(full: bool = False) -> int:
    """Run the anomaly rules over recent voucher bookings (all of them when ``full``); returns new flags."""
    return flags.flags_compute(since=None if full else timezone.now() - LOOKBACK)


@shared_task(
    name="oversight.flags_for_booking",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    max_retries=5,
)
def flags_for_booking(booking_id: int) -> int:
    """The rules for one settled voucher booking (sent by ``on_voucher_bookings_settled``)."""
    return flags.flags_for_booking(booking_id)


def on_voucher_bookings_settled(sender, *, booking_ids: list[int], **kwargs) -> None:
    """Receiver of ``settlement.signals.voucher_bookings_settled``: one ``flags_for_booking`` per booking, sent
    without ever raising into settlement (``send_many`` logs a broker outage; ``compute_flags`` catches up)."""
    send_many(flags_for_booking, [(booking_id,) for booking_id in booking_ids])
