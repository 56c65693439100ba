"""``manage.py backfill_fixings --days N``: compute the price index for the last N closed days (idempotent)."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from market.services import fixings_backfill


class Command(BaseCommand):
    help = "Compute (or recompute) the price index fixings of the last N closed UTC days, oldest first."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30, help="how many days (default 30)")
        parser.add_argument("--until", help="the last day, YYYY-MM-DD (default: yesterday, UTC)")

    def handle(self, *args, days=30, until=None, **options):
        if days < 1:
            raise CommandError("--days must be at least 1")
        try:
            last = dt.date.fromisoformat(until) if until else None
        except ValueError:
            raise CommandError("--until must be a date such as 2026-03-01") from None
        done = [0]

        def progress(day: dt.date, rows: int) -> None:
            done[0] += 1
            self.stdout.write(f"[{done[0]}/{days}] {day.isoformat()}: {rows} fixings")

        total = fixings_backfill(days=days, until=last, progress=progress)
        self.stdout.write(self.style.SUCCESS(f"{total} fixings over {days} days"))
