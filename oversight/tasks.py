"""Celery tasks of oversight: thin wrappers around ``oversight.flags``."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.db import DatabaseError
from django.utils import timezone

from marketplace.core.tasks import db_task_options
from oversight import audit_lag, flags, hardware_flags, resale_flags
from settlement.tasks import send_many

# Each periodic run looks back this far: several runs overlap, so a missed run or a slow commit loses nothing
# (the rules are idempotent); a full recomputation is ``flags_compute()`` with no ``since``.
LOOKBACK = dt.timedelta(days=2)

logger = logging.getLogger(__name__)


@shared_task(name="oversight.compute_flags", **db_task_options(max_retries=5, soft_time_limit=240, time_limit=300))
def compute_flags(full: bool = False) -> int:
    """Run the anomaly rules over recent voucher bookings (all of them when ``full``); returns new flags."""
    return flags.flags_compute(since=None if full else timezone.now() - LOOKBACK)


@shared_task(name="oversight.flags_for_booking", **db_task_options(max_retries=5))
def flags_for_booking(booking_id: int) -> int:
    """The rules for one settled voucher booking (sent by ``on_voucher_bookings_settled``)."""
    return flags.flags_for_booking(booking_id)


def on_voucher_bookings_settled(sender, *, booking_ids: list[int], **kwargs) -> None:
    """Receiver of ``settlement.signals.voucher_bookings_settled``: one ``flags_for_booking`` per booking, sent
    without ever raising into settlement (``send_many`` logs a broker outage; ``compute_flags`` catches up)."""
    send_many(flags_for_booking, [(booking_id,) for booking_id in booking_ids])


def on_inventory_mismatched(sender, *, cluster_id: int, node_id: int, mismatches: list, **kwargs) -> None:
    """Receiver of ``listings.signals.inventory_mismatched`` (sent after the report committed): flag the cluster's
    live voucher bookings (``hardware_flags``), never raising into the agent's request."""
    try:
        hardware_flags.flag_hardware_mismatch(cluster_id=cluster_id, node_id=node_id, mismatches=mismatches)
    except DatabaseError:
        logger.exception("could not flag the hardware mismatch of cluster %s", cluster_id)


def on_resale_above_price(sender, *, sale_id: int, **kwargs) -> None:
    """Receiver of ``orders.signals.resale_above_price`` (sent after the purchase committed): flag the resale at
    once (one small INSERT), never raising into orders — a database error is logged and the flag is not made."""
    try:
        resale_flags.flag_resale_above_price(sale_id=sale_id)
    except DatabaseError:
        logger.exception("could not flag resale %s above its voucher-paid price", sale_id)


@shared_task(name="oversight.check_audit_lag", **db_task_options(soft_time_limit=50, time_limit=60))
def check_audit_lag() -> bool:
    """Raise the open audit-lag flag when the sequencer lags (``oversight.audit_lag``); True when one was raised."""
    return audit_lag.audit_lag_check() is not None
