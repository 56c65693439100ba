"""``manage.py verify_audit``: check the audit log — every leaf against its event, the Merkle tree against the
leaves, every signed tree head (signature, root, consistency) — and exit 1 naming the first failure."""

from django.core.management.base import BaseCommand, CommandError

from audit.integrity import audit_log_check


class Command(BaseCommand):
    help = (
        "Verify the audit log: leaves recomputed from their events, the Merkle tree from the leaves, and every signed "
        "tree head. Exits non-zero and names the first failure."
    )

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="list every failure, not only the first")

    def handle(self, *args, **options):
        self.stdout.write("Checking the audit log …")
        check = audit_log_check(first_only=not options["all"])
        if check.pending:
            self.stdout.write(
                f"{check.pending} committed events wait for the sequencer (the oldest for "
                f"{check.oldest_pending_seconds:.0f} s); they are not in the log yet."
            )
        if check.failures:
            for failure in check.failures[1:]:
                self.stderr.write(failure)
            raise CommandError(f"Audit log check failed: {check.failures[0]}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit log intact: {check.tree_size} leaves, every node, and {check.heads} signed tree heads verified."
            )
        )
