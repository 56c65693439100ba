"""Settlement writes: settle a completed booking, the lifecycle/expiry sweeps, payouts and reimbursement claims.

Exactly once, whatever the retries: ``bookings_settle`` (a batch in one transaction; ``booking_settle`` is its
batch of one) locks the booking rows and settles only those still ``completed``; each ledger posting has the
unique key ``booking:{id}:settle``; ``BookingSettlement`` is one row per booking; voucher captures are
status-conditional in ``vouchers.services``. All of it commits together with ``booking → settled``, or none of it
does.

Sweeps take due rows with ``SELECT … FOR UPDATE SKIP LOCKED`` in batches of ids (keyset order, so a row a service
refuses is not picked again in the same run) and call the conditional-update service of the owning app per row,
each in its own savepoint (``sweep_unsettled`` hands each batch to ``bookings_settle`` whole). A second run is a
no-op; two sweepers at once split the rows between them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Max, QuerySet
from django.utils import timezone

from audit.services import audit_event, audit_record, audit_record_many
from ledger.models import JournalTransaction, LedgerAccount
from ledger.services import Posting, account_for, accounts_for_many, ledger_post, ledger_post_many
from listings.services import listings_close_expired
from marketplace.core.deferred import last_statements
from marketplace.core.exceptions import ApplicationError, Conflict, NotFound
from marketplace.core.locks import is_contention
from marketplace.core.money import ZERO, to_amount
from orders import bid_services
from orders import services as order_services
from orders.models import Bid, Booking
from settlement.models import BookingSettlement, Payout, ReimbursementClaim, ReimbursementStatement
from vouchers import services as voucher_services
from vouchers.models import Redemption, Voucher, VoucherProgram

logger = logging.getLogger(__name__)

K = LedgerAccount.Kind
S = Booking.Status
DEFAULT_BATCH = 500
SETTLE_SWEEP_BATCH = 50


def platform_fee(subtotal: Decimal) -> Decimal:
    """``subtotal × PLATFORM_FEE_BPS / 10000``, rounded half-up to 2 places."""
    return to_amount(Decimal(subtotal) * settings.PLATFORM_FEE_BPS / Decimal(10000))


def booking_settle(*, booking_id: int, actor=None) -> Booking:
    """Settle a ``completed`` booking and return it ``settled``; a settled booking is returned as is (no writes).

    The batch of one of ``bookings_settle`` (see there for what is written), except that it waits for the booking's
    row lock instead of skipping a locked booking, and refuses instead of skipping: one transaction, holding the
    booking row lock throughout, so five concurrent calls settle once and all return the settled booking.

    Raises ``NotFound`` for an unknown booking and ``Conflict`` (409) when it is in another status than
    ``completed`` or ``settled``, or when its voucher parts do not add up to ``booking.voucher_amount``;
    ``ledger.services.InsufficientFunds`` (409) when its cash hold is short. Nothing is written when it raises.
    """
    with transaction.atomic():
        found = list(
            Booking.objects.select_for_update(of=("self",))
            .filter(pk=booking_id)
            .annotate(provider_id=F("listing__cluster__data_center__provider_id"))
        )
        if not found:
            raise NotFound("No such booking.")
        booking = found[0]
        if booking.status == S.SETTLED:
            return booking
        if booking.status != S.COMPLETED:
            raise Conflict(f"A {booking.status} booking cannot be settled.", code="not_completed")
        refused = _settle_locked([booking], actor=actor)
        if refused:
            raise refused[booking.pk]
    return booking


def bookings_settle(*, booking_ids: Iterable[int], actor=None) -> list[Booking]:
    """Settle the ``completed`` bookings among ``booking_ids`` in ONE transaction; returns those it settled (now
    ``settled``), in pk order. What the settlement tasks and ``sweep_unsettled`` call.

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
    locked in one global order: two batches cannot deadlock) and the audit events last, so the two locks every
    settlement queues on (platform fees, audit chain) are held for the last statements only.

    A booking that cannot be settled (voucher parts not adding up to its voucher amount, a short cash hold, an
    integrity error from bad data) is logged and left ``completed``; the others are settled (after such an error
    the batch is redone one booking at a time, each in a savepoint). Raises only operational database errors
    (a lost connection, …), which the task retries.
    """
    ids = sorted({int(pk) for pk in booking_ids})
    if not ids:
        return []
    with transaction.atomic():
        bookings = list(
            Booking.objects.select_for_update(of=("self",), skip_locked=True)
            .filter(pk__in=ids, status=S.COMPLETED)
            .annotate(provider_id=F("listing__cluster__data_center__provider_id"))
            .order_by("pk")
        )
        if not bookings:
            return []
        try:
            with transaction.atomic():
                refused: dict[int, Exception] = dict(_settle_locked(bookings, actor=actor))
        except (ApplicationError, IntegrityError) as exc:
            if len(bookings) == 1:
                refused = {bookings[0].pk: exc}
            else:  # which booking failed is unknown: one at a time, so the others still settle
                refused = {}
                for booking in bookings:
                    try:
                        with transaction.atomic():
                            refused.update(_settle_locked([booking], actor=actor))
                    except (ApplicationError, IntegrityError) as one:
                        refused[booking.pk] = one
        for pk, exc in refused.items():
            # A refusal is a known business state; an integrity error is a bug or bad data: make it loud.
            log = logger.warning if isinstance(exc, ApplicationError) else logger.error
            log("bookings_settle: booking %s not settled: %s", pk, getattr(exc, "message", exc))
    return [booking for booking in bookings if booking.pk not in refused]


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


def _settle_locked(bookings: list[Booking], *, actor=None) -> dict[int, ApplicationError]:
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
    programs = sorted({program_id for _, by_program in batch for program_id in by_program})
    accounts = accounts_for_many(
        [
            (K.PLATFORM_FEES, None),
            *(
                (kind, b.provider_id if kind == K.PROVIDER_PAYABLE else b.buyer_id)
                for b, _ in batch
                for kind in (K.PROVIDER_PAYABLE, K.WALLET_HOLD)
            ),
            *((kind, program_id) for program_id in programs for kind in (K.PROGRAM_FUNDING, K.REIMBURSEMENT_DUE)),
        ]
    )
    fees = accounts[(K.PLATFORM_FEES, None)]
    captures = voucher_services.redemptions_capture_many(
        destinations={b.pk: accounts[(K.PROVIDER_PAYABLE, b.provider_id)] for b, by_program in batch if by_program},
        actor=actor,
    )
    now = timezone.now()
    postings, settlements, claims, events = list(captures.postings), [], [], []
    for booking, by_program in batch:
        fee = platform_fee(booking.subtotal)
        cash = booking.cash_amount
        legs = [
            (accounts[(K.WALLET_HOLD, booking.buyer_id)], -cash),
            (accounts[(K.PROVIDER_PAYABLE, booking.provider_id)], cash - fee),
            (fees, fee),
        ]
        for program_id, amount in by_program.items():
            legs += [
                (accounts[(K.PROGRAM_FUNDING, program_id)], amount),
                (accounts[(K.REIMBURSEMENT_DUE, program_id)], -amount),
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
                subtotal=booking.subtotal,
                cash_amount=cash,
                voucher_amount=booking.voucher_amount,
                fee=fee,
                provider_amount=booking.subtotal - fee,
                settled_at=now,
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
                    "cash": str(cash),
                    "fee": str(fee),
                    "provider_amount": str(booking.subtotal - fee),
                    "claims": {str(p): str(a) for p, a in by_program.items()},
                },
            )
        )
    BookingSettlement.objects.bulk_create(settlements)
    ReimbursementClaim.objects.bulk_create(claims)
    # The platform-fees account and the audit chain serialise every settlement on their locks until commit: take
    # them last (the entries, the status changes with their events, the settlement events), so they are held for
    # the last few statements only.
    ledger_post_many(postings)
    moved = order_services.bookings_mark_settled(booking_ids=[b.pk for b, _ in batch], actor=actor)
    if len(moved) != len(batch):  # cannot happen while we hold the row locks; never settle without the status
        raise Conflict("A booking changed while being settled; try again.", code="concurrent_update")
    audit_record_many([*captures.events, *events])
    for booking, _ in batch:
        booking.status = S.SETTLED
    return refused


# --- sweeps -------------------------------------------------------------------------------------------------------


def _sweep(queryset: QuerySet, apply: Callable[[int], object], *, batch: int, name: str) -> list[int]:
    """Run ``apply(pk)`` on each row of ``queryset``, locked ``FOR UPDATE SKIP LOCKED`` ``batch`` at a time (one
    transaction per batch, one savepoint per row). Returns the pks ``apply`` succeeded on; an ``ApplicationError``
    (the row changed meanwhile) is logged and skipped, and so is a row whose savepoint lost a deadlock or a
    serialization failure (rolled back to the savepoint: its locks are gone; the next run takes it again).

    The rows' audit events all go in at the end of the batch (``last_statements``): the audit chain's lock is held
    until COMMIT, and a batch that took it for its first row would hold it while it locks the next rows' counters,
    vouchers and wallets, which concurrent requests hold while they wait for it (``marketplace.core.locks``)."""
    done: list[int] = []
    after = 0
    while True:
        with transaction.atomic(), last_statements():
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
    due = Booking.objects.filter(status=S.HELD, hold_expires_at__lte=now)
    return len(_sweep(due, lambda pk: order_services.booking_expire(booking=pk), batch=batch, name="expired_holds"))


def sweep_started_bookings(*, batch: int = DEFAULT_BATCH, now: dt.datetime | None = None) -> int:
    """``confirmed`` bookings whose start is reached → ``active``. Returns the count."""
    due = Booking.objects.filter(status=S.CONFIRMED, start__lte=now or timezone.now())
    return len(_sweep(due, lambda pk: order_services.booking_activate(booking=pk), batch=batch, name="started"))


def sweep_ended_bookings(
    *, batch: int = DEFAULT_BATCH, now: dt.datetime | None = None, settle: Callable[..., object] | None = None
) -> int:
    """``active`` bookings whose end is reached → ``completed``, then settlement: ``settle(*ids)`` when given (the
    Celery task passes ``settlement.tasks.enqueue_settlement``: tasks call services, never the reverse), else settled
    here (``bookings_settle``, a transaction per ``SETTLE_SWEEP_BATCH``). Returns how many were completed."""
    due = Booking.objects.filter(status=S.ACTIVE, end__lte=now or timezone.now())
    completed = _sweep(due, lambda pk: order_services.booking_complete(booking=pk), batch=batch, name="ended")
    if completed and settle is not None:
        settle(*completed)
    else:
        for i in range(0, len(completed), SETTLE_SWEEP_BATCH):
            bookings_settle(booking_ids=completed[i : i + SETTLE_SWEEP_BATCH])
    return len(completed)


def sweep_unsettled(*, batch: int = SETTLE_SWEEP_BATCH) -> int:
    """Settle every ``completed`` booking not being settled right now (locked rows are another worker's): the
    catch-up after a crash, a lost task or a broker outage. Returns how many were settled.

    Takes at most ``SETTLE_SWEEP_BATCH`` due bookings at a time ``FOR UPDATE SKIP LOCKED`` (keyset order, so two
    sweepers split them) and settles each batch with ``bookings_settle``, one transaction per batch; a booking it
    refuses stays ``completed`` and is not picked again in this run."""
    batch = max(1, min(batch, SETTLE_SWEEP_BATCH))
    settled, after = 0, 0
    while True:
        with transaction.atomic():
            ids = list(
                Booking.objects.select_for_update(of=("self",), skip_locked=True)
                .filter(status=S.COMPLETED, pk__gt=after)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch]
            )
            if ids:  # locked by us, so bookings_settle (SKIP LOCKED against others only) takes them all
                settled += len(bookings_settle(booking_ids=ids))
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


def sweeps_run(*, settle: Callable[..., object] | None = None, batch: int = DEFAULT_BATCH) -> dict[str, int]:
    """Every sweep once, in lifecycle order; ``{name: rows changed}``; ``settle`` as in ``sweep_ended_bookings``.
    Each sweep failing is logged, not raised, so one broken sweep does not stop the others."""
    counts: dict[str, int] = {}
    for name, sweep in SWEEPS.items():
        kwargs = {"batch": batch, **({"settle": settle} if name == "ended_bookings" else {})}
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
            rows = list(
                open_settlements.filter(provider_id=pid)
                .select_for_update(of=("self",), skip_locked=True)
                .order_by("pk")
                .values_list("pk", "provider_amount")
            )
            total = sum((amount for _, amount in rows), ZERO)
            if total <= ZERO:
                continue
            payout = Payout.objects.create(provider_id=pid, amount=total, period_until=until)
            BookingSettlement.objects.filter(pk__in=[pk for pk, _ in rows], payout__isnull=True).update(payout=payout)
            audit_record(
                action="settlement.payout_created",
                obj=payout,
                organization_id=pid,
                data={"amount": str(total), "settlements": len(rows), "until": until.isoformat()},
            )
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
        ledger_post(
            kind=JournalTransaction.Kind.PAYOUT,
            idempotency_key=f"payout:{pk}:paid",
            reference=f"payout:{pk}",
            legs=[
                (account_for(K.PROVIDER_PAYABLE, locked.provider_id), -locked.amount),
                (account_for(K.BANK), locked.amount),
            ],
        )
        now = timezone.now()
        Payout.objects.filter(pk=pk, status=Payout.Status.PENDING).update(
            status=Payout.Status.PAID, paid_at=now, paid_by=_user_or_none(actor), updated_at=now
        )
        locked.refresh_from_db()
        audit_record(
            action="settlement.payout_paid",
            obj=locked,
            actor=actor,
            organization_id=locked.provider_id,
            data={"amount": str(locked.amount)},
        )
    return locked


def _user_or_none(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


def _receive_reimbursement(
    *, program_id: int, amount: Decimal, idempotency_key: str, reference: str, memo: str
) -> None:
    """The city's payment arrived: bank(-amount) → the program's reimbursement_due(+amount), one posting."""
    ledger_post(
        kind=JournalTransaction.Kind.REIMBURSE,
        idempotency_key=idempotency_key,
        reference=reference,
        memo=memo,
        legs=[(account_for(K.BANK), -amount), (account_for(K.REIMBURSEMENT_DUE, program_id), amount)],
    )


def claim_mark_paid(*, claim: ReimbursementClaim | int, actor=None) -> ReimbursementClaim:
    """The city paid a claim: bank(-V) → reimbursement_due(+V), key ``claim:{id}:paid``; ``open`` → ``paid``.
    A paid claim is returned as is (no second posting). Raises ``NotFound``, and ``Conflict`` (409, code
    ``in_statement``) for a claim listed on a statement: only ``statement_mark_paid`` pays those, so the city's money
    is received once. Callers check that ``actor`` is a member of the program's issuer
    (``selectors.claims_visible_to``)."""
    pk = claim.pk if isinstance(claim, ReimbursementClaim) else claim
    with transaction.atomic():
        locked = (
            ReimbursementClaim.objects.select_for_update(of=("self",)).select_related("program").filter(pk=pk).first()
        )
        if locked is None:
            raise NotFound("No such claim.")
        if locked.statement_id is not None:  # read under the row lock: statements_issue sets it holding that lock
            raise Conflict(
                f"Claim {pk} is listed on statement {locked.statement_id}: pay the statement instead.",
                code="in_statement",
            )
        if locked.status == ReimbursementClaim.Status.PAID:
            return locked
        _receive_reimbursement(
            program_id=locked.program_id,
            amount=locked.amount,
            idempotency_key=f"claim:{pk}:paid",
            reference=f"booking:{locked.booking_id}",
            memo=f"reimbursement claim {pk}",
        )
        now = timezone.now()
        ReimbursementClaim.objects.filter(pk=pk, status=ReimbursementClaim.Status.OPEN).update(
            status=ReimbursementClaim.Status.PAID, paid_at=now, paid_by=_user_or_none(actor), updated_at=now
        )
        locked.refresh_from_db()
        audit_record(
            action="settlement.claim_paid",
            obj=locked,
            actor=actor,
            organization_id=locked.program.issuer_id,
            data={"amount": str(locked.amount), "booking": locked.booking_id},
        )
    return locked


# --- reimbursement statements -------------------------------------------------------------------------------------

STATEMENT_OVERLAP_CONSTRAINT = "statement_no_overlap"


def month_start(moment: dt.datetime) -> dt.datetime:
    """00:00 UTC on the 1st of ``moment``'s month (in UTC)."""
    return moment.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def statements_issue(
    *, until: dt.datetime | None = None, program_id: int | None = None
) -> list[ReimbursementStatement]:
    """One ``issued`` statement per voucher program (or only ``program_id``) listing its open claims created before
    ``until`` that are on no statement yet; programs with none get no statement. Returns the statements created.

    ``until`` (default: 00:00 UTC on the 1st of the current month, so the monthly beat states last month) ends the
    period. The period starts where the program's latest statement ended, so a program's periods follow each other
    without gap or overlap (the database refuses overlaps); a program's first statement starts on the 1st of the
    month of its oldest claim. A claim committed after the statement of its period was issued (created just before
    ``until`` by a settlement still running) is carried into the next one. Issuing again for a period already
    stated creates nothing.

    Each program is its own transaction; its claim rows are locked ``FOR UPDATE SKIP LOCKED`` (a concurrent issuer
    takes the others, and ``claim_mark_paid`` waits), so a claim is on at most one statement. Of two issuers racing
    for the same program and period one wins; the other's claims wait for the next period. Each statement is
    audited (``settlement.statement_issued``).

    Raises ``ApplicationError`` (400) for a naive or future ``until``.
    """
    now = timezone.now()
    until = until or month_start(now)
    if timezone.is_naive(until):
        raise ApplicationError("until needs a time zone.", errors={"until": ["Give a time zone, e.g. UTC."]})
    if until > now:
        raise ApplicationError(
            "A statement cannot cover the future.", errors={"until": ["Must not be later than now."]}
        )
    unstated = ReimbursementClaim.objects.filter(
        status=ReimbursementClaim.Status.OPEN, statement__isnull=True, created_at__lt=until
    )
    if program_id is not None:
        unstated = unstated.filter(program_id=program_id)
    program_ids = sorted(set(unstated.values_list("program_id", flat=True)))
    issuers = dict(VoucherProgram.objects.filter(pk__in=program_ids).values_list("pk", "issuer_id"))
    statements = []
    for pid in program_ids:
        statement = _statement_issue_for_program(
            claims=unstated.filter(program_id=pid), program_id=pid, issuer_id=issuers[pid], until=until, now=now
        )
        if statement is not None:
            statements.append(statement)
    return statements


def _statement_issue_for_program(
    *, claims: QuerySet, program_id: int, issuer_id: int, until: dt.datetime, now: dt.datetime
) -> ReimbursementStatement | None:
    with transaction.atomic():
        rows = list(
            claims.select_for_update(of=("self",), skip_locked=True)
            .order_by("pk")
            .values_list("pk", "amount", "created_at")
        )
        if not rows:
            return None
        # Read after taking the claim locks: a statement committed meanwhile moves the start past it.
        latest_end = ReimbursementStatement.objects.filter(program_id=program_id).aggregate(end=Max("period_end"))[
            "end"
        ]
        period_start = latest_end or month_start(min(created for _, _, created in rows))
        if period_start >= until:  # already stated up to ``until``: these claims go on the next statement
            return None
        total = sum((amount for _, amount, _ in rows), ZERO)
        try:
            with transaction.atomic():
                statement = ReimbursementStatement.objects.create(
                    program_id=program_id, period_start=period_start, period_end=until, total=total, issued_at=now
                )
        except IntegrityError as exc:
            # A concurrent issuer stated this period first (it waited for us or we for it on the exclusion).
            if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) != STATEMENT_OVERLAP_CONSTRAINT:
                raise
            logger.info(
                "statements_issue: program %s already has a statement for [%s, %s)", program_id, period_start, until
            )
            return None
        listed = ReimbursementClaim.objects.filter(pk__in=[pk for pk, _, _ in rows], statement__isnull=True).update(
            statement=statement, updated_at=now
        )
        if listed != len(rows):  # cannot happen while we hold the row locks; never issue a wrong total
            raise Conflict(
                f"Program {program_id}: {len(rows) - listed} claims changed while being stated.",
                code="statement_mismatch",
            )
        audit_record(
            action="settlement.statement_issued",
            obj=statement,
            organization_id=issuer_id,
            data={
                "program": program_id,
                "total": str(total),
                "claims": len(rows),
                "period_start": period_start.isoformat(),
                "period_end": until.isoformat(),
            },
        )
    return statement


