"""Celery tasks: thin wrappers (ids in, one service call). Enqueue through ``enqueue_settlement`` so a broker
outage never breaks the request or sweep that asked: the failure is logged and ``sweep_unsettled`` catches up."""

from __future__ import annotations

import logging

import kombu.exceptions
import redis.exceptions
from celery import shared_task
from django.db import InterfaceError, OperationalError, transaction

from marketplace.core.exceptions import ApplicationError
from marketplace.core.tasks import BROKER_ERRORS, fail_fast_connection
from settlement import payout_services, services, sweep_services
from settlement.signals import voucher_bookings_settled

logger = logging.getLogger(__name__)

# Worth retrying: the database or the broker went away for a moment (a failover, a restart, a dropped connection).
TRANSIENT_ERRORS = (
    OperationalError,
    InterfaceError,
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
RETRY = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "retry_jitter": True,
    "max_retries": 10,
    "acks_late": True,
    "reject_on_worker_lost": True,
}


@shared_task(name="settlement.settle_booking", ignore_result=True, **RETRY)
def settle_booking(booking_id: int) -> str | None:
    """Settle one completed booking (idempotent). A booking that cannot be settled is logged, not retried.
    A booking paid with vouchers is then announced (``signals.voucher_bookings_settled``: oversight checks it for
    anomalies) after the settlement committed, so a flag failure can never undo a settlement."""
    try:
        booking = services.booking_settle(booking_id=booking_id)
    except ApplicationError as exc:
        logger.warning("settle_booking %s: %s", booking_id, exc.message)
        return None
    announce_settled([booking], sender=settle_booking)
    return booking.status


@shared_task(name="settlement.settle_bookings", ignore_result=True, **RETRY)
def settle_bookings(booking_ids: list[int]) -> int:
    """Settle a batch of bookings in one transaction (``services.bookings_settle``; what the sweeps enqueue: one
    message per batch instead of per booking) and return how many it settled. A retry after a transient error, or
    the redelivery of a batch whose worker died, settles only what is not settled yet. Voucher bookings are then
    announced after the commit, as in ``settle_booking``."""
    settled = services.bookings_settle(booking_ids=booking_ids)
    announce_settled(settled, sender=settle_bookings)
    return len(settled)


def announce_settled(bookings, *, sender=None) -> None:
    """Send ``signals.voucher_bookings_settled`` for those of the settled ``bookings`` paid with vouchers (call
    after the settlement committed)."""
    flagged = [booking.pk for booking in bookings if booking.voucher_amount]
    if flagged:
        voucher_bookings_settled.send(sender=sender or announce_settled, booking_ids=flagged)


@shared_task(name="settlement.run_sweeps", ignore_result=True, **RETRY)
def run_sweeps() -> dict[str, int]:
    """Every sweep once (beat, every minute). Concurrent runs are safe: rows are taken with SKIP LOCKED. Bookings
    are settled by the ``unsettled`` sweep as their dispute windows close; voucher bookings among them are
    announced as the settlement tasks announce theirs."""
    return sweep_services.sweeps_run(settle=enqueue_settlement, on_settled=announce_settled)


@shared_task(name="settlement.create_weekly_payouts", ignore_result=True, **RETRY)
def create_weekly_payouts() -> list[int]:
    """Pending payouts for every provider's settlements so far (beat, weekly)."""
    return [payout.pk for payout in payout_services.payout_batch_create()]


def send_safely(task, *args) -> bool:
    """``task.apply_async(args)`` now; False (logged) when the broker is unreachable. See ``send_many``."""
    return send_many(task, [args]) == 1


def send_many(task, args_list) -> int:
    """Send ``task`` once per args tuple over one broker connection that fails fast (no connect or publish
    retries: a caller must never hang on an outage). Returns how many were sent; stops at the first broker error
    and logs it, so the caller carries on and the sweeps do the rest later."""
    args_list = list(args_list)
    sent = 0
    try:
        with fail_fast_connection(task.app) as conn:
            for args in args_list:
                task.apply_async(args=args, retry=False, connection=conn)
                sent += 1
    except BROKER_ERRORS as exc:
        logger.warning(
            "could not enqueue %s%r (%d of %d sent): %s (the sweeps will catch up)",
            task.name,
            tuple(args_list[sent]),
            sent,
            len(args_list),
            exc,
        )
    return sent


def enqueue_settlement(*booking_ids: int, batch: int = services.SETTLE_BATCH) -> None:
    """Send settlement tasks for the ids once the current transaction commits (at once outside one):
    ``settle_booking`` for one id, ``settle_bookings`` per ``batch`` ids for more. Never raises on a broker
    outage (see ``send_many``)."""
    ids = list(booking_ids)
    if len(ids) == 1:
        transaction.on_commit(lambda: send_many(settle_booking, [(ids[0],)]))
    elif ids:
        chunks = [(ids[i : i + batch],) for i in range(0, len(ids), batch)]
        transaction.on_commit(lambda: send_many(settle_bookings, chunks))


@shared_task(name="settlement.issue_monthly_statements", ignore_result=True, **RETRY)
def issue_monthly_statements() -> list[int]:
    """Last month's reimbursement statement for every program with open claims (beat, 1st of the month).
    Idempotent: a period already stated gets no second statement."""
    return [statement.pk for statement in payout_services.statements_issue()]
