"""Settlement writes: settle completed bookings (the sweeps are in ``sweep_services``, payouts, claims and
statements in ``payout_services``).

When: a ``completed`` booking is settled only once the buyer's dispute window has closed, ``DISPUTE_WINDOW``
(``orders.disputes``, 48 h) after its end (``settlement_due``), and while no dispute of it is ``open``. Until then
the buyer's money stays held (cash in the wallet hold, voucher parts as held redemptions) and the provider is owed
nothing yet. ``sweep_unsettled`` (every minute) settles each booking as its window closes; ``booking_settle``
refuses an earlier settlement (409 ``dispute_window_open``) and the batch skips it. The booking's end never
changes once it is ``completed``, so the window is read with its row lock like the rest.

Exactly once, whatever the retries: ``bookings_settle`` (a batch in one transaction; ``booking_settle`` is its
batch of one) locks the booking rows and settles only those still ``completed``; each ledger posting has the
unique key ``booking:{id}:settle``; ``BookingSettlement`` is one row per booking; voucher captures are
status-conditional in ``vouchers.services``. All of it commits together with ``booking → settled``, or none of it
does.

Service credits (issue 20, ``credit_services``): a booking with incident node-hours beyond its listing's SLA, or
with a dispute staff resolved with a credit, credits its buyer before the capture, in the same transaction, and
settles only what is left. A booking with an ``open`` dispute is not settled until staff resolve it: the batch
skips it (``booking_settle`` refuses it, 409), re-checked after its row lock is taken, the lock a dispute takes too.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.translation import gettext

from audit.services import audit_event, audit_record_many
from ledger.models import JournalTransaction, LedgerAccount
from ledger.services import Posting, accounts_for_many, ledger_post_many
from marketplace.core.exceptions import ApplicationError, Conflict, NotFound
from marketplace.core.money import ZERO, to_amount
from orders import services as order_services
from orders.disputes import DISPUTE_WINDOW
from orders.models import Booking, BookingDispute, DeliveryIncident
from settlement.credit_services import CreditPlan, credit_plans
from settlement.models import BookingSettlement, ReimbursementClaim, ServiceCredit
from vouchers import services as voucher_services
from vouchers.models import Redemption

logger = logging.getLogger(__name__)

AccountKind = LedgerAccount.Kind
BookingStatus = Booking.Status
# Bookings settled in one transaction (``bookings_settle``): by the sweeps, and per ``settle_bookings`` message.
SETTLE_BATCH = 50


def platform_fee(subtotal: Decimal) -> Decimal:
    """``subtotal × PLATFORM_FEE_BPS / 10000``, rounded half-up to 2 places."""
    return to_amount(Decimal(subtotal) * settings.PLATFORM_FEE_BPS / Decimal(10000))


def settlement_due(*, now: dt.datetime | None = None) -> dt.datetime:
    """The latest end of a booking that may be settled at ``now`` (default: the current time): its dispute window
    (``orders.disputes.DISPUTE_WINDOW`` after its end) has closed when ``end <= settlement_due(now=now)``."""
    return (now or timezone.now()) - DISPUTE_WINDOW


def booking_settle(*, booking_id: int, actor=None, now: dt.datetime | None = None) -> Booking:
    """Settle a ``completed`` booking whose dispute window has closed at ``now`` (default: the current time) and
    return it ``settled``; a settled booking is returned as is (no writes).

    The batch of one of ``bookings_settle`` (see there for what is written), except that it waits for the booking's
    row lock instead of skipping a locked booking, and refuses instead of skipping: one transaction, holding the
    booking row lock throughout, so five concurrent calls settle once and all return the settled booking.

    Raises ``NotFound`` for an unknown booking and ``Conflict`` (409) when it is in another status than
    ``completed`` or ``settled`` (code ``not_completed``), has an open dispute (``disputed``) or an incident its
    buyer reported awaiting review (``incident_under_review``), ended less than ``DISPUTE_WINDOW`` before ``now``
    (``dispute_window_open``), or when its voucher parts do not add up to ``booking.voucher_amount``;
    ``ledger.services.InsufficientFunds`` (409) when its cash hold is short. Nothing is written when it raises.
    ``now`` decides only whether the window has closed; what is written is stamped with the current time.
    """
    due = settlement_due(now=now)
    with transaction.atomic():
        found = list(
            Booking.objects.select_for_update(of=("self",))
            .filter(pk=booking_id)
            .annotate(provider_id=F("listing__cluster__data_center__provider_id"))
        )
        if not found:
            raise NotFound(gettext("No such booking."))
        booking = found[0]
        if booking.status == BookingStatus.SETTLED:
            return booking
        if booking.status != BookingStatus.COMPLETED:
            raise Conflict(
                gettext("A %(status)s booking cannot be settled.") % {"status": booking.get_status_display().lower()},
                code="not_completed",
            )
        held = _held_for_review([booking.pk]).get(booking.pk)
        if held == "disputed":
            raise Conflict(
                gettext("This booking is disputed: it is settled once staff resolve the dispute."), code="disputed"
            )
        if held == "incident_under_review":
            raise Conflict(
                gettext(
                    "An incident the buyer reported awaits review by platform staff: the booking is settled once "
                    "they decide."
                ),
                code="incident_under_review",
            )
        if booking.end > due:
            raise Conflict(
                gettext("This booking is settled once its dispute window closes, 48 hours after it ended."),
                code="dispute_window_open",
            )
        refused = _settle_locked([booking], actor=actor, now=now)
        if refused:
            raise refused[booking.pk]
    return booking


def bookings_settle(*, booking_ids: Iterable[int], actor=None, now: dt.datetime | None = None) -> list[Booking]:
    """Settle the ``completed`` bookings among ``booking_ids`` whose dispute window has closed at ``now`` (default:
    the current time) and that wait for no staff decision (``under_review``), in ONE transaction; returns those it
    settled (now ``settled``), in pk order. What the settlement tasks and ``sweep_unsettled`` call. A booking still
    in its window or under review is skipped (left ``completed``, nothing written for it), not refused.

    Exactly once, whatever the retries: the bookings are locked ``FOR UPDATE SKIP LOCKED`` in pk order and only
    those still ``completed`` are settled (ids settled already, in another status or unknown are ignored; a locked
    one is another transaction's, which settles it, or, should it roll back, ``sweep_unsettled`` does later), so a
    retry or a redelivered batch settles only what is not settled yet. Per booking, as ever: its held voucher
    parts are captured to the provider's payable (``vouchers.services.redemptions_capture_many``, keys
    ``booking:{id}:voucher:{vid}:capture``); one ledger transaction with key ``booking:{id}:settle`` moves
    wallet_hold(-cash) → provider_payable(+cash - fee), platform_fees(+fee) and, per program with a voucher part V,
    program_funding(+V) / reimbursement_due(-V), so the provider is owed ``subtotal - fee`` in all; one
    ``BookingSettlement``, one open ``ReimbursementClaim`` per program, ``completed → settled`` with its status
    change and ``booking.settled`` event (``orders.services.bookings_mark_settled``) and a
    ``settlement.booking_settled`` audit event. In bulk: one statement per kind of row for the whole batch; all
    ledger entries in one INSERT in account order (the platform-fees account and the other shared accounts are
    locked in one global order: two batches cannot deadlock) as late as possible, so the lock every settlement
    queues on (the platform-fees account) is held for the last statements only; the audit events are plain INSERTs
    (no lock).

    A booking that cannot be settled (voucher parts not adding up to its voucher amount, a short cash hold, an
    integrity error from bad data) is logged and left ``completed``; the others are settled (after such an error
    the batch is redone one booking at a time, each in a savepoint). Raises only operational database errors
    (a lost connection, …), which the task retries.
    """
    ids = sorted({int(pk) for pk in booking_ids})
    if not ids:
        return []
    due = settlement_due(now=now)
    with transaction.atomic():
        bookings = list(
            Booking.objects.select_for_update(of=("self",), skip_locked=True)
            # Row conditions of a FOR UPDATE query are re-checked on the locked row version: the status and the
            # window are read under the lock.
            .filter(pk__in=ids, status=BookingStatus.COMPLETED, end__lte=due)
            .exclude(under_review())
            .annotate(provider_id=F("listing__cluster__data_center__provider_id"))
            .order_by("pk")
        )
        # Again under the row locks, in a new statement (a new snapshot): a dispute or a report committed after the
        # query above began but before we got the lock is seen here, so such a booking is never settled.
        held = _held_for_review([b.pk for b in bookings])
        bookings = [b for b in bookings if b.pk not in held]
        if not bookings:
            return []
        try:
            with transaction.atomic():
                refused: dict[int, Exception] = dict(_settle_locked(bookings, actor=actor, now=now))
        except (ApplicationError, IntegrityError) as exc:
            if len(bookings) == 1:
                refused = {bookings[0].pk: exc}
            else:  # which booking failed is unknown: one at a time, so the others still settle
                refused = {}
                for booking in bookings:
                    try:
                        with transaction.atomic():
                            refused.update(_settle_locked([booking], actor=actor, now=now))
                    except (ApplicationError, IntegrityError) as one:
                        refused[booking.pk] = one
        for pk, exc in refused.items():
            # A refusal is a known business state; an integrity error is a bug or bad data: make it loud.
            log = logger.warning if isinstance(exc, ApplicationError) else logger.error
            log("bookings_settle: booking %s not settled: %s", pk, getattr(exc, "message", exc))
    return [booking for booking in bookings if booking.pk not in refused]


def under_review():
    """A condition on ``Booking`` rows: the booking waits for platform staff — it has an open dispute, or an incident
    its buyer reported that is not decided yet (accepting it changes the SLA credit, so settling first would pay the
    provider for time that was not delivered). Such a booking is not settled, whatever its window."""
    return Exists(BookingDispute.objects.filter(booking=OuterRef("pk"), status=BookingDispute.Status.OPEN)) | Exists(
        DeliveryIncident.objects.filter(booking=OuterRef("pk"), status=DeliveryIncident.Status.REPORTED)
    )


def _held_for_review(booking_ids: list[int]) -> dict[int, str]:
    """``{booking id: why}`` for those of ``booking_ids`` that wait for staff (``under_review``): ``"disputed"`` or
    ``"incident_under_review"``. One statement of its own: call holding the bookings' row locks."""
    if not booking_ids:
        return {}
    rows = (
        Booking.objects.filter(pk__in=booking_ids)
        .annotate(
            disputed=Exists(BookingDispute.objects.filter(booking=OuterRef("pk"), status=BookingDispute.Status.OPEN))
        )
        .filter(under_review())
        .values_list("pk", "disputed")
    )
    return {pk: "disputed" if disputed else "incident_under_review" for pk, disputed in rows}


