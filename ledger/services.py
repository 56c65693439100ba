"""Writes to the ledger. ``ledger_post`` is the one entry point; the wallet helpers build their legs. A hold or
release between two existing accounts of one organization (every booking's) is posted by one statement that finds,
locks and checks the accounts itself (``sql.move_between_own_accounts``), under the same contract; anything
unusual there goes through ``ledger_post``.

Sign convention: an entry's amount is added to its account's balance. Money a startup holds on the platform is
a positive wallet balance; the ``bank`` counter-account goes negative by what came in.

This module imports no other app (owners are ids); callers record audit events in their own transaction.

Locks (step 6 of the one order in ``marketplace.core.locks``): every posting locks its accounts in id order —
``ledger_post`` (and the one-statement wallet move) with one ``SELECT … ORDER BY id FOR NO KEY UPDATE``,
``ledger_post_many`` by inserting its entries in account-id order — so the wallet helpers (``wallet_hold``,
``wallet_release``, ``wallet_deposit``) do too.
Callers post after the rows of the earlier steps (listing, capacity, counters, vouchers) and before any audit event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext

from ledger import sql
from ledger.models import Entry, JournalTransaction, LedgerAccount
from marketplace.core.exceptions import ApplicationError
from marketplace.core.money import ZERO, to_amount
from marketplace.core.templatetags.money import format_money

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
    return _accounts([(kind, owner_id)])[0]


def _select_accounts(keys: Sequence[tuple[str, int | None]]) -> dict[tuple[str, int | None], LedgerAccount]:
    """The existing accounts of ``keys`` (kind, owner id or None), in one query."""
    wanted = Q()
    for kind, owner_id in keys:
        wanted |= Q(kind=kind, owner_id__isnull=True) if owner_id is None else Q(kind=kind, owner_id=owner_id)
    return {(account.kind, account.owner_id): account for account in LedgerAccount.objects.filter(wanted)}


def _accounts(keys: Sequence[tuple[str, int | None]]) -> list[LedgerAccount]:
    """``account_for`` for each of ``keys`` (kind, owner_id), in that order: one query when they all exist, one
    ``INSERT … ON CONFLICT DO NOTHING`` of the missing ones (race-safe) and a second read when some do not yet.
    Raises ``ValueError`` for an unknown kind."""
    unknown = sorted({str(kind) for kind, _ in keys} - set(LedgerAccount.Kind.values))
    if unknown:
        raise ValueError(f"unknown ledger account kinds {unknown!r}")
    found = _select_accounts(keys)
    missing = sorted({key for key in keys if key not in found}, key=lambda key: (key[0], key[1] or 0))
    if missing:
        # ON CONFLICT DO NOTHING: concurrent first uses create one row each, then both read it.
        LedgerAccount.objects.bulk_create(
            [
                LedgerAccount(
                    kind=kind,
                    owner_id=owner_id,
                    allow_negative=kind in LedgerAccount.EXTERNAL_KINDS or kind == LedgerAccount.Kind.REIMBURSEMENT_DUE,
                )
                for kind, owner_id in missing
            ],
            ignore_conflicts=True,
        )
        found |= _select_accounts(missing)
    return [found[key] for key in keys]


def _normalise_legs(legs: Sequence[tuple[LedgerAccount, Decimal]]) -> list[tuple[LedgerAccount, Decimal]]:
    """Round each amount half-up to 2 places, drop zero legs, order by account id (then amount): the lock order."""
    rounded = [(account, to_amount(amount)) for account, amount in legs]
    return sorted(((a, x) for a, x in rounded if x != ZERO), key=lambda leg: (leg[0].pk, leg[1]))


def _leg_signature(legs) -> list[tuple[int, Decimal]]:
    return sorted((account_id, amount) for account_id, amount in legs)


def ledger_post(
    *,
    kind: str,
    idempotency_key: str,
    legs: Sequence[tuple[LedgerAccount, Decimal]],
    reference: str = "",
    memo: str = "",
) -> JournalTransaction:
    """Post one balanced transaction of ``legs`` (account, amount) and return it.

    Amounts are rounded half-up to 2 places here, once; zero legs are dropped. Idempotent on
    ``idempotency_key``: if it was posted before, the existing transaction is returned and nothing is written,
    provided its legs are the same (the returned object then has ``replayed = True``, else ``False``); otherwise
    ``ApplicationError`` 422 (code ``idempotency_mismatch``).
    Raises ``ApplicationError`` 400 when the legs do not sum to zero, are all zero, or mix currencies, and
    ``InsufficientFunds`` (409) when an account that may not go negative would. The balances are checked under the
    accounts' row locks before anything is written, so after ``InsufficientFunds`` the caller's transaction is
    intact (no savepoint needed) and can carry on or roll back as it sees fit.
    """
    if not idempotency_key:
        raise ApplicationError(
            gettext("A ledger posting needs an idempotency key."),
            errors={"idempotency_key": [gettext("This field is required.")]},
        )
    normalised = _normalise_legs(legs)
    if not normalised:
        raise ApplicationError(gettext("Nothing to post: every leg is zero."))
    total = sum((amount for _, amount in normalised), ZERO)
    if total != ZERO:
        raise ApplicationError(gettext("Ledger legs must sum to zero; they sum to %(total)s.") % {"total": total})
    if len({account.currency for account, _ in normalised}) > 1:
        raise ApplicationError(gettext("A ledger transaction cannot mix currencies."))

    try:
        posted, short = _insert_transaction(
            kind=kind, idempotency_key=idempotency_key, reference=reference, memo=memo, legs=normalised
        )
    except IntegrityError as exc:
        # The account CHECK behind the pre-check: unreachable while the accounts stay locked, and the transaction
        # is aborted now, so the message cannot read the balances.
        if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) == OVERDRAFT_CONSTRAINT:
            raise InsufficientFunds(gettext("Insufficient funds.")) from exc
        raise
    if posted is not None:
        return posted
    if short and not JournalTransaction.objects.filter(idempotency_key=idempotency_key).exists():
        raise InsufficientFunds(_overdraft_message(normalised))
    return _existing_posting(idempotency_key, normalised)


def _insert_transaction(
    *, kind: str, idempotency_key: str, reference: str, memo: str, legs: list[tuple[LedgerAccount, Decimal]]
) -> tuple[JournalTransaction | None, bool]:
    """Lock the legs' accounts, check that none that may not go negative would, and insert the transaction row and
    its entries: one statement. Returns the posting (None when nothing was written) and whether an account was
    short (then nothing was written).

    The accounts are locked in id order (``legs`` are in account-id order, and so are the entry trigger's balance
    UPDATEs), so two postings touching the same accounts cannot deadlock; the balances read under the lock are the
    latest committed ones, so the check is exact and the account CHECK behind it never fires. When the key exists,
    nothing is written (None): a concurrent poster of the same key blocks on the unique index until the first
    commits (then None) or rolls back (then this insert proceeds).
    """
    posted_id, created_at, short = sql.lock_check_insert(
        kind=kind,
        reference=reference,
        idempotency_key=idempotency_key,
        memo=memo,
        account_ids=[account.pk for account, _ in legs],
        amounts=[amount for _, amount in legs],
    )
    if posted_id is None:
        return None, short
    posted = _posted(posted_id, created_at, kind=kind, idempotency_key=idempotency_key, reference=reference, memo=memo)
    return posted, False


def _posted(pk: int, created_at, *, kind: str, idempotency_key: str, reference: str, memo: str = ""):
    """The ``JournalTransaction`` just inserted by hand-written SQL, as a saved instance (``replayed = False``)."""
    posted = JournalTransaction(
        id=pk, created_at=created_at, kind=kind, reference=reference, idempotency_key=idempotency_key, memo=memo
    )
    posted._state.adding = False
    posted.replayed = False
    return posted


def _existing_posting(idempotency_key: str, legs: list[tuple[LedgerAccount, Decimal]]) -> JournalTransaction:
    existing = JournalTransaction.objects.get(idempotency_key=idempotency_key)
    existing.replayed = True
    stored = _leg_signature(existing.entries.values_list("account_id", "amount"))
    if stored != _leg_signature((account.pk, amount) for account, amount in legs):
        raise ApplicationError(
            gettext("Idempotency key %(key)s was already used for a different posting.")
            % {"key": repr(idempotency_key)},
            status=422,
            code="idempotency_mismatch",
        )
    return existing


def _overdraft_message(legs: list[tuple[LedgerAccount, Decimal]]) -> str:
    """Name the account that would have gone negative (balances re-read: the failed statement was rolled back)."""
    debits = {account.pk: -amount for account, amount in legs if amount < 0 and not account.allow_negative}
    current = dict(LedgerAccount.objects.filter(pk__in=debits).values_list("pk", "balance"))
    for account, _ in legs:
        if account.pk in debits and current.get(account.pk, ZERO) < debits[account.pk]:
            return gettext("Insufficient funds in %(account)s: %(available)s available, %(needed)s needed.") % {
                "account": account.get_kind_display().lower(),
                "available": format_money(current.get(account.pk, ZERO)),
                "needed": format_money(debits[account.pk]),
            }
    kinds = ", ".join(sorted({account.get_kind_display().lower() for account, _ in legs if account.pk in debits}))
    return gettext("Insufficient funds in %(account)s.") % {"account": kinds or gettext("an account")}


def _wallet_move(
    *, source: str, target: str, kind: str, organization_id: int, amount: Decimal, idempotency_key: str, reference: str
) -> JournalTransaction | None:
    amount = to_amount(amount)
    if amount < ZERO:
        raise ApplicationError(
            gettext("The amount cannot be negative."), errors={"amount": [gettext("Must be zero or more.")]}
        )
    if amount == ZERO:
        return None
    if source != LedgerAccount.Kind.BANK:
        # Both accounts are the organization's (a hold or a release, on every booking): one statement finds, locks,
        # checks and posts. Anything unusual — an account not created yet, too little in the source, the key posted
        # before — writes nothing there, and the general path below handles it and says which.
        posted_id, created_at = sql.move_between_own_accounts(
            owner_id=organization_id,
            source_kind=source,
            target_kind=target,
            amount=amount,
            kind=kind,
            reference=reference,
            idempotency_key=idempotency_key,
        )
        if posted_id is not None:
            return _posted(posted_id, created_at, kind=kind, idempotency_key=idempotency_key, reference=reference)
    owner = None if source == LedgerAccount.Kind.BANK else organization_id
    source_account, target_account = _accounts([(source, owner), (target, organization_id)])
    legs = [(source_account, -amount), (target_account, amount)]
    return ledger_post(kind=kind, idempotency_key=idempotency_key, legs=legs, reference=reference)


def wallet_deposit(
    *, organization_id: int, amount: Decimal, idempotency_key: str, reference: str = ""
) -> JournalTransaction | None:
    """Cash received by bank transfer: bank → the organization's wallet. Amount 0 posts nothing (None)."""
    return _wallet_move(
        source=LedgerAccount.Kind.BANK,
        target=LedgerAccount.Kind.WALLET,
        kind=JournalTransaction.Kind.DEPOSIT,
        organization_id=organization_id,
        amount=amount,
        idempotency_key=idempotency_key,
        reference=reference,
    )


