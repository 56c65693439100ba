"""``manage.py seed_demo``: load the demo marketplace with two weeks of history. Idempotent: running it again the
same day changes nothing.

The seeders (``settings.DEMO_SEEDERS``) run twice. First on a clock set back ``HISTORY_DAYS`` days
(``marketplace.core.clock``): organizations, listings, programs and wallets appear then, and each startup books a
few days ahead. ``settlement.demo.replay`` moves that clock forward to now through the real sweeps and weekly
payouts, so those bookings run, are settled and paid out, and the voucher parts become reimbursement claims. Then
the seeders run again at the real time: each startup gets an upcoming booking, and the open claims are stated.
"""

import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.demo import DEMO_PASSWORD
from market import demo as market_demo
from marketplace.core.clock import clock_set_to
from settlement import demo as settlement_demo

HISTORY_DAYS = 14


class Command(BaseCommand):
    help = (
        "Create or update the demo marketplace: organizations, clusters, listings, programs, bookings, and the "
        "last two weeks of settlement (idempotent)."
    )

    def handle(self, *args, **options):
        now = timezone.now()
        since = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(
            days=HISTORY_DAYS
        )
        self.stdout.write(f"The marketplace as of {since:%Y-%m-%d}, {HISTORY_DAYS} days ago:")
        with clock_set_to(since) as move_to:
            self._seed()
            self.stdout.write(f"Replaying {since:%Y-%m-%d} → {now:%Y-%m-%d %H:%M} UTC …")
            settlement_demo.replay(move_to, since=since, until=now, stdout=self.stdout)
            # the price index of that history, while the demo listings still have its windows
            market_demo.backfill(days=HISTORY_DAYS, until=(now - dt.timedelta(days=1)).date(), stdout=self.stdout)
        self.stdout.write("The marketplace today:")
        logins = self._seed()
        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Logins (password {DEMO_PASSWORD!r}):"))
        for role, username in logins.items():
            self.stdout.write(f"  {role:<15} {username}")

    def _seed(self) -> dict[str, str]:
        logins: dict[str, str] = {}
        for dotted in settings.DEMO_SEEDERS:
            self.stdout.write(f"Seeding {dotted.rsplit('.', 2)[0]} …")
            logins.update(import_string(dotted)(stdout=self.stdout) or {})
        return logins