def _voucher_parts(bookings: list[Booking]) -> dict[int, dict[int, Decimal]]:
    """``{booking id: {program id: held or captured voucher part}}`` for the bookings with a voucher part. Read
    without row locks: only a booking's own transitions change its redemptions, and we hold its row lock."""
    parts: dict[int, dict[int, Decimal]] = defaultdict(dict)
    with_vouchers = [b.pk for b in bookings if b.voucher_amount]
    if with_vouchers:  # a booking without a voucher part has no redemptions (orders holds none)
        rows = Redemption.objects.filter(
            booking_id__in=with_vouchers, status__in=[Redemption.Status.HELD, Redemption.Status.CAPTURED]
        ).values_list("booking_id", "voucher__program_id", "amount")
        for booking_id, program_id, amount in rows:
            parts[booking_id][program_id] = parts[booking_id].get(program_id, ZERO) + amount
    return parts


def _settle_locked(
    bookings: list[Booking], *, actor=None, now: dt.datetime | None = None
) -> dict[int, ApplicationError]:
    """Settle ``bookings`` (locked by the caller, ``completed``, annotated with ``provider_id``, in pk order) in
    the caller's transaction; see ``bookings_settle``. Returns the bookings refused before anything was written
    for them (voucher mismatch) with the error; sets ``status`` on the others. Raises ``ApplicationError`` (e.g.
    ``InsufficientFunds``) with nothing of the batch written when the caller rolls back its savepoint."""
    refused: dict[int, ApplicationError] = {}
    parts = _voucher_parts(bookings)
    batch: list[tuple[Booking, dict[int, Decimal]]] = []
    for booking in bookings:
        by_program = dict(sorted(parts.get(booking.pk, {}).items()))
        voucher_part = sum(by_program.values(), ZERO)
        if voucher_part != booking.voucher_amount:
            refused[booking.pk] = Conflict(
                f"Booking {booking.pk}: captured voucher parts {voucher_part} differ from "
                f"its voucher amount {booking.voucher_amount}.",
                code="voucher_mismatch",
            )
        else:
            batch.append((booking, by_program))
    if not batch:
        return refused
    plans = credit_plans([b for b, _ in batch], now=now)
    programs = sorted({program_id for _, by_program in batch for program_id in by_program})
    accounts = accounts_for_many(
        [
            (AccountKind.PLATFORM_FEES, None),
            *(
                (kind, b.provider_id if kind == AccountKind.PROVIDER_PAYABLE else b.buyer_id)
                for b, _ in batch
                for kind in (AccountKind.PROVIDER_PAYABLE, AccountKind.WALLET_HOLD)
            ),
            *((AccountKind.WALLET, b.buyer_id) for b, _ in batch if b.pk in plans and plans[b.pk].cash_share),
            *(
                (kind, program_id)
                for program_id in programs
                for kind in (AccountKind.PROGRAM_FUNDING, AccountKind.REIMBURSEMENT_DUE)
            ),
        ]
    )
    fees = accounts[(AccountKind.PLATFORM_FEES, None)]
    captures = voucher_services.redemptions_capture_many(
        destinations={
            b.pk: accounts[(AccountKind.PROVIDER_PAYABLE, b.provider_id)] for b, by_program in batch if by_program
        },
        credits={pk: plan.voucher_share for pk, plan in plans.items() if plan.voucher_share},
        actor=actor,
    )
    settled_at = timezone.now()  # the real time (``now`` only decides which windows have closed)
    postings, settlements, claims, events = list(captures.postings), [], [], []
    credits: list[ServiceCredit] = []
    for booking, by_program in batch:
        plan = plans.get(booking.pk)
        credited_voucher: dict[int, Decimal] = {}
        if plan is not None:
            credited_voucher = captures.credited.get(booking.pk, {})
            by_program = {p: a - credited_voucher.get(p, ZERO) for p, a in by_program.items()}
            by_program = {p: a for p, a in by_program.items() if a > ZERO}
            credit = _credit_posting(booking, plan, captures.credit_legs.get(booking.pk, []), accounts)
            postings.append(credit.posting)
            credits.append(credit.row)
            events.append(credit.event(actor))
        voucher_credit = sum(credited_voucher.values(), ZERO)
        cash_credit = plan.cash_share if plan else ZERO
        subtotal = booking.subtotal - voucher_credit - cash_credit
        fee = platform_fee(subtotal)
        cash = booking.cash_amount - cash_credit
        legs = [
            (accounts[(AccountKind.WALLET_HOLD, booking.buyer_id)], -cash),
            (accounts[(AccountKind.PROVIDER_PAYABLE, booking.provider_id)], cash - fee),
            (fees, fee),
        ]
        for program_id, amount in by_program.items():
            legs += [
                (accounts[(AccountKind.PROGRAM_FUNDING, program_id)], amount),
                (accounts[(AccountKind.REIMBURSEMENT_DUE, program_id)], -amount),
            ]
        if any(amount for _, amount in legs):
            postings.append(
                Posting(
                    kind=JournalTransaction.Kind.SETTLE,
                    idempotency_key=f"booking:{booking.pk}:settle",
                    legs=legs,
                    reference=f"booking:{booking.pk}",
                    memo=f"settle booking {booking.pk}",
                )
            )
        settlements.append(
            BookingSettlement(
                booking_id=booking.pk,
                provider_id=booking.provider_id,
                subtotal=subtotal,
                cash_amount=cash,
                voucher_amount=booking.voucher_amount - voucher_credit,
                fee=fee,
                provider_amount=subtotal - fee,
                settled_at=settled_at,
            )
        )
        claims += [
            ReimbursementClaim(program_id=program_id, booking_id=booking.pk, amount=amount)
            for program_id, amount in by_program.items()
        ]
        events.append(
            audit_event(
                action="settlement.booking_settled",
                obj=booking,
                actor=actor,
                organization_id=booking.provider_id,
                data={
                    "subtotal": str(booking.subtotal),
                    "credit": str(voucher_credit + cash_credit),
                    "cash": str(cash),
                    "fee": str(fee),
                    "provider_amount": str(subtotal - fee),
                    "claims": {str(p): str(a) for p, a in by_program.items()},
                },
            )
        )
    BookingSettlement.objects.bulk_create(settlements)
    ServiceCredit.objects.bulk_create(credits)
    ReimbursementClaim.objects.bulk_create(claims)
    # The platform-fees account serialises every settlement on its lock until commit: post last (the entries, then
    # the status changes with their events and the settlement events, which take no lock), so it is held for the
    # last few statements only.
    ledger_post_many(postings)
    moved = order_services.bookings_mark_settled(booking_ids=[b.pk for b, _ in batch], actor=actor)
    if len(moved) != len(batch):  # cannot happen while we hold the row locks; never settle without the status
        raise Conflict(gettext("A booking changed while being settled; try again."), code="concurrent_update")
    audit_record_many([*captures.events, *events])
    for booking, _ in batch:
        booking.status = BookingStatus.SETTLED
    return refused