def wallet_hold(
    *, organization_id: int, amount: Decimal, idempotency_key: str, reference: str = ""
) -> JournalTransaction | None:
    """Reserve ``amount``: wallet → wallet hold. ``InsufficientFunds`` (409) when the wallet is short; 0 → None."""
    return _wallet_move(
        source=LedgerAccount.Kind.WALLET,
        target=LedgerAccount.Kind.WALLET_HOLD,
        kind=JournalTransaction.Kind.HOLD,
        organization_id=organization_id,
        amount=amount,
        idempotency_key=idempotency_key,
        reference=reference,
    )


def wallet_release(
    *, organization_id: int, amount: Decimal, idempotency_key: str, reference: str = ""
) -> JournalTransaction | None:
    """Give back a hold: wallet hold → wallet. ``InsufficientFunds`` if more is released than held; 0 → None."""
    return _wallet_move(
        source=LedgerAccount.Kind.WALLET_HOLD,
        target=LedgerAccount.Kind.WALLET,
        kind=JournalTransaction.Kind.RELEASE,
        organization_id=organization_id,
        amount=amount,
        idempotency_key=idempotency_key,
        reference=reference,
    )


# --- many at once -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Posting:
    """One balanced transaction for ``ledger_post_many``: what ``ledger_post`` takes, as a value."""

    kind: str
    idempotency_key: str
    legs: Sequence[tuple[LedgerAccount, Decimal]]
    reference: str = ""
    memo: str = ""


