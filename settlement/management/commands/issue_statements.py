"""``manage.py issue_statements``: reimbursement statements now (what the monthly beat does), printing each one."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from marketplace.core.exceptions import ApplicationError
from settlement.payout_services import statements_issue


def _until(value: str) -> dt.datetime:
    """``YYYY-MM-DD`` (00:00 UTC that day) or an ISO datetime with a time zone."""
    try:
        day = parse_date(value)
        moment = parse_datetime(value)
    except ValueError:  # well formed but impossible, e.g. 2025-02-30
        day = moment = None
    if day is not None:
        return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    if moment is None:
        raise CommandError(f"--until: not a date or datetime: {value!r}")
    return moment


class Command(BaseCommand):
    help = (
        "Issue a reimbursement statement per voucher program for its open claims before --until (default: the "
        "1st of this month, 00:00 UTC). Safe to run again: a period already stated gets no second statement."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--until",
            type=str,
            default=None,
            help="end of the period: YYYY-MM-DD (00:00 UTC) or ISO datetime; not in the future",
        )
        parser.add_argument("--program", type=int, default=None, help="only this voucher program's statement")

    def handle(self, *args, until=None, program=None, **options):
        try:
            statements = statements_issue(until=_until(until) if until else None, program_id=program)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        for statement in statements:
            self.stdout.write(
                f"statement {statement.pk}: program {statement.program_id} "
                f"[{statement.period_start.isoformat()}, {statement.period_end.isoformat()}) "
                f"total {statement.total}"
            )
        self.stdout.write(f"{len(statements)} statement(s) issued")
