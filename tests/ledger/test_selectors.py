"""Wallet reads and the invariant checks."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test import override_settings

from ledger.models import LedgerAccount
from ledger.selectors import ledger_breaches, wallet_entries, wallet_summary
from ledger.services import account_for, wallet_hold
from tests.ledger.factories import funded_wallet, key, tamper_balance

ORG = 8_001


@pytest.mark.django_db
def test_wallet_summary_is_zero_before_any_deposit():
    assert wallet_summary(ORG) == {"balance": Decimal("0.00"), "held": Decimal("0.00")}


@pytest.mark.django_db
def test_entries_come_newest_first_with_the_balance_after_each():
    # given
    wallet = funded_wallet(ORG, "100.00")
    funded_wallet(ORG, "20.00")
    wallet_hold(organization_id=ORG, amount=Decimal("30"), idempotency_key=key())
    # when
    history = [(e.account.kind, e.amount, e.balance_after) for e in wallet_entries(ORG) if e.account_id == wallet.pk]
    both = [(e.account.kind, e.amount, e.balance_after) for e in wallet_entries(ORG)]
    # then
    assert history == [
        ("wallet", Decimal("-30.00"), Decimal("90.00")),
        ("wallet", Decimal("20.00"), Decimal("120.00")),
        ("wallet", Decimal("100.00"), Decimal("100.00")),
    ]
    assert both[:2] == [("wallet_hold", Decimal("30.00"), Decimal("30.00")), history[0]]
    assert wallet_entries(ORG + 1).count() == 0  # another organization's entries are not included


@pytest.mark.django_db
def test_a_sound_ledger_has_no_breaches():
    # given
    funded_wallet(ORG, "10.00")
    # then
    assert ledger_breaches() == []


@pytest.mark.django_db
def test_a_tampered_balance_is_a_breach():
    # given
    wallet = funded_wallet(ORG, "10.00")
    # when
    tamper_balance(wallet, "12.00")
    # then
    assert ledger_breaches() == [
        f"account {wallet.pk} (wallet owner {ORG}): stored balance 12.00 but its entries sum to 10.00"
    ]


@pytest.mark.django_db
def test_a_forbidden_negative_balance_is_a_breach():
    # given: the CHECK dropped (rolled back with the test) so a negative balance can be written at all
    wallet = funded_wallet(ORG, "10.00")
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE ledger_ledgeraccount DROP CONSTRAINT ledger_account_balance_allowed")
    # when
    tamper_balance(wallet, "-5.00")
    # then: the stored balance no longer matches its entries, and it is negative where it may not be
    breaches = ledger_breaches()
    assert len(breaches) == 2, breaches
    assert "stored balance -5.00 but its entries sum to 10.00" in breaches[0]
    assert "is negative (-5.00) but may not be" in breaches[1]


@pytest.mark.django_db
def test_a_foreign_currency_is_a_breach():
    # given
    account_for(LedgerAccount.Kind.WALLET, ORG)
    # when
    with override_settings(PLATFORM_CURRENCY="USD"):
        breaches = ledger_breaches()
    # then
    assert breaches == ["accounts use currencies ['CNY']; only USD is allowed"]
