"""``manage.py verify_ledger``: recompute every balance and check every ledger invariant; exit 1 on any breach."""

from django.core.management.base import BaseCommand, CommandError

from ledger.selectors import ledger_breaches, ledger_totals


class Command(BaseCommand):
    help = "Recompute account balances from entries and check the ledger invariants; exits non-zero on a breach."

    def handle(self, *args, **options):
        totals = ledger_totals()
        breaches = ledger_breaches()
        summary = ", ".join(f"{count} {name}" for name, count in totals.items())
        if breaches:
            for breach in breaches:
                self.stderr.write(f"BREACH: {breach}")
            raise CommandError(f"ledger verification failed: {len(breaches)} breach(es) in {summary}")
        self.stdout.write(self.style.SUCCESS(f"ledger OK: {summary}; every balance, sum and sign checks out"))
