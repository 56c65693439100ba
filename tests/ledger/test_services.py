"""ledger_post and the wallet helpers: rounding, idempotency, overdrafts, and races on real PostgreSQL."""

from decimal import Decimal

import pytest
from django.db import transaction

from ledger.models import Entry, JournalTransaction, LedgerAccount
from ledger.selectors import ledger_breaches, wallet_summary
from ledger.services import (
    InsufficientFunds,
    account_for,
    ledger_post,
    wallet_deposit,
    wallet_hold,
    wallet_release,
)
from marketplace.core.exceptions import ApplicationError
from tests.helpers import run_concurrently
from tests.ledger.factories import funded_wallet, key

ORG = 7_001


@pytest.mark.django_db
def test_ledger_post_rounds_half_up_once_and_drops_zero_legs():
    # given
    bank = account_for(LedgerAccount.Kind.BANK)
    wallet = account_for(LedgerAccount.Kind.WALLET, ORG)
    fees = account_for(LedgerAccount.Kind.PLATFORM_FEES)
    # when
    posted = ledger_post(
        kind="deposit",
        idempotency_key=key(),
        reference="bank:1",
        legs=[(bank, Decimal("-10.005")), (wallet, Decimal("10.005")), (fees, Decimal("0.001"))],
    )
    # then
    assert sorted(posted.entries.values_list("amount", flat=True)) == [Decimal("-10.01"), Decimal("10.01")]
    assert wallet_summary(ORG) == {"balance": Decimal("10.01"), "held": Decimal("0.00")}
    assert posted.replayed is False


@pytest.mark.django_db
def test_ledger_post_refuses_legs_that_do_not_sum_to_zero():
    # given
    bank = account_for(LedgerAccount.Kind.BANK)
    wallet = account_for(LedgerAccount.Kind.WALLET, ORG)
    # when / then
    with pytest.raises(ApplicationError, match="sum to zero") as raised:
        ledger_post(kind="deposit", idempotency_key=key(), legs=[(bank, Decimal("-10")), (wallet, Decimal("9.99"))])
    assert raised.value.status == 400
    assert JournalTransaction.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("legs", [[], [("bank", Decimal("0.004"))]])
def test_ledger_post_refuses_an_empty_posting(legs):
    # given
    legs = [(account_for(kind), amount) for kind, amount in legs]
    # when / then
    with pytest.raises(ApplicationError, match="every leg is zero"):
        ledger_post(kind="deposit", idempotency_key=key(), legs=legs)


@pytest.mark.django_db
def test_the_same_key_twice_posts_once():
    # given
    first = wallet_deposit(organization_id=ORG, amount=Decimal("100"), idempotency_key="deposit:once")
    # when
    again = wallet_deposit(organization_id=ORG, amount=Decimal("100.00"), idempotency_key="deposit:once")
    # then
    assert again.pk == first.pk and again.replayed is True
    assert JournalTransaction.objects.count() == 1
    assert wallet_summary(ORG)["balance"] == Decimal("100.00")


@pytest.mark.django_db
def test_the_same_key_with_other_legs_is_422_and_writes_nothing():
    # given
    wallet_deposit(organization_id=ORG, amount=Decimal("100"), idempotency_key="deposit:once")
    # when
    with pytest.raises(ApplicationError) as raised:
        wallet_deposit(organization_id=ORG, amount=Decimal("100.01"), idempotency_key="deposit:once")
    # then
    assert (raised.value.status, raised.value.code) == (422, "idempotency_mismatch")
    assert wallet_summary(ORG)["balance"] == Decimal("100.00")


@pytest.mark.django_db
def test_hold_and_release_move_money_between_wallet_and_hold():
    # given
    funded_wallet(ORG, "100.00")
    # when
    wallet_hold(organization_id=ORG, amount=Decimal("60"), idempotency_key=key(), reference="booking:1")
    wallet_release(organization_id=ORG, amount=Decimal("25.50"), idempotency_key=key(), reference="booking:1")
    # then
    assert wallet_summary(ORG) == {"balance": Decimal("65.50"), "held": Decimal("34.50")}
    assert ledger_breaches() == []


@pytest.mark.django_db
def test_a_zero_amount_posts_nothing():
    # when
    results = [
        fn(organization_id=ORG, amount=Decimal("0.004"), idempotency_key=key())
        for fn in (wallet_deposit, wallet_hold, wallet_release)
    ]
    # then
    assert results == [None, None, None]
    assert Entry.objects.count() == 0


