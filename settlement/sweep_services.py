"""The lifecycle and expiry sweeps (Celery beat, every minute).

Sweeps take due rows with ``SELECT … FOR UPDATE SKIP LOCKED`` in batches of ids (keyset order, so a row a service
refuses is not picked again in the same run) and call the conditional-update service of the owning app per row,
each in its own savepoint (``sweep_unsettled`` hands each batch to ``services.bookings_settle`` whole). A second run
is a no-op; two sweepers at once split the rows between them.

A booking ends (``sweep_ended_bookings``: ``active → completed``) at its end, and is settled by ``sweep_unsettled``
once the buyer's dispute window (``orders.disputes.DISPUTE_WINDOW``, 48 h after the end) has closed and no dispute
of it is open (``services.settlement_due``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from django.db import DatabaseError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from ledger.models import LedgerAccount
from listings.services import listings_close_expired
from marketplace.core.exceptions import ApplicationError
from marketplace.core.locks import is_contention
from orders import bid_services
from orders import services as order_services
from orders.models import Bid, Booking
from settlement.services import SETTLE_BATCH, bookings_settle, settlement_due, under_review
from vouchers import services as voucher_services
from vouchers.models import Voucher

logger = logging.getLogger(__name__)

AccountKind = LedgerAccount.Kind
BookingStatus = Booking.Status
DEFAULT_BATCH = 500


def _sweep(queryset: QuerySet, apply: Callable[[int], object], *, batch: int, name: str) -> list[int]:
    """Run ``apply(pk)`` on each row of ``queryset``, locked ``FOR UPDATE SKIP LOCKED`` ``batch`` at a time (one
    transaction per batch, one savepoint per row). Returns the pks ``apply`` succeeded on; an ``ApplicationError``
    (the row changed meanwhile) is logged and skipped, and so is a row whose savepoint lost a deadlock or a
    serialization failure (rolled back to the savepoint: its locks are gone; the next run takes it again)."""
    done: list[int] = []
    after = 0
    while True:
        with transaction.atomic():
            ids = list(
                queryset.select_for_update(of=("self",), skip_locked=True)
                .filter(pk__gt=after)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch]
            )
            for pk in ids:
                try:
                    with transaction.atomic():
                        apply(pk)
                    done.append(pk)
                except ApplicationError as exc:
                    logger.info("sweep %s: skipped %s: %s", name, pk, exc.message)
                except DatabaseError as exc:
                    if not is_contention(exc):
                        raise
                    logger.info("sweep %s: skipped %s (contention: %s)", name, pk, type(exc.__cause__).__name__)
        if len(ids) < batch:
            return done
        after = ids[-1]


def sweep_expired_holds(*, batch: int = DEFAULT_BATCH, now: dt.datetime | None = None) -> int:
    """``held`` bookings past ``hold_expires_at`` → ``expired`` (nodes freed, payment released). Returns the count."""
    now = now or timezone.now()
    due = Booking.objects.filter(status=BookingStatus.HELD, hold_expires_at__lte=now)
    return len(_sweep(due, lambda pk: order_services.booking_expire(booking=pk), batch=batch, name="expired_holds"))


def sweep_started_bookings(*, batch: int = DEFAULT_BATCH, now: dt.datetime | None = None) -> int:
    """``confirmed`` bookings whose start is reached → ``active``. Returns the count."""
    due = Booking.objects.filter(status=BookingStatus.CONFIRMED, start__lte=now or timezone.now())
    return len(_sweep(due, lambda pk: order_services.booking_activate(booking=pk), batch=batch, name="started"))


def sweep_ended_bookings(
    *, batch: int = DEFAULT_BATCH, now: dt.datetime | None = None, settle: Callable[..., object] | None = None
) -> int:
    """``active`` bookings whose end is reached → ``completed``. Returns how many were completed.

    They are settled later, once their dispute window has closed (``sweep_unsettled``). Only those of them whose
    window has closed already (ended more than ``DISPUTE_WINDOW`` ago: the sweeps were down that long) are settled
    at once: ``settle(*ids)`` when given (the Celery task passes ``settlement.tasks.enqueue_settlement``: tasks call
    services, never the reverse), else here (``bookings_settle``, a transaction per ``SETTLE_BATCH``)."""
    now = now or timezone.now()
    due = Booking.objects.filter(status=BookingStatus.ACTIVE, end__lte=now)
    completed = _sweep(due, lambda pk: order_services.booking_complete(booking=pk), batch=batch, name="ended")
    overdue = sorted(
        Booking.objects.filter(pk__in=completed, end__lte=settlement_due(now=now)).values_list("pk", flat=True)
    )
    if overdue and settle is not None:
        settle(*overdue)
    else:
        for i in range(0, len(overdue), SETTLE_BATCH):
            bookings_settle(booking_ids=overdue[i : i + SETTLE_BATCH], now=now)
    return len(completed)


def sweep_unsettled(
    *,
    batch: int = SETTLE_BATCH,
    now: dt.datetime | None = None,
    on_settled: Callable[[list[Booking]], object] | None = None,
) -> int:
    """Settle every ``completed`` booking whose dispute window has closed at ``now`` (default: the current time;
    ``services.settlement_due``), that waits for no staff decision (an open dispute or a reported incident:
    ``services.under_review``) and is not being settled right now (locked rows are
    another worker's): how bookings are settled, and the catch-up after a crash, a lost task or a broker outage.
    Returns how many were settled; ``on_settled(bookings)`` is called with each batch settled, after it committed
    (the Celery task announces voucher bookings with it).

    Takes at most ``SETTLE_BATCH`` due bookings at a time ``FOR UPDATE SKIP LOCKED`` (keyset order, so two
    sweepers split them) and settles each batch with ``bookings_settle``, one transaction per batch; a booking it
    refuses or skips (a dispute or a report made meanwhile) stays ``completed`` and is not picked again in this run."""
    batch = max(1, min(batch, SETTLE_BATCH))
    now = now or timezone.now()
    settled, after = 0, 0
    while True:
        done: list[Booking] = []
        with transaction.atomic():
            ids = list(
                Booking.objects.select_for_update(of=("self",), skip_locked=True)
                .filter(status=BookingStatus.COMPLETED, end__lte=settlement_due(now=now), pk__gt=after)
                .exclude(under_review())
                .order_by("pk")
                .values_list("pk", flat=True)[:batch]
            )
            if ids:  # locked by us, so bookings_settle (SKIP LOCKED against others only) takes them all
                done = bookings_settle(booking_ids=ids, now=now)
        settled += len(done)
        if done and on_settled is not None:
            on_settled(done)
        if len(ids) < batch:
            return settled
        after = ids[-1]


def sweep_expired_bids(*, batch: int = DEFAULT_BATCH, now: dt.datetime | None = None) -> int:
    """``open`` bids past ``expires_at`` → ``expired``, their hold released (``orders.bid_services.bid_expire``)."""
    due = Bid.objects.filter(status=Bid.Status.OPEN, expires_at__lte=now or timezone.now())
    return len(_sweep(due, lambda pk: bid_services.bid_expire(bid=pk), batch=batch, name="expired_bids"))


def sweep_expired_vouchers(*, batch: int = DEFAULT_BATCH, now: dt.datetime | None = None) -> int:
    """Active vouchers past ``expires_at`` → expired, their unheld balance back to the program budget."""
    now = now or timezone.now()
    due = Voucher.objects.filter(status=Voucher.Status.ACTIVE, expires_at__lte=now)

    def expire(pk: int) -> None:
        voucher_services.voucher_expire(voucher=Voucher.objects.get(pk=pk), now=now)

    return len(_sweep(due, expire, batch=batch, name="expired_vouchers"))


def sweep_closed_listings(*, batch: int = DEFAULT_BATCH, now: dt.datetime | None = None) -> int:
    """Listings past their window → closed (``listings.services.listings_close_expired``)."""
    return listings_close_expired(now=now, batch_size=batch)


SWEEPS: dict[str, Callable[..., int]] = {
    "expired_holds": sweep_expired_holds,
    "started_bookings": sweep_started_bookings,
    "ended_bookings": sweep_ended_bookings,
    "unsettled": sweep_unsettled,
    "expired_bids": sweep_expired_bids,
    "expired_vouchers": sweep_expired_vouchers,
    "closed_listings": sweep_closed_listings,
}


def sweeps_run(
    *,
    settle: Callable[..., object] | None = None,
    on_settled: Callable[[list[Booking]], object] | None = None,
    batch: int = DEFAULT_BATCH,
    now: dt.datetime | None = None,
) -> dict[str, int]:
    """Every sweep once, in lifecycle order, at ``now`` (default: the current time); ``{name: rows changed}``;
    ``settle`` as in ``sweep_ended_bookings``, ``on_settled`` as in ``sweep_unsettled``. Each sweep failing is
    logged, not raised, so one broken sweep does not stop the others."""
    counts: dict[str, int] = {}
    for name, sweep in SWEEPS.items():
        kwargs = {"batch": batch, "now": now}
        if name == "ended_bookings":
            kwargs["settle"] = settle
        elif name == "unsettled":
            kwargs["on_settled"] = on_settled
        try:
            counts[name] = sweep(**kwargs)
        except Exception:
            logger.exception("sweep %s failed", name)
            counts[name] = -1
    return counts
