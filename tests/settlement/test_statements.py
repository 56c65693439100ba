"""Reimbursement statements: statements_issue, statement_mark_paid, and claim_mark_paid refusing stated claims."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEvent
from ledger.models import JournalTransaction
from ledger.selectors import ledger_breaches
from marketplace.core.exceptions import ApplicationError
from settlement import payout_services
from settlement.models import ReimbursementClaim, ReimbursementStatement
from tests import factories
from tests.settlement.factories import balance
from tests.settlement.statement_factories import days_ago, open_claims
from tests.vouchers.factories import funded_program

pytestmark = pytest.mark.django_db


def test_issue_lists_each_programs_open_claims_on_one_statement():
    # given two programs with open claims (voucher part 20 % of 10000 and 5000)
    first = open_claims(count=2)
    second = open_claims(subtotal="5000.00")
    until = timezone.now()
    # when
    statements = payout_services.statements_issue(until=until)
    # then one statement per program, listing its claims, over [1st of the month of the oldest claim, until)
    assert len(statements) == 2
    by_program = {s.program_id: s for s in statements}
    one, two = by_program[first[0].program_id], by_program[second[0].program_id]
    assert (one.total, two.total) == (Decimal("4000.00"), Decimal("1000.00"))
    assert sorted(one.claims.values_list("pk", flat=True)) == sorted(c.pk for c in first)
    assert list(two.claims.values_list("pk", flat=True)) == [second[0].pk]
    assert one.status == "issued" and one.paid_at is None and one.issued_at is not None
    assert one.period_end == until
    assert one.period_start == payout_services.month_start(first[0].created_at)
    assert ReimbursementClaim.objects.filter(status="open").count() == 3  # stated, not paid
    events = AuditEvent.objects.filter(action="settlement.statement_issued")
    assert sorted(events.values_list("object_id", flat=True)) == sorted(str(s.pk) for s in statements)
    assert events.get(object_id=str(one.pk)).organization_id == one.program.issuer_id


def test_issue_twice_gives_one_statement_per_period_and_the_next_period_follows_on():
    # given a program's claim, stated once
    program = funded_program()
    open_claims(program)
    until = timezone.now()
    first = payout_services.statements_issue(until=until)
    # when issuing again for the same period, then after a new claim
    again = payout_services.statements_issue(until=until)
    late = open_claims(program)[0]
    later = payout_services.statements_issue(until=timezone.now(), program_id=program.pk)
    # then the period got one statement; the next starts where it ended and lists only the new claim
    assert len(first) == 1 and again == []
    assert len(later) == 1 and later[0].period_start == first[0].period_end
    assert list(later[0].claims.values_list("pk", flat=True)) == [late.pk]
    assert ReimbursementStatement.objects.filter(program=program).count() == 2


def test_default_period_is_last_month():
    # given a claim from last month and one from this month
    this_month = payout_services.month_start(timezone.now())
    program = funded_program()
    old = open_claims(program, created_at=this_month - dt.timedelta(days=3))[0]
    new = open_claims(program)[0]
    if new.created_at < this_month:  # cannot happen: created now
        pytest.fail("clock went backwards")
    # when issued with the defaults (what the beat on the 1st does)
    statements = payout_services.statements_issue()
    # then last month is stated, this month's claim waits for the next statement
    assert len(statements) == 1
    statement = statements[0]
    assert (statement.period_start, statement.period_end) == (payout_services.month_start(old.created_at), this_month)
    assert list(statement.claims.values_list("pk", flat=True)) == [old.pk]
    new.refresh_from_db()
    assert new.statement_id is None


def test_issue_skips_paid_claims_and_programs_without_open_ones():
    # given a program whose only claim was paid alone, and another with an open claim
    paid = open_claims()[0]
    payout_services.claim_mark_paid(claim=paid)
    pending = open_claims()[0]
    # when
    statements = payout_services.statements_issue(until=timezone.now())
    # then only the open claim is stated
    assert [s.program_id for s in statements] == [pending.program_id]
    assert not ReimbursementStatement.objects.filter(program_id=paid.program_id).exists()


@pytest.mark.parametrize(
    "until", [timezone.now() + dt.timedelta(hours=1), dt.datetime(2030, 1, 1)], ids=["future", "naive"]
)
def test_issue_refuses_a_future_or_naive_until_and_writes_nothing(until):
    open_claims()
    with pytest.raises(ApplicationError) as exc:
        payout_services.statements_issue(until=until)
    assert exc.value.status == 400 and "until" in exc.value.errors
    assert not ReimbursementStatement.objects.exists()


def test_database_refuses_overlapping_periods_negative_totals_and_empty_periods():
    # given a program's statement for January
    program = funded_program()
    jan, feb, mar = (dt.datetime(2025, m, 1, tzinfo=dt.UTC) for m in (1, 2, 3))
    ReimbursementStatement.objects.create(
        program=program, period_start=jan, period_end=feb, total=Decimal("1.00"), issued_at=feb
    )
    bad = [
        {"period_start": jan + dt.timedelta(days=10), "period_end": mar, "total": Decimal("1.00")},  # overlaps
        {"period_start": feb, "period_end": mar, "total": Decimal("-1.00")},  # negative total
        {"period_start": mar, "period_end": mar, "total": Decimal("1.00")},  # empty period
    ]
    for values in bad:
        # when / then each is refused by the database
        with pytest.raises(IntegrityError), transaction.atomic():
            ReimbursementStatement.objects.create(program=program, issued_at=mar, **values)
    # and February, right after January, or another program's January, is fine
    ReimbursementStatement.objects.create(
        program=program, period_start=feb, period_end=mar, total=Decimal("0.00"), issued_at=mar
    )
    ReimbursementStatement.objects.create(
        program=funded_program(), period_start=jan, period_end=feb, total=Decimal("1.00"), issued_at=feb
    )
    assert ReimbursementStatement.objects.count() == 3


def test_pay_posts_the_total_once_and_marks_every_claim_paid():
    # given a statement of three claims (3 × 2000 owed by the city)
    claims = open_claims(count=3)
    program_id = claims[0].program_id
    statement = payout_services.statements_issue(until=timezone.now())[0]
    payer = factories.member_of(statement.program.issuer)
    assert balance("reimbursement_due", program_id) == Decimal("-6000.00")
    bank_before = balance("bank")
    # when paid twice
    paid = payout_services.statement_mark_paid(statement=statement, actor=payer)
    again = payout_services.statement_mark_paid(statement=statement.pk, actor=payer)
    # then one posting bank(-6000) → reimbursement_due(+6000) under the statement's key
    assert paid.status == again.status == "paid" and paid.paid_by == payer and paid.paid_at is not None
    postings = JournalTransaction.objects.filter(idempotency_key=f"statement:{statement.pk}:paid")
    assert postings.count() == 1
    assert sorted(e.amount for e in postings.get().entries.all()) == [Decimal("-6000.00"), Decimal("6000.00")]
    assert balance("reimbursement_due", program_id) == Decimal("0.00")
    assert balance("bank") - bank_before == Decimal("-6000.00")
    assert not JournalTransaction.objects.filter(idempotency_key__startswith="claim:").exists()
    assert set(ReimbursementClaim.objects.values_list("status", "paid_by")) == {("paid", payer.pk)}
    assert AuditEvent.objects.filter(action="settlement.statement_paid", object_id=str(statement.pk)).count() == 1
    assert ledger_breaches() == []
    call_command("verify_ledger")


def test_a_claim_on_a_statement_cannot_be_paid_alone():
    # given a claim on an issued statement
    claim = open_claims()[0]
    statement = payout_services.statements_issue(until=timezone.now())[0]
    for _ in ("issued", "paid"):
        # when its claim is paid alone (before and after the statement is paid)
        with pytest.raises(ApplicationError) as exc:
            payout_services.claim_mark_paid(claim=claim.pk)
        # then it is refused with a 409 that names the statement, and nothing is posted for the claim
        assert exc.value.status == 409 and exc.value.code == "in_statement"
        assert f"statement {statement.pk}" in exc.value.message
        payout_services.statement_mark_paid(statement=statement)
    assert not JournalTransaction.objects.filter(idempotency_key=f"claim:{claim.pk}:paid").exists()
    assert JournalTransaction.objects.filter(idempotency_key=f"statement:{statement.pk}:paid").count() == 1
    assert balance("reimbursement_due", claim.program_id) == Decimal("0.00")


def test_paying_an_unknown_statement_is_404():
    with pytest.raises(ApplicationError) as exc:
        payout_services.statement_mark_paid(statement=999999)
    assert exc.value.status == 404


def test_issue_statements_command_and_monthly_task(settings):
    # given a claim of last month
    from celery.schedules import crontab

    from marketplace.celery import app
    from settlement.tasks import issue_monthly_statements

    claim = open_claims(created_at=payout_services.month_start(timezone.now()) - dt.timedelta(days=1))[0]
    # then the beat runs the task on the 1st of every month
    entry = settings.CELERY_BEAT_SCHEDULE["settlement-monthly-statements"]
    assert entry["task"] == "settlement.issue_monthly_statements" and entry["task"] in app.tasks
    assert isinstance(entry["schedule"], crontab) and entry["schedule"].day_of_month == {1}
    # when the task body runs twice
    ids = issue_monthly_statements.run()
    assert issue_monthly_statements.run() == []
    # then it issued last month's statement once
    assert len(ids) == 1 and ReimbursementStatement.objects.get(pk=ids[0]).claims.get() == claim


def test_issue_statements_command_prints_them_and_refuses_bad_input(capsys):
    from django.core.management.base import CommandError

    claim = open_claims(created_at=days_ago(2))[0]
    with pytest.raises(CommandError):
        call_command("issue_statements", "--until", "yesterday")
    with pytest.raises(CommandError):
        call_command("issue_statements", "--until", "2999-01-01")
    call_command("issue_statements", "--until", timezone.now().date().isoformat(), "--program", str(claim.program_id))
    out = capsys.readouterr().out
    statement = ReimbursementStatement.objects.get()
    assert f"statement {statement.pk}: program {claim.program_id}" in out and "1 statement(s) issued" in out


def test_demo_seeding_states_the_open_claims_once():
    from settlement import demo

    claim = open_claims()[0]
    demo.seed()
    demo.seed()
    assert ReimbursementStatement.objects.get().claims.get() == claim
