"""ledger_post_many and accounts_for_many: many postings in two statements, with ledger_post's contract each."""

from decimal import Decimal

import pytest

from ledger.models import Entry, JournalTransaction, LedgerAccount
from ledger.selectors import ledger_breaches
from ledger.services import InsufficientFunds, Posting, account_for, accounts_for_many, ledger_post, ledger_post_many
from marketplace.core.exceptions import ApplicationError
from tests.ledger.factories import balance_of, funded_wallet, key

pytestmark = pytest.mark.django_db
K = LedgerAccount.Kind
ORG, OTHER = 7_101, 7_102


def test_each_posting_is_its_own_balanced_transaction_rounded_once():
    # given a funded wallet and a hold account
    wallet, hold = funded_wallet(ORG, "100.00"), account_for(K.WALLET_HOLD, ORG)
    keys = [key(), key()]
    # when two postings go in at once, one with a zero leg and amounts to round
    posted = ledger_post_many(
        [
            Posting(
                kind="hold",
                idempotency_key=keys[0],
                reference="r:1",
                legs=[(wallet, Decimal("-10.005")), (hold, Decimal("10.005")), (hold, Decimal("0.001"))],
            ),
            Posting(kind="hold", idempotency_key=keys[1], reference="r:2", legs=[(wallet, -5), (hold, 5)]),
        ]
    )
    # then they come back in order, each with its own entries, and the balances moved
    assert [t.idempotency_key for t in posted] == keys
    assert [t.replayed for t in posted] == [False, False]
    assert sorted(posted[0].entries.values_list("amount", flat=True)) == [Decimal("-10.01"), Decimal("10.01")]
    assert sorted(posted[1].entries.values_list("amount", flat=True)) == [Decimal("-5.00"), Decimal("5.00")]
    assert balance_of(K.WALLET, ORG) == Decimal("84.99")
    assert balance_of(K.WALLET_HOLD, ORG) == Decimal("15.01")
    assert ledger_breaches() == []


def test_a_key_posted_before_is_returned_as_replayed_and_a_different_posting_under_it_is_refused():
    # given a posting made by ledger_post
    wallet, hold = funded_wallet(ORG, "100.00"), account_for(K.WALLET_HOLD, ORG)
    first = ledger_post(kind="hold", idempotency_key="k:same", legs=[(wallet, -3), (hold, 3)])
    # when the same posting comes again in a batch with a new one
    posted = ledger_post_many(
        [
            Posting(kind="hold", idempotency_key="k:same", legs=[(wallet, -3), (hold, 3)]),
            Posting(kind="hold", idempotency_key="k:new", legs=[(wallet, -4), (hold, 4)]),
        ]
    )
    # then the first is the existing transaction, replayed, and only the new one wrote entries
    assert (posted[0].pk, posted[0].replayed, posted[1].replayed) == (first.pk, True, False)
    assert balance_of(K.WALLET_HOLD, ORG) == Decimal("7.00")
    # when a different posting reuses the key
    with pytest.raises(ApplicationError) as exc:
        ledger_post_many([Posting(kind="hold", idempotency_key="k:same", legs=[(wallet, -9), (hold, 9)])])
    # then 422 and nothing moved
    assert exc.value.status == 422
    assert balance_of(K.WALLET_HOLD, ORG) == Decimal("7.00")


def test_an_unbalanced_posting_refuses_the_whole_batch():
    wallet, hold = funded_wallet(ORG, "100.00"), account_for(K.WALLET_HOLD, ORG)
    count = JournalTransaction.objects.count()
    with pytest.raises(ApplicationError) as exc:
        ledger_post_many(
            [
                Posting(kind="hold", idempotency_key=key(), legs=[(wallet, -1), (hold, 1)]),
                Posting(kind="hold", idempotency_key=key(), legs=[(wallet, -1), (hold, 2)]),
            ]
        )
    assert exc.value.status == 400
    assert JournalTransaction.objects.count() == count


def test_an_overdraft_anywhere_in_the_batch_writes_none_of_it():
    # given two wallets, one short
    rich, poor = funded_wallet(ORG, "100.00"), funded_wallet(OTHER, "1.00")
    holds = account_for(K.WALLET_HOLD, ORG), account_for(K.WALLET_HOLD, OTHER)
    transactions, entries = JournalTransaction.objects.count(), Entry.objects.count()
    # when one posting of the batch would overdraw the short wallet
    with pytest.raises(InsufficientFunds) as exc:
        ledger_post_many(
            [
                Posting(kind="hold", idempotency_key=key(), legs=[(rich, -10), (holds[0], 10)]),
                Posting(kind="hold", idempotency_key=key(), legs=[(poor, -2), (holds[1], 2)]),
            ]
        )
    # then 409 naming the wallet, and nothing of the batch was written
    assert exc.value.status == 409 and "wallet" in exc.value.message
    assert (JournalTransaction.objects.count(), Entry.objects.count()) == (transactions, entries)
    assert balance_of(K.WALLET, ORG) == Decimal("100.00")


def test_two_postings_with_one_key_is_a_programming_error():
    wallet, hold = funded_wallet(ORG, "100.00"), account_for(K.WALLET_HOLD, ORG)
    with pytest.raises(ValueError, match="share an idempotency key"):
        ledger_post_many([Posting(kind="hold", idempotency_key="k:dup", legs=[(wallet, -1), (hold, 1)])] * 2)


def test_accounts_for_many_reads_existing_accounts_and_creates_missing_ones():
    # given one existing account
    existing = account_for(K.WALLET_HOLD, ORG)
    # when asked for it, a new owner's, the platform fees and a city's reimbursement due (twice, in any order)
    found = accounts_for_many(
        [
            (K.WALLET_HOLD, ORG),
            (K.PROVIDER_PAYABLE, OTHER),
            (K.PLATFORM_FEES, None),
            (K.REIMBURSEMENT_DUE, 5),
            (K.WALLET_HOLD, ORG),
        ]
    )
    # then one account per pair, the existing one reused, new ones created at zero with the kind's overdraft rule
    assert set(found) == {
        (K.WALLET_HOLD, ORG),
        (K.PROVIDER_PAYABLE, OTHER),
        (K.PLATFORM_FEES, None),
        (K.REIMBURSEMENT_DUE, 5),
    }
    assert found[(K.WALLET_HOLD, ORG)].pk == existing.pk
    assert found[(K.REIMBURSEMENT_DUE, 5)].allow_negative is True
    assert found[(K.PROVIDER_PAYABLE, OTHER)].allow_negative is False
    assert all(account.balance == Decimal("0.00") and account.pk for account in found.values())
    assert accounts_for_many([(K.PLATFORM_FEES, None)])[(K.PLATFORM_FEES, None)].pk == found[(K.PLATFORM_FEES, None)].pk
    with pytest.raises(ValueError, match="unknown"):
        accounts_for_many([("nonsense", 1)])
