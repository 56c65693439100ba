"""The database itself guards the ledger: triggers and constraints, exercised with raw SQL."""

from decimal import Decimal

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction
from django.db.utils import DatabaseError

from ledger.models import Entry, JournalTransaction, LedgerAccount
from ledger.services import account_for
from tests.ledger.factories import balance_of, funded_wallet, key

ORG = 9_001


def _raw_transaction(cursor, idempotency_key: str) -> int:
    cursor.execute(
        "INSERT INTO ledger_journaltransaction (kind, reference, idempotency_key, memo, created_at) "
        "VALUES ('deposit', '', %s, '', now()) RETURNING id",
        [idempotency_key],
    )
    return cursor.fetchone()[0]


def _raw_entry(cursor, transaction_id: int, account: LedgerAccount, amount: str) -> None:
    cursor.execute(
        "INSERT INTO ledger_entry (transaction_id, account_id, amount) VALUES (%s, %s, %s)",
        [transaction_id, account.pk, amount],
    )


@pytest.mark.django_db(transaction=True)
def test_an_unbalanced_raw_insert_fails_at_commit():
    # given
    bank = account_for(LedgerAccount.Kind.BANK)
    wallet = account_for(LedgerAccount.Kind.WALLET, ORG)
    # when: two legs that do not sum to zero, inserted past the service; each statement succeeds on its own
    # (the failure comes at COMMIT, the end of the atomic block)
    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        with connection.cursor() as cursor:
            transaction_id = _raw_transaction(cursor, key("raw"))
            _raw_entry(cursor, transaction_id, bank, "-100.00")
            _raw_entry(cursor, transaction_id, wallet, "99.99")
        statements_ran = True
    # then: the deferred constraint trigger refused the commit, and nothing stayed
    assert statements_ran
    assert isinstance(raised.value.__cause__, psycopg.errors.CheckViolation)
    assert raised.value.__cause__.diag.constraint_name == "ledger_transaction_balanced"
    assert JournalTransaction.objects.count() == 0
    assert balance_of(LedgerAccount.Kind.WALLET, ORG) == Decimal("0.00")


@pytest.mark.django_db(transaction=True)
def test_a_balanced_raw_insert_commits_and_moves_balances():
    # given
    bank = account_for(LedgerAccount.Kind.BANK)
    wallet = account_for(LedgerAccount.Kind.WALLET, ORG)
    # when
    with transaction.atomic(), connection.cursor() as cursor:
        transaction_id = _raw_transaction(cursor, key("raw"))
        _raw_entry(cursor, transaction_id, bank, "-100.00")
        _raw_entry(cursor, transaction_id, wallet, "100.00")
    # then
    assert balance_of(LedgerAccount.Kind.WALLET, ORG) == Decimal("100.00")
    assert balance_of(LedgerAccount.Kind.BANK, None) == Decimal("-100.00")


@pytest.mark.django_db
def test_the_database_refuses_an_overdraft_of_an_account_that_forbids_it():
    # given: 50 in the wallet
    wallet = funded_wallet(ORG, "50.00")
    hold = account_for(LedgerAccount.Kind.WALLET_HOLD, ORG)
    # when: 50.01 leaves it, past the service
    with pytest.raises(IntegrityError) as raised, transaction.atomic(), connection.cursor() as cursor:
        transaction_id = _raw_transaction(cursor, key("raw"))
        _raw_entry(cursor, transaction_id, wallet, "-50.01")
        _raw_entry(cursor, transaction_id, hold, "50.01")
    # then: the account CHECK fired inside the statement
    assert raised.value.__cause__.diag.constraint_name == "ledger_account_balance_allowed"
    assert balance_of(LedgerAccount.Kind.WALLET, ORG) == Decimal("50.00")


@pytest.mark.django_db
def test_a_zero_entry_is_refused():
    # given
    bank = account_for(LedgerAccount.Kind.BANK)
    # when / then
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        _raw_entry(cursor, _raw_transaction(cursor, key("raw")), bank, "0.00")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entry SET amount = amount * 2",
        "DELETE FROM ledger_entry",
        "UPDATE ledger_journaltransaction SET memo = 'rewritten'",
        "DELETE FROM ledger_journaltransaction",
    ],
)
def test_entries_and_transactions_are_append_only(statement):
    # given
    funded_wallet(ORG, "10.00")
    # when / then
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert Entry.objects.count() == 2


@pytest.mark.django_db
def test_a_balance_changes_only_through_entries():
    # given
    wallet = funded_wallet(ORG, "10.00")
    # when / then: a direct UPDATE and a stale ORM save are both refused
    with pytest.raises(DatabaseError, match="only through entries"), transaction.atomic():
        LedgerAccount.objects.filter(pk=wallet.pk).update(balance=Decimal("1000000.00"))
    with pytest.raises(DatabaseError, match="zero balance"), transaction.atomic():
        LedgerAccount.objects.create(kind=LedgerAccount.Kind.WALLET, owner_id=ORG + 1, balance=Decimal("5.00"))
    assert balance_of(LedgerAccount.Kind.WALLET, ORG) == Decimal("10.00")


@pytest.mark.django_db
def test_one_platform_account_per_kind_even_with_a_null_owner():
    # given
    account_for(LedgerAccount.Kind.PLATFORM_FEES)
    # when / then: NULLS NOT DISTINCT makes the second platform-wide row a duplicate
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerAccount.objects.create(kind=LedgerAccount.Kind.PLATFORM_FEES, owner_id=None)
