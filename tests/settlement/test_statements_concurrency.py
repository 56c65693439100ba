"""Statements under real concurrent transactions: issuers racing each other, payers racing each other, and a
statement racing a single-claim payment. No mocks: threads with their own connections (``run_concurrently``)."""

from collections import Counter
from decimal import Decimal

import pytest
from django.utils import timezone

from ledger.models import JournalTransaction, LedgerAccount
from ledger.selectors import ledger_breaches
from marketplace.core.exceptions import ApplicationError
from settlement import payout_services
from settlement.models import ReimbursementClaim, ReimbursementStatement
from tests.helpers import run_concurrently
from tests.settlement.statement_factories import open_claims
from tests.vouchers.factories import funded_program

pytestmark = pytest.mark.django_db(transaction=True)


def due(program_id) -> Decimal:
    return LedgerAccount.objects.get(kind="reimbursement_due", owner_id=program_id).balance


def test_two_concurrent_issuers_put_each_claim_on_exactly_one_statement():
    # given three programs with open claims
    claims = [claim for _ in range(3) for claim in open_claims(funded_program(), count=2)]
    until = timezone.now()
    # when two issuers run at once, three times over
    for _ in range(3):
        results = run_concurrently(lambda: payout_services.statements_issue(until=until), [(), ()])
        assert not [r for r in results if isinstance(r, BaseException)], results
    # then each program has one statement for the period, listing all its claims, each claim once
    statements = list(ReimbursementStatement.objects.all())
    assert Counter(s.program_id for s in statements) == Counter({c.program_id for c in claims})
    stated = dict(ReimbursementClaim.objects.values_list("pk", "statement_id"))
    assert None not in stated.values() and set(stated) == {c.pk for c in claims}
    for statement in statements:
        assert statement.total == sum(statement.claims.values_list("amount", flat=True)) == Decimal("4000.00")


def test_concurrent_payments_of_one_statement_post_once():
    # given an issued statement
    claims = open_claims(count=2)
    statement = payout_services.statements_issue(until=timezone.now())[0]
    # when four payers mark it paid at once
    results = run_concurrently(lambda: payout_services.statement_mark_paid(statement=statement.pk), [()] * 4)
    # then every call sees it paid, and the money was received once
    assert [getattr(r, "status", r) for r in results] == ["paid"] * 4
    assert JournalTransaction.objects.filter(idempotency_key=f"statement:{statement.pk}:paid").count() == 1
    assert due(claims[0].program_id) == Decimal("0.00")
    assert set(ReimbursementClaim.objects.values_list("status", flat=True)) == {"paid"}
    assert ledger_breaches() == []


def test_issuing_races_paying_a_claim_alone_and_the_city_pays_it_once():
    # given open claims; one of them is paid alone while the statement is being issued
    claims = open_claims(count=3)
    target = claims[1]

    def issue():
        return payout_services.statements_issue(until=timezone.now())

    def pay_alone():
        try:
            return payout_services.claim_mark_paid(claim=target.pk)
        except ApplicationError as exc:
            return exc

    # when
    results = run_concurrently(lambda f: f(), [(issue,), (pay_alone,)])
    # then either the claim was paid alone and is on no statement, or it is on the statement and was refused
    assert not isinstance(results[0], BaseException), results
    target.refresh_from_db()
    if target.statement_id is None:
        assert target.status == "paid" and getattr(results[1], "status", None) == "paid"
    else:
        assert isinstance(results[1], ApplicationError) and results[1].code == "in_statement"
        assert target.status == "open"
    # and after paying whatever statement there is, the city owes nothing and paid nothing twice
    for statement in ReimbursementStatement.objects.all():
        payout_services.statement_mark_paid(statement=statement)
    assert due(target.program_id) == Decimal("0.00")
    assert set(ReimbursementClaim.objects.values_list("status", flat=True)) == {"paid"}
    assert ledger_breaches() == []
