"""Writes to the ledger. ``ledger_post`` is the one entry point; the wallet helpers build their legs.

Sign convention: an entry's amount is added to its account's balance. Money a startup holds on the platform is
a positive wallet balance; the ``bank`` counter-account goes negative by what came in.

This module imports no other app (owners are ids); callers record audit events in their own transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from django.db import IntegrityError, connection, transaction

from ledger.models import Entry, JournalTransaction, LedgerAccount
from marketplace.core.exceptions import ApplicationError
from marketplace.core.money import ZERO, to_amount

OVERDRAFT_CONSTRAINT = "ledger_account_balance_allowed"


class InsufficientFunds(ApplicationError):
    """An account that may not go negative would have: 409, naming the account kind."""

    def __init__(self, message: str):
        super().__init__(message, status=409, code="insufficient_funds")


def account_for(kind: str, owner_id: int | None = None) -> LedgerAccount:
    """The account of ``kind`` for ``owner_id`` (None: platform-wide), created on first use.

    Race-safe: ``INSERT … ON CONFLICT DO NOTHING`` then a select, so concurrent first uses create one row.
    External kinds (``bank``, ``program_funding``) and ``reimbursement_due`` (a city's debt, negative until paid)
    may go negative; all others may not.
    Raises ``ValueError`` for an unknown kind (a programming error, not bad input).
    """
    if kind not in LedgerAccount.Kind.values:
        raise ValueError(f"unknown ledger account kind {kind!r}")
    account = LedgerAccount.objects.filter(kind=kind, owner_id=owner_id).first()
    if account is not None:
        return account
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_ledgeraccount (kind, owner_id, currency, allow_negative, balance, created_at) "
            "VALUES (%s, %s, %s, %s, 0, now()) ON CONFLICT DO NOTHING",
            [kind, owner_id, LedgerAccount._meta.get_field("currency").get_default(),
             kind in LedgerAccount.EXTERNAL_KINDS or kind == LedgerAccount.Kind.REIMBURSEMENT_DUE],
        )
    return LedgerAccount.objects.get(kind=kind, owner_id=owner_id)


def _normalise_legs(legs: Sequence[tuple[LedgerAccount, Decimal]]) -> list[tuple[LedgerAccount, Decimal]]:
    """Round each amount half-up to 2 places, drop zero legs, order by account id (then amount): the lock order."""
    rounded = [(account, to_amount(amount)) for account, amount in legs]
    return sorted(((a, x) for a, x in rounded if x != ZERO), key=lambda leg: (leg[0].pk, leg[1]))


def _leg_signature(legs) -> list[tuple[int, Decimal]]:
    return sorted((account_id, amount) for account_id, amount in legs)


def ledger_post(*, kind: str, idempotency_key: str, legs: Sequence[tuple[LedgerAccount, Decimal]],
                reference: str = "", memo: str = "") -> JournalTransaction:
    """Post one balanced transaction of ``legs`` (account, amount) and return it.

    Amounts are rounded half-up to 2 places here, once; zero legs are dropped. Idempotent on
    ``idempotency_key``: if it was posted before, the existing transaction is returned and nothing is written,
    provided its legs are the same (the returned object then has ``replayed = True``, else ``False``); otherwise
    ``ApplicationError`` 422 (code ``idempotency_mismatch``).
    Raises ``ApplicationError`` 400 when the legs do not sum to zero, are all zero, or mix currencies, and
    ``InsufficientFunds`` (409) when an account that may not go negative would. Runs in its own savepoint, so after
    ``InsufficientFunds`` the caller's transaction is intact and can carry on or roll back as it sees fit.
    """
    if not idempotency_key:
        raise ApplicationError("A ledger posting needs an idempotency key.",
                               errors={"idempotency_key": ["This field is required."]})
    normalised = _normalise_legs(legs)
    if not normalised:
        raise ApplicationError("Nothing to post: every leg is zero.")
    total = sum((amount for _, amount in normalised), ZERO)
    if total != ZERO:
        raise ApplicationError(f"Ledger legs must sum to zero; they sum to {total}.")
    if len({account.currency for account, _ in normalised}) > 1:
        raise ApplicationError("A ledger transaction cannot mix currencies.")

    try:
        with transaction.atomic():
            posted = _insert_transaction(kind=kind, idempotency_key=idempotency_key, reference=reference, memo=memo)
            if posted is None:
                return _existing_posting(idempotency_key, normalised)
            # One INSERT in account-id order: the trigger's balance UPDATEs lock accounts in that order too, so two
            # postings touching the same accounts cannot deadlock.
            Entry.objects.bulk_create(
                [Entry(transaction=posted, account=account, amount=amount) for account, amount in normalised]
            )
    except IntegrityError as exc:
        if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) == OVERDRAFT_CONSTRAINT:
            raise InsufficientFunds(_overdraft_message(normalised)) from exc
        raise
    return posted


def _insert_transaction(*, kind: str, idempotency_key: str, reference: str, memo: str) -> JournalTransaction | None:
    """Insert the transaction row; None when the key exists. A concurrent poster of the same key blocks on the
    unique index until the first commits (then None) or rolls back (then this insert proceeds)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_journaltransaction (kind, reference, idempotency_key, memo, created_at) "
            "VALUES (%s, %s, %s, %s, now()) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, created_at",
            [kind, reference, idempotency_key, memo],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    posted = JournalTransaction(id=row[0], created_at=row[1], kind=kind, reference=reference,
                                idempotency_key=idempotency_key, memo=memo)
    posted._state.adding = False
    posted.replayed = False
    return posted


def _existing_posting(idempotency_key: str, legs: list[tuple[LedgerAccount, Decimal]]) -> JournalTransaction:
    existing = JournalTransaction.objects.get(idempotency_key=idempotency_key)
    existing.replayed = True
    stored = _leg_signature(existing.entries.values_list("account_id", "amount"))
    if stored != _leg_signature((account.pk, amount) for account, amount in legs):
        raise ApplicationError(
            f"Idempotency key {idempotency_key!r} was already used for a different posting.",
            status=422, code="idempotency_mismatch",
        )
    return existing


def _overdraft_message(legs: list[tuple[LedgerAccount, Decimal]]) -> str:
    """Name the account that would have gone negative (balances re-read: the failed statement was rolled back)."""
    debits = {account.pk: -amount for account, amount in legs if amount < 0 and not account.allow_negative}
    current = dict(LedgerAccount.objects.filter(pk__in=debits).values_list("pk", "balance"))
    for account, _ in legs:
        if account.pk in debits and current.get(account.pk, ZERO) < debits[account.pk]:
            return (f"Insufficient funds in {account.get_kind_display().lower()}: "
                    f"{current.get(account.pk, ZERO)} available, {debits[account.pk]} needed.")
    kinds = ", ".join(sorted({account.get_kind_display().lower() for account, _ in legs if account.pk in debits}))
    return f"Insufficient funds in {kinds or 'an account'}."


def _wallet_move(*, source: str, target: str, kind: str, organization_id: int, amount: Decimal,
                 idempotency_key: str, reference: str) -> JournalTransaction | None:
    amount = to_amount(amount)
    if amount < ZERO:
        raise ApplicationError("The amount cannot be negative.", errors={"amount": ["Must be zero or more."]})
    if amount == ZERO:
        return None
    owner = None if source == LedgerAccount.Kind.BANK else organization_id
    legs = [(account_for(source, owner), -amount), (account_for(target, organization_id), amount)]
    return ledger_post(kind=kind, idempotency_key=idempotency_key, legs=legs, reference=reference)


def wallet_deposit(*, organization_id: int, amount: Decimal, idempotency_key: str,
                   reference: str = "") -> JournalTransaction | None:
    """Cash received by bank transfer: bank → the organization's wallet. Amount 0 posts nothing (None)."""
    return _wallet_move(source=LedgerAccount.Kind.BANK, target=LedgerAccount.Kind.WALLET,
                        kind=JournalTransaction.Kind.DEPOSIT, organization_id=organization_id, amount=amount,
                        idempotency_key=idempotency_key, reference=reference)


def wallet_hold(*, organization_id: int, amount: Decimal, idempotency_key: str,
                reference: str = "") -> JournalTransaction | None:
    """Reserve ``amount``: wallet → wallet hold. ``InsufficientFunds`` (409) when the wallet is short; 0 → None."""
    return _wallet_move(source=LedgerAccount.Kind.WALLET, target=LedgerAccount.Kind.WALLET_HOLD,
                        kind=JournalTransaction.Kind.HOLD, organization_id=organization_id, amount=amount,
                        idempotency_key=idempotency_key, reference=reference)


def wallet_release(*, organization_id: int, amount: Decimal, idempotency_key: str,
                   reference: str = "") -> JournalTransaction | None:
    """Give back a hold: wallet hold → wallet. ``InsufficientFunds`` if more is released than held; 0 → None."""
    return _wallet_move(source=LedgerAccount.Kind.WALLET_HOLD, target=LedgerAccount.Kind.WALLET,
                        kind=JournalTransaction.Kind.RELEASE, organization_id=organization_id, amount=amount,
                        idempotency_key=idempotency_key, reference=reference)
