"""A hold or release between two accounts of one organization: one statement when both exist (the booking path),
the general path of ``ledger_post`` whenever anything is unusual."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ledger.models import Entry, JournalTransaction, LedgerAccount
from ledger.selectors import ledger_breaches, wallet_summary
from ledger.services import InsufficientFunds, account_for, wallet_hold, wallet_release
from marketplace.core.exceptions import ApplicationError
from tests.ledger.factories import funded_wallet, key

ORG = 7_101

pytestmark = pytest.mark.django_db


def _wallet_and_hold(amount: str = "100.00") -> tuple[LedgerAccount, LedgerAccount]:
    wallet = funded_wallet(ORG, amount)
    return wallet, account_for(LedgerAccount.Kind.WALLET_HOLD, ORG)


def test_a_hold_between_existing_accounts_is_one_statement_with_its_entries_in_account_order():
    # given a funded wallet whose hold account exists
    wallet, hold = _wallet_and_hold()
    # when a hold is posted
    with CaptureQueriesContext(connection) as queries:
        posted = wallet_hold(organization_id=ORG, amount=Decimal("40.255"), idempotency_key="hold:one")
    # then one statement found and locked both accounts and wrote the balanced posting, amounts rounded half-up
    assert len(queries.captured_queries) == 1, [q["sql"] for q in queries.captured_queries]
    assert "FOR NO KEY UPDATE" in queries.captured_queries[0]["sql"]
    assert posted.replayed is False and posted.kind == JournalTransaction.Kind.HOLD
    stored = JournalTransaction.objects.get(pk=posted.pk)
    assert (stored.idempotency_key, stored.created_at) == ("hold:one", posted.created_at)
    entries = list(Entry.objects.filter(transaction_id=posted.pk).order_by("pk").values_list("account_id", "amount"))
    amounts = {wallet.pk: Decimal("-40.26"), hold.pk: Decimal("40.26")}
    assert entries == sorted(amounts.items())  # inserted in account-id order (the lock order)
    assert wallet_summary(ORG) == {"balance": Decimal("59.74"), "held": Decimal("40.26")}
    assert ledger_breaches() == []


def test_the_first_hold_creates_the_hold_account_on_the_general_path():
    # given a funded wallet that never held anything
    funded_wallet(ORG, "10.00")
    assert not LedgerAccount.objects.filter(kind=LedgerAccount.Kind.WALLET_HOLD, owner_id=ORG).exists()
    # when
    wallet_hold(organization_id=ORG, amount=Decimal("4"), idempotency_key=key())
    # then
    assert wallet_summary(ORG) == {"balance": Decimal("6.00"), "held": Decimal("4.00")}


def test_a_short_wallet_writes_nothing_and_names_the_account():
    # given
    _wallet_and_hold("10.00")
    # when
    with pytest.raises(InsufficientFunds) as raised:
        wallet_hold(organization_id=ORG, amount=Decimal("10.01"), idempotency_key="hold:short")
    # then
    assert str(raised.value) == "Insufficient funds in wallet: ¥10.00 available, ¥10.01 needed."
    assert not JournalTransaction.objects.filter(idempotency_key="hold:short").exists()
    assert wallet_summary(ORG) == {"balance": Decimal("10.00"), "held": Decimal("0.00")}


def test_a_replayed_key_returns_the_first_posting_and_another_amount_under_it_is_422():
    # given a hold
    _wallet_and_hold("50.00")
    first = wallet_hold(organization_id=ORG, amount=Decimal("20"), idempotency_key="hold:again")
    # when the same key is posted again, then with another amount
    again = wallet_hold(organization_id=ORG, amount=Decimal("20"), idempotency_key="hold:again")
    with pytest.raises(ApplicationError) as raised:
        wallet_hold(organization_id=ORG, amount=Decimal("21"), idempotency_key="hold:again")
    # then
    assert again.pk == first.pk and again.replayed is True
    assert raised.value.status == 422
    assert wallet_summary(ORG) == {"balance": Decimal("30.00"), "held": Decimal("20.00")}


def test_accounts_of_two_currencies_are_refused_by_the_general_path():
    # given a hold account in another currency (the platform has one; the posting must still refuse a mix)
    _, hold = _wallet_and_hold("50.00")
    LedgerAccount.objects.filter(pk=hold.pk).update(currency="USD")
    # when a hold the wallet can cover is posted / then only the currencies refuse it
    with pytest.raises(ApplicationError, match="cannot mix currencies"):
        wallet_hold(organization_id=ORG, amount=Decimal("1"), idempotency_key="hold:mixed")
    assert not JournalTransaction.objects.filter(idempotency_key="hold:mixed").exists()
    assert wallet_summary(ORG)["balance"] == Decimal("50.00")


def test_a_release_of_more_than_is_held_is_refused_naming_the_hold():
    # given
    _wallet_and_hold("50.00")
    wallet_hold(organization_id=ORG, amount=Decimal("5"), idempotency_key=key())
    # when / then
    with pytest.raises(InsufficientFunds, match="wallet hold"):
        wallet_release(organization_id=ORG, amount=Decimal("5.01"), idempotency_key=key())
    assert wallet_summary(ORG) == {"balance": Decimal("45.00"), "held": Decimal("5.00")}
