"""``manage.py seed_demo``: load the demo marketplace. Idempotent: running it again changes nothing."""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.module_loading import import_string

from accounts.demo import DEMO_PASSWORD


class Command(BaseCommand):
    help = "Create or update demo organizations, users, clusters, listings and programs (idempotent)."

    def handle(self, *args, **options):
        logins: dict[str, str] = {}
        for dotted in settings.DEMO_SEEDERS:
            self.stdout.write(f"Seeding {dotted.rsplit('.', 2)[0]} …")
            logins.update(import_string(dotted)(stdout=self.stdout) or {})
        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Logins (password {DEMO_PASSWORD!r}):"))
        for role, username in logins.items():
            self.stdout.write(f"  {role:<15} {username}")
