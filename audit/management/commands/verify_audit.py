"""``manage.py verify_audit``: walk the audit hash chain; exit 1 naming the first broken link."""

from django.core.management.base import BaseCommand, CommandError

from audit.models import AuditEvent
from audit.selectors import audit_chain_breaks


class Command(BaseCommand):
    help = "Verify the audit log's hash chain. Exits non-zero and names the first broken link."

    def handle(self, *args, **options):
        total = AuditEvent.objects.count()
        self.stdout.write(f"Checking {total} audit events …")
        breaks = audit_chain_breaks(first_only=True)
        if breaks:
            raise CommandError(f"Audit chain broken at {breaks[0]}")
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {total} events."))
