"""``manage.py run_sweeps``: every lifecycle/expiry sweep once, printing how many rows each changed."""

from django.core.management.base import BaseCommand

from settlement.sweep_services import sweeps_run
from settlement.tasks import enqueue_settlement


class Command(BaseCommand):
    help = "Run every settlement and expiry sweep once and print the counts (safe to run at any time)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--settle-inline",
            action="store_true",
            help="settle bookings that complete here instead of enqueueing a task",
        )
        parser.add_argument("--batch", type=int, default=500, help="rows locked per batch (default 500)")

    def handle(self, *args, settle_inline=False, batch=500, **options):
        counts = sweeps_run(settle=None if settle_inline else enqueue_settlement, batch=batch)
        for name, count in counts.items():
            self.stdout.write(f"{name}: {count if count >= 0 else 'FAILED (see log)'}")
        if any(count < 0 for count in counts.values()):
            self.stderr.write("some sweeps failed")
            raise SystemExit(1)
