"""Settlement writes: settle a completed booking, the lifecycle/expiry sweeps, payouts and reimbursement claims.

Exactly once, whatever the retries: ``booking_settle`` locks the booking row and does nothing unless it is
``completed``; its ledger posting has the unique key ``booking:{id}:settle``; ``BookingSettlement`` is one row
per booking; voucher captures are status-conditional in ``vouchers.services``. All of it commits together with
``booking → settled``, or none of it does.

Sweeps take due rows with ``SELECT … FOR UPDATE SKIP LOCKED`` in batches of ids (keyset order, so a row a service
refuses is not picked again in the same run) and call the conditional-update service of the owning app per row,
each in its own savepoint. A second run is a no-op; two sweepers at once split the rows between them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet, Sum
from django.utils import timezone

from audit.services import audit_record
from ledger.models import LedgerAccount
from ledger.services import account_for, ledger_post
from listings.services import listings_close_expired
from marketplace.core.exceptions import ApplicationError, Conflict, NotFound
from marketplace.core.money import ZERO, to_amount
from orders import bid_services
from orders import services as order_services
from orders.models import Bid, Booking
from settlement.models import BookingSettlement, Payout, ReimbursementClaim
from vouchers import services as voucher_services
from vouchers.models import Redemption, Voucher

logger = logging.getLogger(__name__)

K = LedgerAccount.Kind
S = Booking.Status
DEFAULT_BATCH = 500
SETTLE_SWEEP_BATCH = 50


def platform_fee(subtotal: Decimal) -> Decimal:
    """``subtotal × PLATFORM_FEE_BPS / 10000``, rounded half-up to 2 places."""
    return to_amount(Decimal(subtotal) * settings.PLATFORM_FEE_BPS / Decimal(10000))


def _accounts(*pairs: tuple[str, int | None]) -> list[LedgerAccount]:
    """The ledger accounts ``(kind, owner_id)`` in that order, read in one query; missing ones are created."""
    pairs = tuple((str(kind), owner_id) for kind, owner_id in pairs)
    condition = Q()
    for kind, owner_id in pairs:
        condition |= Q(kind=kind, owner_id=owner_id)
    found = {(a.kind, a.owner_id): a for a in LedgerAccount.objects.filter(condition)}
    return [found.get(pair) or account_for(*pair) for pair in pairs]


def _captured_by_program(booking_id: int) -> dict[int, Decimal]:
    rows = (Redemption.objects.filter(booking_id=booking_id, status=Redemption.Status.CAPTURED)
            .values("voucher__program_id").annotate(total=Sum("amount")).order_by("voucher__program_id"))
    return {row["voucher__program_id"]: row["total"] for row in rows}


def booking_settle(*, booking_id: int, actor=None) -> Booking:
    """Settle a ``completed`` booking and return it ``settled``; a settled booking is returned as is (no writes).

    One database transaction, holding the booking row lock throughout: the held voucher parts are captured to the
    provider's payable (``vouchers.services.redemptions_capture``), then one ledger transaction with key
    ``booking:{id}:settle`` moves wallet_hold(-cash) → provider_payable(+cash - fee), platform_fees(+fee) and,
    per program with a voucher part V, program_funding(+V) / reimbursement_due(-V) — so the provider is owed
    ``subtotal - fee`` in all. It writes a ``BookingSettlement``, one open ``ReimbursementClaim`` per program,
    an audit event, and moves the booking to ``settled`` (``orders.services.booking_mark_settled``).

    Raises ``NotFound`` for an unknown booking and ``Conflict`` (409) when it is in another status than
    ``completed`` or ``settled``, or when the captured voucher parts do not add up to ``booking.voucher_amount``.
    """
    with transaction.atomic():
        found = list(Booking.objects.select_for_update(of=("self",)).filter(pk=booking_id)
                     .annotate(provider_id=F("listing__cluster__data_center__provider_id")))
        if not found:
            raise NotFound("No such booking.")
        booking = found[0]
        if booking.status == S.SETTLED:
            return booking
        if booking.status != S.COMPLETED:
            raise Conflict(f"A {booking.status} booking cannot be settled.", code="not_completed")
        provider_id = booking.provider_id
        payable, wallet_hold, fees = _accounts((K.PROVIDER_PAYABLE, provider_id), (K.WALLET_HOLD, booking.buyer_id),
                                               (K.PLATFORM_FEES, None))
        by_program: dict[int, Decimal] = {}
        if booking.voucher_amount:  # a booking without a voucher part has no redemptions (orders holds none)
            voucher_services.redemptions_capture(booking=booking, destination_account=payable, actor=actor)
            by_program = _captured_by_program(booking.pk)
        voucher_part = sum(by_program.values(), ZERO)
        if voucher_part != booking.voucher_amount:
            raise Conflict(f"Booking {booking.pk}: captured voucher parts {voucher_part} differ from its voucher "
                           f"amount {booking.voucher_amount}.", code="voucher_mismatch")
        fee = platform_fee(booking.subtotal)
        cash = booking.cash_amount
        legs = [(wallet_hold, -cash), (payable, cash - fee), (fees, fee)]
        for program_id, amount in by_program.items():
            legs += [(account_for(K.PROGRAM_FUNDING, program_id), amount),
                     (account_for(K.REIMBURSEMENT_DUE, program_id), -amount)]
        BookingSettlement.objects.create(booking=booking, provider_id=provider_id, subtotal=booking.subtotal,
                                         cash_amount=cash, voucher_amount=voucher_part, fee=fee,
                                         provider_amount=booking.subtotal - fee, settled_at=timezone.now())
        if by_program:
            ReimbursementClaim.objects.bulk_create(
                ReimbursementClaim(program_id=program_id, booking=booking, amount=amount)
                for program_id, amount in by_program.items())
        # The audit chain and the platform-fees account serialise every settlement on their locks until commit:
        # take them last (status change with its audit event, then the posting), so they are held briefly.
        booking = order_services.booking_mark_settled(booking=booking.pk)
        if any(amount for _, amount in legs):
            ledger_post(kind="settle", idempotency_key=f"booking:{booking.pk}:settle", legs=legs,
                        reference=f"booking:{booking.pk}", memo=f"settle booking {booking.pk}")
        audit_record(action="settlement.booking_settled", obj=booking, actor=actor, organization_id=provider_id,
                     data={"subtotal": str(booking.subtotal), "cash": str(cash), "fee": str(fee),
                           "provider_amount": str(booking.subtotal - fee),
                           "claims": {str(p): str(a) for p, a in by_program.items()}})
    return booking


# --- sweeps -------------------------------------------------------------------------------------------------------

def _sweep(queryset: QuerySet, apply: Callable[[int], object], *, batch: int, name: str) -> list[int]:
    """Run ``apply(pk)`` on each row of ``queryset``, locked ``FOR UPDATE SKIP LOCKED`` ``batch`` at a time (one
    transaction per batch, one savepoint per row). Returns the pks ``apply`` succeeded on; an ``ApplicationError``
    (the row changed meanwhile) is logged and skipped."""
    done: list[int] = []
    after = 0
    while True:
        with transaction.atomic():
            ids = list(queryset.select_for_update(of=("self",), skip_locked=True).filter(pk__gt=after)
                       .order_by("pk").values_list("pk", flat=True)[:batch])
            for pk in ids:
                try:
                    with transaction.atomic():
                        apply(pk)
                    done.append(pk)
                except ApplicationError as exc:
                    logger.info("sweep %s: skipped %s: %s", name, pk, exc.message)
        if len(ids) < batch:
            return done
        after = ids[-1]


def sweep_expired_holds(*, batch: int = DEFAULT_BATCH, now: dt.datetime | None = None) -> int:
    """``held`` bookings past ``hold_expires_at`` → ``expired`` (nodes freed, payment released). Returns the count."""
    now = now or timezone.now()
    due = Booking.objects.filter(status=S.HELD, hold_expires_at__lte=now)
    return len(_sweep(due, lambda pk: order_services.booking_expire(booking=pk), batch=batch, name="expired_holds"))


def sweep_started_bookings(*, batch: int = DEFAULT_BATCH, now: dt.datetime | None = None) -> int:
    """``confirmed`` bookings whose start is reached → ``active``. Returns the count."""
    due = Booking.objects.filter(status=S.CONFIRMED, start__lte=now or timezone.now())
    return len(_sweep(due, lambda pk: order_services.booking_activate(booking=pk), batch=batch, name="started"))


def sweep_ended_bookings(*, batch: int = DEFAULT_BATCH, now: dt.datetime | None = None,
                         settle_inline: bool = False) -> int:
    """``active`` bookings whose end is reached → ``completed``, then settlement: enqueued on commit
    (``settlement.tasks.settle_booking``; a broker outage is logged and ``sweep_unsettled`` catches up) or, with
    ``settle_inline=True``, settled here, each in its own transaction. Returns how many were completed."""
    from settlement.tasks import enqueue_settlement  # tasks import services; this import runs late on purpose

    due = Booking.objects.filter(status=S.ACTIVE, end__lte=now or timezone.now())
    completed = _sweep(due, lambda pk: order_services.booking_complete(booking=pk), batch=batch, name="ended")
    if settle_inline:
        for pk in completed:
            booking_settle(booking_id=pk)
    elif completed:
        enqueue_settlement(*completed)
    return len(completed)


def sweep_unsettled(*, batch: int = SETTLE_SWEEP_BATCH) -> int:
    """Settle every ``completed`` booking not being settled right now (locked rows are another worker's): the
    catch-up after a crash, a lost task or a broker outage. Returns how many were settled.

    Batches are small (at most ``SETTLE_SWEEP_BATCH``): a batch commits as one transaction, and settlements hold
    the audit chain and platform-fee locks until then, which every other settlement waits for."""
    due = Booking.objects.filter(status=S.COMPLETED)
    return len(_sweep(due, lambda pk: booking_settle(booking_id=pk), batch=min(batch, SETTLE_SWEEP_BATCH),
                      name="unsettled"))


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


def sweeps_run(*, settle_inline: bool = False, batch: int = DEFAULT_BATCH) -> dict[str, int]:
    """Every sweep once, in lifecycle order; ``{name: rows changed}``. Each sweep failing is logged, not raised,
    so one broken sweep does not stop the others."""
    counts: dict[str, int] = {}
    for name, sweep in SWEEPS.items():
        kwargs = {"batch": batch, **({"settle_inline": settle_inline} if name == "ended_bookings" else {})}
        try:
            counts[name] = sweep(**kwargs)
        except Exception:
            logger.exception("sweep %s failed", name)
            counts[name] = -1
    return counts


# --- payouts and reimbursement claims -----------------------------------------------------------------------------

def payout_batch_create(*, provider_id: int | None = None, until: dt.datetime | None = None) -> list[Payout]:
    """One ``pending`` Payout per provider (or only ``provider_id``) covering its settlements before ``until``
    (default now) not yet in a payout; providers with none get no payout. Each provider's batch is its own
    transaction, and its settlement rows are locked (SKIP LOCKED: a concurrent batcher takes the others), so a
    settlement is in at most one payout. Returns the payouts created."""
    until = until or timezone.now()
    open_settlements = BookingSettlement.objects.filter(payout__isnull=True, settled_at__lt=until)
    if provider_id is not None:
        open_settlements = open_settlements.filter(provider_id=provider_id)
    provider_ids = sorted(set(open_settlements.values_list("provider_id", flat=True)))
    payouts = []
    for pid in provider_ids:
        with transaction.atomic():
            rows = list(open_settlements.filter(provider_id=pid).select_for_update(of=("self",), skip_locked=True)
                        .order_by("pk").values_list("pk", "provider_amount"))
            total = sum((amount for _, amount in rows), ZERO)
            if total <= ZERO:
                continue
            payout = Payout.objects.create(provider_id=pid, amount=total, period_until=until)
            BookingSettlement.objects.filter(pk__in=[pk for pk, _ in rows], payout__isnull=True).update(
                payout=payout)
            audit_record(action="settlement.payout_created", obj=payout, organization_id=pid,
                         data={"amount": str(total), "settlements": len(rows), "until": until.isoformat()})
        payouts.append(payout)
    return payouts


def payout_mark_paid(*, payout: Payout | int, actor=None) -> Payout:
    """``pending`` → ``paid`` once the bank transfer is made: provider_payable(-P) → bank(+P), key
    ``payout:{id}:paid``. A paid payout is returned as is. Raises ``NotFound``; ``InsufficientFunds`` (409)
    should the payable not cover it."""
    pk = payout.pk if isinstance(payout, Payout) else payout
    with transaction.atomic():
        locked = Payout.objects.select_for_update(of=("self",)).filter(pk=pk).first()
        if locked is None:
            raise NotFound("No such payout.")
        if locked.status == Payout.Status.PAID:
            return locked
        ledger_post(kind="payout", idempotency_key=f"payout:{pk}:paid", reference=f"payout:{pk}",
                    legs=[(account_for(K.PROVIDER_PAYABLE, locked.provider_id), -locked.amount),
                          (account_for(K.BANK), locked.amount)])
        now = timezone.now()
        Payout.objects.filter(pk=pk, status=Payout.Status.PENDING).update(
            status=Payout.Status.PAID, paid_at=now, paid_by=_user_or_none(actor), updated_at=now)
        locked.refresh_from_db()
        audit_record(action="settlement.payout_paid", obj=locked, actor=actor, organization_id=locked.provider_id,
                     data={"amount": str(locked.amount)})
    return locked


def _user_or_none(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


def claim_mark_paid(*, claim: ReimbursementClaim | int, actor=None) -> ReimbursementClaim:
    """The city paid a claim: bank(-V) → reimbursement_due(+V), key ``claim:{id}:paid``; ``open`` → ``paid``.
    A paid claim is returned as is (no second posting). Raises ``NotFound``. Callers check that ``actor`` is a
    member of the program's issuer (``selectors.claims_visible_to``)."""
    pk = claim.pk if isinstance(claim, ReimbursementClaim) else claim
    with transaction.atomic():
        locked = (ReimbursementClaim.objects.select_for_update(of=("self",)).select_related("program")
                  .filter(pk=pk).first())
        if locked is None:
            raise NotFound("No such claim.")
        if locked.status == ReimbursementClaim.Status.PAID:
            return locked
        ledger_post(kind="reimburse", idempotency_key=f"claim:{pk}:paid", reference=f"booking:{locked.booking_id}",
                    legs=[(account_for(K.BANK), -locked.amount),
                          (account_for(K.REIMBURSEMENT_DUE, locked.program_id), locked.amount)],
                    memo=f"reimbursement claim {pk}")
        now = timezone.now()
        ReimbursementClaim.objects.filter(pk=pk, status=ReimbursementClaim.Status.OPEN).update(
            status=ReimbursementClaim.Status.PAID, paid_at=now, paid_by=_user_or_none(actor), updated_at=now)
        locked.refresh_from_db()
        audit_record(action="settlement.claim_paid", obj=locked, actor=actor,
                     organization_id=locked.program.issuer_id,
                     data={"amount": str(locked.amount), "booking": locked.booking_id})
    return locked