def statement_mark_paid(*, statement: ReimbursementStatement | int, actor=None) -> ReimbursementStatement:
    """The city paid a statement: one ledger posting bank(-T) → reimbursement_due(+T) with key
    ``statement:{id}:paid``, the statement and every claim on it → ``paid`` (``paid_at``, ``paid_by``), an audit
    event (``settlement.statement_paid``). A paid statement is returned as is: paying twice, or twice at once
    (the statement row lock serialises them), posts once.

    Raises ``NotFound``; ``Conflict`` (409) should its claims no longer add up to its total. Callers check that
    ``actor`` may pay it (``selectors.can_pay_statement``).
    """
    pk = statement.pk if isinstance(statement, ReimbursementStatement) else statement
    with transaction.atomic():
        locked = (
            ReimbursementStatement.objects.select_for_update(of=("self",))
            .select_related("program")
            .filter(pk=pk)
            .first()
        )
        if locked is None:
            raise NotFound("No such statement.")
        if locked.status == ReimbursementStatement.Status.PAID:
            return locked
        claims = list(
            ReimbursementClaim.objects.select_for_update(of=("self",))
            .filter(statement_id=pk)
            .order_by("pk")
            .values_list("amount", "status")
        )
        listed = sum((amount for amount, _ in claims), ZERO)
        if listed != locked.total or any(status != ReimbursementClaim.Status.OPEN for _, status in claims):
            raise Conflict(
                f"Statement {pk}: its open claims ({listed}) no longer match its total ({locked.total}).",
                code="statement_mismatch",
            )
        if locked.total:
            _receive_reimbursement(
                program_id=locked.program_id,
                amount=locked.total,
                idempotency_key=f"statement:{pk}:paid",
                reference=f"statement:{pk}",
                memo=f"reimbursement statement {pk} ({len(claims)} claims)",
            )
        now = timezone.now()
        user = _user_or_none(actor)
        ReimbursementStatement.objects.filter(pk=pk, status=ReimbursementStatement.Status.ISSUED).update(
            status=ReimbursementStatement.Status.PAID, paid_at=now, paid_by=user, updated_at=now
        )
        ReimbursementClaim.objects.filter(statement_id=pk, status=ReimbursementClaim.Status.OPEN).update(
            status=ReimbursementClaim.Status.PAID, paid_at=now, paid_by=user, updated_at=now
        )
        locked.refresh_from_db()
        audit_record(
            action="settlement.statement_paid",
            obj=locked,
            actor=actor,
            organization_id=locked.program.issuer_id,
            data={"total": str(locked.total), "claims": len(claims), "program": locked.program_id},
        )
    return locked