def accounts_for_many(pairs: Iterable[tuple[str, int | None]]) -> dict[tuple[str, int | None], LedgerAccount]:
    """``{(kind, owner_id): account}`` for every pair (``account_for`` for many: one read when they all exist).
    Raises ``ValueError`` for an unknown kind."""
    keys = list(dict.fromkeys(pairs))
    return dict(zip(keys, _accounts(keys), strict=True)) if keys else {}


def ledger_post_many(postings: Sequence[Posting]) -> list[JournalTransaction]:
    """Post each of ``postings`` as its own balanced transaction, all in two statements; returns them in order.

    Each posting obeys the contract of ``ledger_post``: amounts rounded half-up to 2 places, zero legs dropped,
    idempotent on its key (a key posted before is returned with ``replayed = True`` if its legs are the same,
    else ``ApplicationError`` 422 ``idempotency_mismatch``), ``ApplicationError`` 400 when one does not sum to zero,
    is all zero or mixes currencies (nothing is written then). The transaction rows go in with one
    ``INSERT … ON CONFLICT (idempotency_key) DO NOTHING``; then every entry of every new posting goes in with one
    INSERT ordered by account id, so the balance trigger locks accounts in one global order and two batches
    touching the same accounts cannot deadlock. ``InsufficientFunds`` (409) when an account that may not go
    negative would: then none of the postings is written (one savepoint around all of them).
    Raises ``ValueError`` when two postings share a key (a programming error).
    """
    if not postings:
        return []
    normalised = []
    for posting in postings:
        if not posting.idempotency_key:
            raise ApplicationError(
                gettext("A ledger posting needs an idempotency key."),
                errors={"idempotency_key": [gettext("This field is required.")]},
            )
        legs = _normalise_legs(posting.legs)
        if not legs:
            raise ApplicationError(
                gettext("Nothing to post for %(key)s: every leg is zero.") % {"key": posting.idempotency_key}
            )
        total = sum((amount for _, amount in legs), ZERO)
        if total != ZERO:
            raise ApplicationError(
                gettext("Ledger legs of %(key)s must sum to zero; they sum to %(total)s.")
                % {"key": posting.idempotency_key, "total": total}
            )
        if len({account.currency for account, _ in legs}) > 1:
            raise ApplicationError(gettext("A ledger transaction cannot mix currencies."))
        normalised.append(legs)
    keys = [posting.idempotency_key for posting in postings]
    if len(set(keys)) != len(keys):
        raise ValueError("ledger_post_many: two postings share an idempotency key")

    try:
        with transaction.atomic():
            inserted = sql.insert_transactions(postings)
            result, entries = [], []
            for posting, legs in zip(postings, normalised, strict=True):
                if posting.idempotency_key not in inserted:
                    result.append(_existing_posting(posting.idempotency_key, legs))
                    continue
                pk, created_at = inserted[posting.idempotency_key]
                posted = JournalTransaction(
                    id=pk,
                    created_at=created_at,
                    kind=posting.kind,
                    reference=posting.reference,
                    idempotency_key=posting.idempotency_key,
                    memo=posting.memo,
                )
                posted._state.adding = False
                posted.replayed = False
                result.append(posted)
                entries += [Entry(transaction=posted, account=account, amount=amount) for account, amount in legs]
            # One INSERT in account-id order: see the docstring (the lock order).
            entries.sort(key=lambda entry: (entry.account_id, entry.transaction_id, entry.amount))
            Entry.objects.bulk_create(entries)
    except IntegrityError as exc:
        if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) == OVERDRAFT_CONSTRAINT:
            per_account: dict[int, list] = {}
            for legs in normalised:
                for account, amount in legs:
                    per_account.setdefault(account.pk, [account, ZERO])[1] += amount
            raise InsufficientFunds(_overdraft_message([(a, x) for a, x in per_account.values()])) from exc
        raise
    return result
