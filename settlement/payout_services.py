"""Payouts to providers, and reimbursement claims and statements paid by the cities."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from audit.services import audit_record
from ledger.models import JournalTransaction, LedgerAccount
from ledger.services import account_for, ledger_post
from marketplace.core.exceptions import ApplicationError, Conflict, NotFound
from marketplace.core.money import ZERO
from marketplace.core.pipeline import advance
from marketplace.core.templatetags.money import format_money
from orders.models import Booking
from settlement.models import BookingSettlement, Payout, ReimbursementClaim, ReimbursementStatement
from vouchers.models import VoucherProgram

logger = logging.getLogger(__name__)

AccountKind = LedgerAccount.Kind
BookingStatus = Booking.Status


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
            raise NotFound(gettext("No such payout."))
        if locked.status == Payout.Status.PAID:
            return locked
        ledger_post(
            kind=JournalTransaction.Kind.PAYOUT,
            idempotency_key=f"payout:{pk}:paid",
            reference=f"payout:{pk}",
            legs=[
                (account_for(AccountKind.PROVIDER_PAYABLE, locked.provider_id), -locked.amount),
                (account_for(AccountKind.BANK), locked.amount),
            ],
        )
        advance(locked, Payout.Status.PAID, paid_at=timezone.now(), paid_by=_user_or_none(actor))
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
        legs=[
            (account_for(AccountKind.BANK), -amount),
            (account_for(AccountKind.REIMBURSEMENT_DUE, program_id), amount),
        ],
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
            raise NotFound(gettext("No such claim."))
        if locked.statement_id is not None:  # read under the row lock: statements_issue sets it holding that lock
            raise Conflict(
                gettext("Claim %(claim)s is listed on statement %(statement)s: pay the statement instead.")
                % {"claim": pk, "statement": locked.statement_id},
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
        advance(locked, ReimbursementClaim.Status.PAID, paid_at=timezone.now(), paid_by=_user_or_none(actor))
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
        raise ApplicationError(
            gettext("The end of the statement period needs a time zone."),
            errors={"until": [gettext("Give a time zone, e.g. UTC.")]},
        )
    if until > now:
        raise ApplicationError(
            gettext("A statement cannot cover the future."), errors={"until": [gettext("Must not be later than now.")]}
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
                gettext("Program %(program)s: %(count)s claims changed while being stated.")
                % {"program": program_id, "count": len(rows) - listed},
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
            raise NotFound(gettext("No such statement."))
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
                gettext("Statement %(statement)s: its open claims (%(listed)s) no longer match its total (%(total)s).")
                % {"statement": pk, "listed": format_money(listed), "total": format_money(locked.total)},
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
        advance(locked, ReimbursementStatement.Status.PAID, paid_at=now, paid_by=user, updated_at=now)
        # the claims it lists, all open (checked above under their row locks): one bulk move, as the statement's
        ReimbursementClaim.objects.filter(statement_id=pk, status=ReimbursementClaim.Status.OPEN).update(
            status=ReimbursementClaim.Status.PAID, paid_at=now, paid_by=user, updated_at=now
        )
        audit_record(
            action="settlement.statement_paid",
            obj=locked,
            actor=actor,
            organization_id=locked.program.issuer_id,
            data={"total": str(locked.total), "claims": len(claims), "program": locked.program_id},
        )
    return locked
