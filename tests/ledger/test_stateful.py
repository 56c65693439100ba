"""A hypothesis state machine: random deposits, holds and releases on a few wallets, checked against a Python
model and the ledger invariants after every step."""

import itertools
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from ledger.selectors import ledger_breaches, wallet_summary
from ledger.services import InsufficientFunds, wallet_deposit, wallet_hold, wallet_release
from marketplace.core.money import ZERO

WALLETS = 3
# Each example gets fresh owner ids: the database is not reset between examples, only at the end of the test.
_owner_base = itertools.count(1_000_000, WALLETS)
_keys = itertools.count(1)

amounts = st.decimals(min_value=Decimal("0.00"), max_value=Decimal("500.00"), places=3)  # 3 places: rounding too
wallets = st.integers(min_value=0, max_value=WALLETS - 1)


class WalletMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        base = next(_owner_base)
        self.owners = [base + i for i in range(WALLETS)]
        self.model = {owner: {"balance": ZERO, "held": ZERO} for owner in self.owners}

    def _move(self, service, index: int, amount: Decimal, source: str | None, target: str):
        owner = self.owners[index]
        rounded = amount.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
        short = source is not None and self.model[owner][source] < rounded
        try:
            result = service(organization_id=owner, amount=amount, idempotency_key=f"sm:{next(_keys)}")
        except InsufficientFunds:
            assert short, f"refused although {source} has {self.model[owner][source]} >= {rounded}"
            return
        assert not short, f"{source} had {self.model[owner][source]} < {rounded} yet the posting went through"
        assert (result is None) == (rounded == ZERO)
        if source:
            self.model[owner][source] -= rounded
        self.model[owner][target] += rounded

    @rule(index=wallets, amount=amounts)
    def deposit(self, index, amount):
        self._move(wallet_deposit, index, amount, None, "balance")

    @rule(index=wallets, amount=amounts)
    def hold(self, index, amount):
        self._move(wallet_hold, index, amount, "balance", "held")

    @rule(index=wallets, amount=amounts)
    def release(self, index, amount):
        self._move(wallet_release, index, amount, "held", "balance")

    @rule(index=wallets, key=st.integers(min_value=1, max_value=5))
    def replay_a_deposit(self, index, key):
        """Re-posting an existing key does nothing the second time."""
        owner = self.owners[index]
        idempotency_key = f"sm-replay:{owner}:{key}"
        first = wallet_deposit(organization_id=owner, amount=Decimal("1.00"), idempotency_key=idempotency_key)
        again = wallet_deposit(organization_id=owner, amount=Decimal("1.00"), idempotency_key=idempotency_key)
        assert again.pk == first.pk
        if not first.replayed:
            self.model[owner]["balance"] += Decimal("1.00")

    @invariant()
    def balances_match_the_model(self):
        for owner in self.owners:
            assert wallet_summary(owner) == self.model[owner]

    @invariant()
    def ledger_is_sound(self):
        assert ledger_breaches() == []


@pytest.mark.django_db
def test_random_wallet_operations_keep_the_ledger_sound():
    run_state_machine_as_test(
        WalletMachine,
        settings=settings(
            max_examples=25, stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
        ),
    )
