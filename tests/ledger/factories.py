"""Ledger helpers for tests: fund a wallet, read raw balances, tamper below the triggers."""

import itertools
from decimal import Decimal

from django.db import connection

from ledger.models import LedgerAccount
from ledger.services import account_for, wallet_deposit

_keys = itertools.count(1)


def key(prefix: str = "test") -> str:
    """A fresh idempotency key."""
    return f"{prefix}:{next(_keys)}"


def funded_wallet(organization_id: int, amount: str | Decimal) -> LedgerAccount:
    """Deposit ``amount`` into the organization's wallet and return the wallet account."""
    wallet_deposit(organization_id=organization_id, amount=Decimal(amount), idempotency_key=key("deposit"))
    return account_for(LedgerAccount.Kind.WALLET, organization_id)


def balance_of(kind: str, owner_id: int | None) -> Decimal:
    return LedgerAccount.objects.get(kind=kind, owner_id=owner_id).balance


def tamper_balance(account: LedgerAccount, balance: str) -> None:
    """Overwrite a balance behind the ledger's back (replica mode skips the guard trigger; the test user is
    superuser)."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute("UPDATE ledger_ledgeraccount SET balance = %s WHERE id = %s", [balance, account.pk])
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")
