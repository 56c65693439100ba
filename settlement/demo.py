"""Demo settlement for ``manage.py seed_demo``.

``replay`` runs the demo's recent past forward through the real sweeps and payout batches, so the demo shows
bookings that ran and were settled, provider payouts and reimbursement claims; ``seed`` then
states the open claims so far on one statement per program. Both are idempotent: a step already taken changes
nothing the second time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.utils import timezone

from orders.disputes import DISPUTE_WINDOW
from orders.models import Booking
from settlement.models import Payout
from settlement.payout_services import payout_batch_create, payout_mark_paid, statements_issue
from settlement.sweep_services import sweeps_run

PAYDAY_DELAY = dt.timedelta(days=1, hours=10)  # platform staff pay a Monday's batch on Tuesday morning


def replay(move_to: Callable[[dt.datetime], None], *, since: dt.datetime, until: dt.datetime, stdout=None) -> None:
    """Move the clock (``move_to``, see ``marketplace.core.clock``) from ``since`` to ``until`` over every start and
    end of a booking in between, every close of a booking's dispute window (``DISPUTE_WINDOW`` after its end, when
    the sweeps settle it: only bookings that ended that long before ``until`` show as settled), every Monday 00:00 UTC and the Tuesday morning after it; at each step run the
    sweeps (settling inline), on Mondays the weekly payout batch, on Tuesdays platform staff (``sam``) mark that
    batch paid (payouts the beat made meanwhile are left to staff). Raises ``RuntimeError`` if a sweep fails."""
    mondays = _mondays(since, until)
    paydays = {monday + PAYDAY_DELAY for monday in mondays if monday + PAYDAY_DELAY <= until}
    periods = Booking.objects.filter(start__lt=until, end__gt=since - DISPUTE_WINDOW).values_list("start", "end")
    moments = {
        moment for start, end in periods for moment in (start, end, end + DISPUTE_WINDOW) if since < moment <= until
    }
    staff = get_user_model().objects.filter(username="sam").first()
    batches: dict[dt.datetime, list[Payout]] = {}  # payday → the payouts made that Monday (only those: not real ones)
    for moment in sorted(moments | set(mondays) | paydays):
        move_to(moment)
        failed = [name for name, count in sweeps_run().items() if count < 0]
        if failed:
            raise RuntimeError(f"demo replay: sweeps {failed} failed at {moment:%Y-%m-%d %H:%M}")
        if moment in mondays:
            batches[moment + PAYDAY_DELAY] = payout_batch_create(until=moment)
        for payout in batches.pop(moment, []):  # a payday: the batch of the Monday before
            payout_mark_paid(payout=payout, actor=staff)
    if stdout:
        settled = Booking.objects.filter(status=Booking.Status.SETTLED).count()
        paid = Payout.objects.filter(status=Payout.Status.PAID).count()
        stdout.write(
            f"  settlement: {settled} bookings settled, {Payout.objects.count()} payouts ({paid} paid) "
            f"since {since:%Y-%m-%d}"
        )


def _mondays(since: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
    """Every Monday 00:00 UTC in (since, until], in order."""
    day = since.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    day += dt.timedelta(days=(7 - day.weekday()) % 7)
    mondays = []
    while day <= until:
        mondays.append(day)
        day += dt.timedelta(days=7)
    return mondays


def seed(stdout=None) -> dict:
    """State the open claims so far on one reimbursement statement per program."""
    statements = statements_issue(until=timezone.now())
    if stdout:
        stdout.write(f"  settlement: {len(statements)} reimbursement statements issued")
    return {}
