"""``manage.py sequence_audit``: run the audit sequencer once now (what the ``audit.sequence`` beat task does)."""

from django.core.management.base import BaseCommand

from audit.sequencer import audit_sequence


class Command(BaseCommand):
    help = "Append committed audit events to the log's Merkle tree and sign a tree head (once, now)."

    def handle(self, *args, **options):
        run = audit_sequence()
        if not run.active:
            self.stdout.write("Another sequencer run is active; nothing done.")
            return
        self.stdout.write(self.style.SUCCESS(f"Appended {run.appended} events; tree size {run.tree_size}."))