@dataclass
class _Credit:
    posting: Posting
    row: ServiceCredit
    data: dict

    def event(self, actor):
        return audit_event(
            action="settlement.service_credit",
            obj=self.row.booking,
            actor=actor,
            organization_id=self.row.booking.buyer_id,
            data=self.data,
        )


def _credit_posting(booking: Booking, plan: CreditPlan, voucher_legs: list, accounts: dict) -> _Credit:
    """The booking's one ``service_credit`` posting (key ``booking:{id}:service_credit``): the cash share
    wallet_hold → wallet, and the voucher legs ``redemptions_capture_many`` credited (voucher_hold → voucher or
    program budget); its ``ServiceCredit`` row and audit data, with the amounts actually credited."""
    voucher_credit = sum((amount for _, amount in voucher_legs if amount > ZERO), ZERO)
    legs = list(voucher_legs)
    if plan.cash_share:
        legs += [
            (accounts[(AccountKind.WALLET_HOLD, booking.buyer_id)], -plan.cash_share),
            (accounts[(AccountKind.WALLET, booking.buyer_id)], plan.cash_share),
        ]
    amount = voucher_credit + plan.cash_share
    row = ServiceCredit(
        booking=booking,
        sla_percent=plan.sla_percent,
        reserved_node_hours=plan.reserved_node_hours,
        incident_node_hours=plan.incident_node_hours,
        credited_node_hours=plan.credited_node_hours,
        sla_amount=plan.sla_amount,
        dispute_amount=plan.dispute_amount,
        amount=amount,
        cash_amount=plan.cash_share,
        voucher_amount=voucher_credit,
        created_at=timezone.now(),
    )
    posting = Posting(
        kind=JournalTransaction.Kind.SERVICE_CREDIT,
        idempotency_key=f"booking:{booking.pk}:service_credit",
        legs=legs,
        reference=f"booking:{booking.pk}",
        memo=f"service credit of booking {booking.pk}",
    )
    data = {
        "sla_percent": str(plan.sla_percent),
        "reserved_node_hours": str(plan.reserved_node_hours),
        "incident_node_hours": str(plan.incident_node_hours),
        "credited_node_hours": str(plan.credited_node_hours),
        "sla_amount": str(plan.sla_amount),
        "dispute_amount": str(plan.dispute_amount),
        "amount": str(amount),
        "cash": str(plan.cash_share),
        "voucher": str(voucher_credit),
    }
    return _Credit(posting=posting, row=row, data=data)
