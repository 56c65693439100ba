"""manage.py verify_ledger."""

from io import StringIO

import pytest
from django.core.management import CommandError, ManagementUtility, call_command

from ledger.models import JournalTransaction
from tests.ledger.factories import funded_wallet, key, tamper_balance

ORG = 6_001


@pytest.mark.django_db
def test_verify_ledger_passes_on_a_sound_ledger():
    # given
    funded_wallet(ORG, "10.00")
    out = StringIO()
    # when
    call_command("verify_ledger", stdout=out)
    # then
    assert "ledger OK: 2 accounts, 1 transactions, 2 entries" in out.getvalue()


@pytest.mark.django_db
def test_verify_ledger_fails_naming_each_breach():
    # given: a tampered balance (below the triggers) and a transaction without entries
    tamper_balance(funded_wallet(ORG, "10.00"), "11.00")
    JournalTransaction.objects.create(kind="deposit", idempotency_key=key("raw"))  # no entries: not caught until commit
    err = StringIO()
    # when
    with pytest.raises(CommandError, match="2 breach"):
        call_command("verify_ledger", stderr=err)
    # then
    assert "stored balance 11.00 but its entries sum to 10.00" in err.getvalue()
    assert "has 0 entries" in err.getvalue()


@pytest.mark.django_db
def test_verify_ledger_exits_non_zero_from_the_command_line():
    # given
    tamper_balance(funded_wallet(ORG, "10.00"), "9.00")
    # when
    with pytest.raises(SystemExit) as raised:
        ManagementUtility(["manage.py", "verify_ledger"]).execute()
    # then
    assert raised.value.code == 1
