"""Demo reimbursement statements for ``manage.py seed_demo``: the open claims so far on one statement per program
(idempotent: a period already stated, or no open claims, issues nothing)."""

from django.utils import timezone

from settlement.services import statements_issue


def seed(stdout=None) -> dict:
    statements = statements_issue(until=timezone.now())
    if stdout:
        stdout.write(f"  settlement: {len(statements)} reimbursement statements issued")
    return {}