@pytest.mark.django_db
def test_a_negative_amount_is_a_field_error():
    # when / then
    with pytest.raises(ApplicationError) as raised:
        wallet_hold(organization_id=ORG, amount=Decimal("-1"), idempotency_key=key())
    assert "amount" in raised.value.errors


@pytest.mark.django_db
def test_a_short_wallet_raises_insufficient_funds_and_the_callers_transaction_survives():
    # given
    funded_wallet(ORG, "30.00")
    # when: the caller carries on inside its own transaction after the refusal
    with transaction.atomic():
        with pytest.raises(InsufficientFunds) as raised:
            wallet_hold(organization_id=ORG, amount=Decimal("30.01"), idempotency_key=key())
        wallet_hold(organization_id=ORG, amount=Decimal("30.00"), idempotency_key=key())
    # then
    assert raised.value.status == 409
    assert str(raised.value) == "Insufficient funds in wallet: ¥30.00 available, ¥30.01 needed."
    assert wallet_summary(ORG) == {"balance": Decimal("0.00"), "held": Decimal("30.00")}


@pytest.mark.django_db
def test_a_retried_hold_replays_even_once_the_wallet_is_empty():
    # given a hold of the whole wallet
    funded_wallet(ORG, "30.00")
    first = wallet_hold(organization_id=ORG, amount=Decimal("30.00"), idempotency_key="hold:all")
    # when the same hold is retried (the balance check would now refuse a new one)
    again = wallet_hold(organization_id=ORG, amount=Decimal("30.00"), idempotency_key="hold:all")
    # then the first posting answers and nothing more is held
    assert again.pk == first.pk and again.replayed is True
    assert wallet_summary(ORG) == {"balance": Decimal("0.00"), "held": Decimal("30.00")}


@pytest.mark.django_db
def test_releasing_more_than_is_held_is_refused():
    # given
    funded_wallet(ORG, "10.00")
    wallet_hold(organization_id=ORG, amount=Decimal("5"), idempotency_key=key())
    # when / then
    with pytest.raises(InsufficientFunds, match="wallet hold"):
        wallet_release(organization_id=ORG, amount=Decimal("5.01"), idempotency_key=key())


@pytest.mark.django_db
def test_account_for_refuses_an_unknown_kind_and_lets_only_external_accounts_go_negative():
    # when / then
    with pytest.raises(ValueError, match="unknown"):
        account_for("piggy_bank", ORG)
    assert account_for(LedgerAccount.Kind.BANK).allow_negative
    assert account_for(LedgerAccount.Kind.PROGRAM_FUNDING, 3).allow_negative
    assert not account_for(LedgerAccount.Kind.WALLET, ORG).allow_negative


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_use_creates_one_account():
    # when
    results = run_concurrently(lambda: account_for(LedgerAccount.Kind.WALLET, ORG).pk, [()] * 10)
    # then
    assert len(set(results)) == 1, results
    assert LedgerAccount.objects.filter(kind=LedgerAccount.Kind.WALLET, owner_id=ORG).count() == 1


@pytest.mark.django_db(transaction=True)
def test_parallel_spends_of_one_wallet_never_overdraw_it():
    # given: 1000 in the wallet; 20 threads each try to hold 75 (only 13 can fit)
    funded_wallet(ORG, "1000.00")
    amount = Decimal("75.00")

    def spend(index):
        return wallet_hold(
            organization_id=ORG, amount=amount, idempotency_key=f"race:{index}", reference=f"booking:{index}"
        )

    # when
    results = run_concurrently(spend, [(i,) for i in range(20)])
    # then
    wins = [r for r in results if isinstance(r, JournalTransaction)]
    losses = [r for r in results if isinstance(r, InsufficientFunds)]
    assert len(wins) + len(losses) == 20, results  # nothing else: no deadlock, no 500
    assert len(wins) == 13
    assert len(wins) * amount <= Decimal("1000.00")
    assert wallet_summary(ORG) == {"balance": Decimal("1000.00") - 13 * amount, "held": 13 * amount}
    assert ledger_breaches() == []


@pytest.mark.django_db(transaction=True)
def test_the_same_key_posted_concurrently_posts_once():
    # given
    funded_wallet(ORG, "100.00")

    def hold():
        return wallet_hold(organization_id=ORG, amount=Decimal("10"), idempotency_key="hold:same").pk

    # when
    results = run_concurrently(hold, [()] * 8)
    # then
    assert len(set(results)) == 1, results
    assert wallet_summary(ORG) == {"balance": Decimal("90.00"), "held": Decimal("10.00")}
