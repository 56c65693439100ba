"""Disputes of a booking's delivery (issue 20).

The buyer may dispute a booking from its start until ``DISPUTE_WINDOW`` (48 h) after its end, while it is not
settled yet (``dispute_open``). Settlement waits for that window: a completed booking is settled only once
``end + DISPUTE_WINDOW`` has passed (``settlement.services.settlement_due``, the one place that reads this constant
for settlement), so the whole window is open to the buyer and their money stays held until it closes. While a
dispute is ``open`` settlement leaves the booking ``completed`` however late it is (``settlement.services`` skips
it, re-checked under the booking's row lock, which ``dispute_open`` takes too: of a dispute and a settlement
racing at the window's edge, exactly one wins). Platform staff resolve it (``dispute_resolve``): ``credit`` the
whole subtotal, a ``partial`` credit of a given amount, or ``reject`` with a reason. The next settlement run
(``sweep_unsettled``, every minute) then settles the booking, if its window has closed, and pays a credit through
the same path as SLA credits (``settlement.credit_services``: before the capture, one ``service_credit`` posting
per booking).

A dispute filed at the very end of the window races the settlement of the booking: whichever takes the booking's
row lock first wins; a booking settled already answers 409.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext

from audit.services import audit_record
from marketplace.core.exceptions import ApplicationError, Conflict, NotFound
from marketplace.core.locks import retry_on_contention
from marketplace.core.money import ZERO, to_amount
from marketplace.core.pipeline import advance
from orders.handovers import booking_locked
from orders.models import Booking, BookingDispute

# How long after a booking's end its buyer may dispute it, and so how long settlement waits (one constant: the
# user-visible messages say "48 hours").
DISPUTE_WINDOW = dt.timedelta(hours=48)
DISPUTABLE = (Booking.Status.CONFIRMED, Booking.Status.ACTIVE, Booking.Status.COMPLETED)
DECISIONS = ("credit", "partial", "reject")
DisputeStatus = BookingDispute.Status


def _provider_id(booking: Booking) -> int:
    return booking.listing.cluster.data_center.provider_id


@retry_on_contention
def dispute_open(*, booking: Booking, actor, reason: str, now: dt.datetime | None = None) -> BookingDispute:
    """The buyer disputes ``booking`` with a ``reason``. 400 when the reason is empty or the window (its start to
    48 h after its end) is not open; 409 when it is settled, not running or completed, or already disputed.
    Holds the booking's row lock (the one settlement takes) while it checks and writes."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    with transaction.atomic():
        locked = booking_locked(booking.pk)
        if not reason:
            raise ApplicationError(gettext("Invalid dispute."), errors={"reason": [gettext("Say what went wrong.")]})
        if now > locked.end + DISPUTE_WINDOW:
            raise ApplicationError(
                gettext("A booking can be disputed until 48 hours after it ended."), code="dispute_window_closed"
            )
        if locked.status == Booking.Status.SETTLED:
            raise Conflict(gettext("This booking is settled already."), code="settled")
        if locked.status not in DISPUTABLE or now < locked.start:
            raise Conflict(gettext("Only a running or completed booking can be disputed."), code="not_running")
        if BookingDispute.objects.filter(booking=locked).exists():
            raise Conflict(gettext("This booking is disputed already."), code="disputed")
        dispute = BookingDispute.objects.create(
            booking=locked, raised_by=actor if getattr(actor, "is_authenticated", False) else None, reason=reason
        )
        audit_record(
            action="orders.booking_disputed",
            obj=dispute,
            actor=actor,
            organization_id=locked.buyer_id,
            data={"booking": locked.pk, "reason": reason[:500]},
        )
    return dispute


@retry_on_contention
def dispute_resolve(
    *, dispute: BookingDispute | int, actor, decision: str, amount=None, note: str = ""
) -> BookingDispute:
    """Platform staff resolve an open dispute: ``credit`` (the booking's whole subtotal), ``partial`` (``amount``,
    more than zero and less than the subtotal) or ``reject`` (``note`` required). 400 on bad input, 404 for an
    unknown dispute, 409 when it is resolved already. Locks the booking, then the dispute (the lock order of
    ``dispute_open``); settlement pays the credit when it next runs."""
    note = (note or "").strip()
    if decision not in DECISIONS:
        raise ApplicationError(
            gettext("Invalid decision."), errors={"decision": [gettext("Choose credit, partial or reject.")]}
        )
    if decision == "reject" and not note:
        raise ApplicationError(gettext("Invalid decision."), errors={"note": [gettext("Say why it is rejected.")]})
    pk = dispute.pk if isinstance(dispute, BookingDispute) else dispute
    now = timezone.now()
    with transaction.atomic():
        booking_id = BookingDispute.objects.filter(pk=pk).values_list("booking_id", flat=True).first()
        if booking_id is None:
            raise NotFound(gettext("No such dispute."))
        booking = booking_locked(booking_id)
        locked = BookingDispute.objects.select_for_update().get(pk=pk)
        if locked.status != DisputeStatus.OPEN:
            raise Conflict(gettext("This dispute is resolved already."), code="resolved")
        credit = ZERO
        if decision == "credit":
            credit = booking.subtotal
        elif decision == "partial":
            credit = _partial_amount(amount, booking.subtotal)
        if decision != "reject" and credit <= ZERO:
            raise ApplicationError(
                gettext("Invalid decision."),
                errors={"decision": [gettext("A booking of no value cannot be credited.")]},
            )
        status = DisputeStatus.REJECTED if decision == "reject" else DisputeStatus.CREDITED
        advance(
            locked,
            status,
            credit_amount=credit,
            resolution_note=note,
            resolved_by=actor if getattr(actor, "is_authenticated", False) else None,
            resolved_at=now,
        )
        audit_record(
            action="orders.dispute_resolved",
            obj=locked,
            actor=actor,
            organization_id=_provider_id(booking),
            data={"booking": booking.pk, "decision": decision, "credit": str(credit), "note": note[:500]},
        )
    return locked


def _partial_amount(amount, subtotal: Decimal) -> Decimal:
    try:
        value = to_amount(Decimal(str(amount)))
    except (InvalidOperation, TypeError, ValueError):
        value = None
    if value is None or not ZERO < value < subtotal:
        raise ApplicationError(
            gettext("Invalid decision."),
            errors={"amount": [gettext("A partial credit is more than zero and less than the booking's subtotal.")]},
        )
    return value


def disputes_for_review() -> QuerySet[BookingDispute]:
    """Every dispute, open ones first, then newest first (what staff review)."""
    return (
        BookingDispute.objects.select_related("booking")
        .annotate(
            open_first=Case(
                When(status=DisputeStatus.OPEN, then=Value(0)), default=Value(1), output_field=IntegerField()
            )
        )
        .order_by("open_first", "-created_at", "-id")
    )
