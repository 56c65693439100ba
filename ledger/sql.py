"""The ledger's hand-written SQL: what the ORM cannot say in one statement.

- ``lock_check_insert``: lock the accounts in id order, check no account that may not go negative would, and insert
  the transaction and its entries, all in one statement (``ledger.services.ledger_post``).
- ``move_between_own_accounts``: the same for a move between two accounts of one owner found by kind (a wallet hold
  or release), so the booking path needs no separate read of its accounts.
- ``insert_transactions``: many transaction rows in one ``INSERT … ON CONFLICT (idempotency_key) DO NOTHING
  RETURNING`` that says which keys were new (``bulk_create(ignore_conflicts=True)`` returns no ids).
- ``balance_breaches`` and friends: the aggregate checks of ``verify_ledger``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from django.db import connection
from django.utils import timezone


def lock_check_insert(
    *,
    kind: str,
    reference: str,
    idempotency_key: str,
    memo: str,
    account_ids: list[int],
    amounts: list[Decimal],
) -> tuple[int | None, dt.datetime | None, bool]:
    """Lock ``account_ids`` (in id order, ``FOR NO KEY UPDATE``), and unless one that forbids it would go negative
    insert the transaction and one entry per (account, amount), in the order given. Returns ``(transaction id,
    created_at, short)``: ids None when nothing was written (``short``: an account was short; else the key
    existed: a concurrent poster of the same key blocks on the unique index until the first commits)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH locked AS MATERIALIZED ("
            " SELECT id, balance, allow_negative FROM ledger_ledgeraccount WHERE id = ANY(%s::bigint[])"
            " ORDER BY id FOR NO KEY UPDATE"
            "), short AS ("
            " SELECT 1 FROM locked JOIN (SELECT account_id, sum(amount) AS amount"
            "  FROM unnest(%s::bigint[], %s::numeric[]) AS d(account_id, amount) GROUP BY account_id) d"
            "  ON d.account_id = locked.id WHERE NOT locked.allow_negative AND locked.balance + d.amount < 0"
            "), posted AS ("
            " INSERT INTO ledger_journaltransaction (kind, reference, idempotency_key, memo, created_at)"
            " SELECT %s, %s, %s, %s, %s WHERE NOT EXISTS (SELECT 1 FROM short)"
            " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, created_at"
            "), legs AS ("
            " INSERT INTO ledger_entry (transaction_id, account_id, amount)"
            " SELECT posted.id, leg.account_id, leg.amount FROM posted,"
            " unnest(%s::bigint[], %s::numeric[]) WITH ORDINALITY AS leg(account_id, amount, n) ORDER BY leg.n"
            ") SELECT (SELECT id FROM posted), (SELECT created_at FROM posted), EXISTS (SELECT 1 FROM short)",
            [
                account_ids,
                account_ids,
                amounts,
                kind,
                reference,
                idempotency_key,
                memo,
                timezone.now(),
                account_ids,
                amounts,
            ],
        )
        return cursor.fetchone()


def move_between_own_accounts(
    *,
    owner_id: int,
    source_kind: str,
    target_kind: str,
    amount: Decimal,
    kind: str,
    reference: str,
    idempotency_key: str,
    memo: str = "",
) -> tuple[int | None, dt.datetime | None]:
    """Move ``amount`` (> 0) from the owner's ``source_kind`` account to its ``target_kind`` account as one posting,
    in one statement: lock both accounts (in id order, ``FOR NO KEY UPDATE``, as ``lock_check_insert``), and insert
    the transaction and its two entries (in account-id order) only when both accounts exist, share a currency, and
    the source may go below zero or has ``amount``. Returns ``(transaction id, created_at)``, or ``(None, None)``
    when nothing was written for any reason (an account missing, short or of another currency, or the key already
    posted): the caller then takes the general path, which says which (``ledger.services._wallet_move``)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH locked AS MATERIALIZED ("
            " SELECT id, kind, currency, balance, allow_negative FROM ledger_ledgeraccount"
            " WHERE owner_id = %(owner)s AND kind IN (%(source)s, %(target)s) ORDER BY id FOR NO KEY UPDATE"
            "), posted AS ("
            " INSERT INTO ledger_journaltransaction (kind, reference, idempotency_key, memo, created_at)"
            " SELECT %(kind)s, %(reference)s, %(key)s, %(memo)s, %(now)s FROM locked"
            " HAVING count(*) = 2 AND count(DISTINCT currency) = 1"
            " AND NOT bool_or(kind = %(source)s AND NOT allow_negative AND balance < %(amount)s)"
            " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, created_at"
            "), entries AS ("
            " INSERT INTO ledger_entry (transaction_id, account_id, amount)"
            " SELECT posted.id, locked.id,"
            "  CASE WHEN locked.kind = %(source)s THEN -(%(amount)s::numeric) ELSE %(amount)s::numeric END"
            " FROM posted, locked ORDER BY locked.id"
            ") SELECT id, created_at FROM posted",
            {
                "owner": owner_id,
                "source": source_kind,
                "target": target_kind,
                "amount": amount,
                "kind": kind,
                "reference": reference,
                "key": idempotency_key,
                "memo": memo,
                "now": timezone.now(),
            },
        )
        row = cursor.fetchone()
        return (row[0], row[1]) if row else (None, None)


def insert_transactions(postings: Sequence) -> dict[str, tuple[int, dt.datetime]]:
    """Insert a transaction row per posting (``kind``, ``reference``, ``idempotency_key``, ``memo``), in order, keys
    already posted skipped; returns ``{idempotency key: (id, created_at)}`` of the rows inserted."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_journaltransaction (kind, reference, idempotency_key, memo, created_at) "
            "SELECT k, r, i, m, %s FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) "
            "WITH ORDINALITY AS t(k, r, i, m, n) ORDER BY n "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key, created_at",
            [
                timezone.now(),
                [p.kind for p in postings],
                [p.reference for p in postings],
                [p.idempotency_key for p in postings],
                [p.memo for p in postings],
            ],
        )
        return {key: (pk, created_at) for pk, key, created_at in cursor.fetchall()}


def _rows(query: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchall()


def balance_breaches() -> list[tuple]:
    """``(account id, kind, owner id, stored balance, sum of its entries)`` of every account whose two differ."""
    return _rows(
        "SELECT a.id, a.kind, a.owner_id, a.balance, COALESCE(SUM(e.amount), 0) FROM ledger_ledgeraccount a "
        "LEFT JOIN ledger_entry e ON e.account_id = a.id GROUP BY a.id HAVING a.balance <> COALESCE(SUM(e.amount), 0) "
        "ORDER BY a.id"
    )


def unbalanced_transactions() -> list[tuple]:
    """``(transaction id, sum of its entries)`` of every transaction whose entries do not sum to zero."""
    return _rows(
        "SELECT transaction_id, SUM(amount) FROM ledger_entry GROUP BY transaction_id HAVING SUM(amount) <> 0 "
        "ORDER BY transaction_id"
    )


def transactions_with_too_few_entries() -> list[tuple]:
    """``(transaction id, entry count)`` of every transaction with fewer than two entries."""
    return _rows(
        "SELECT t.id, COUNT(e.id) FROM ledger_journaltransaction t LEFT JOIN ledger_entry e "
        "ON e.transaction_id = t.id GROUP BY t.id HAVING COUNT(e.id) < 2 ORDER BY t.id"
    )
