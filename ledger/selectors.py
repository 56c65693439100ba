"""Reads from the ledger: wallet summaries, entry history, and the invariant checks behind ``verify_ledger``.

This module imports no other app (owners are ids).
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db.models import F, QuerySet, Sum, Window

from ledger import sql
from ledger.models import Entry, JournalTransaction, LedgerAccount
from marketplace.core.money import ZERO

WALLET_KINDS = (LedgerAccount.Kind.WALLET, LedgerAccount.Kind.WALLET_HOLD)


def wallet_summary(organization_id: int) -> dict[str, Decimal]:
    """``{"balance": spendable, "held": reserved}`` of the organization's wallet; zeros before its first deposit."""
    balances = dict(
        LedgerAccount.objects.filter(kind__in=WALLET_KINDS, owner_id=organization_id).values_list("kind", "balance")
    )
    return {
        "balance": balances.get(LedgerAccount.Kind.WALLET, ZERO),
        "held": balances.get(LedgerAccount.Kind.WALLET_HOLD, ZERO),
    }


def _with_running_balance(entries: QuerySet[Entry]) -> QuerySet[Entry]:
    # Window sum per account in id order = the account's balance right after each entry. The window is computed
    # before LIMIT/OFFSET, so it stays right on every page.
    return (
        entries.select_related("transaction", "account")
        .annotate(balance_after=Window(Sum("amount"), partition_by=[F("account_id")], order_by=F("id").asc()))
        .order_by("-id")
    )


def wallet_entries(organization_id: int) -> QuerySet[Entry]:
    """Entries on the organization's wallet and wallet-hold accounts, newest first, with ``balance_after``."""
    return _with_running_balance(
        Entry.objects.filter(account__kind__in=WALLET_KINDS, account__owner_id=organization_id)
    )


def deposits_recorded() -> QuerySet[Entry]:
    """The wallet entry of every recorded bank transfer (``owner_id`` names the startup), newest first."""
    return (
        Entry.objects.filter(transaction__kind=JournalTransaction.Kind.DEPOSIT, account__kind=LedgerAccount.Kind.WALLET)
        .select_related("transaction", "account")
        .order_by("-transaction_id")
    )


def ledger_breaches() -> list[str]:
    """Every broken ledger invariant, one message each; ``[]`` when the ledger is sound.

    Checks: each stored balance equals the sum of its entries; no account that forbids it is negative; each
    transaction sums to zero and has at least two entries; one currency (``PLATFORM_CURRENCY``) throughout.
    """
    breaches: list[str] = []
    for account_id, kind, owner_id, stored, computed in sql.balance_breaches():
        breaches.append(
            f"account {account_id} ({kind} owner {owner_id}): stored balance {stored} but its entries sum to {computed}"
        )
    for account_id, kind, owner_id, balance in LedgerAccount.objects.filter(
        allow_negative=False, balance__lt=0
    ).values_list("id", "kind", "owner_id", "balance"):
        breaches.append(f"account {account_id} ({kind} owner {owner_id}) is negative ({balance}) but may not be")
    for transaction_id, total in sql.unbalanced_transactions():
        breaches.append(f"transaction {transaction_id} does not balance: its entries sum to {total}")
    for transaction_id, count in sql.transactions_with_too_few_entries():
        breaches.append(f"transaction {transaction_id} has {count} entries (at least 2 needed)")
    currencies = set(LedgerAccount.objects.values_list("currency", flat=True).distinct())
    if currencies - {settings.PLATFORM_CURRENCY}:
        breaches.append(f"accounts use currencies {sorted(currencies)}; only {settings.PLATFORM_CURRENCY} is allowed")
    return breaches


def ledger_totals() -> dict[str, int]:
    """Counts for the ``verify_ledger`` summary."""
    return {
        "accounts": LedgerAccount.objects.count(),
        "transactions": JournalTransaction.objects.count(),
        "entries": Entry.objects.count(),
    }
