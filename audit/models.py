"""Audit events: who did what to which object, in the same transaction as the change."""

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One recorded action, append-only and hash-chained.

    The database does the chaining (``audit_event_chain`` trigger, migration 0002): under a transaction-scoped
    advisory lock it gives each new event the next ``seq``, the previous event's ``hash`` as ``prev_hash``, and
    ``hash = sha256(prev_hash | seq | fields)``. Another trigger refuses UPDATE, DELETE and TRUNCATE.
    ``manage.py verify_audit`` walks the chain. Because those columns are filled in by the database, the Python
    object returned by ``create()`` does not carry them; re-read the row when they are needed.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    organization_id = models.BigIntegerField(null=True, blank=True, db_index=True)  # no FK: audit imports no app
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    seq = models.BigIntegerField(null=True, blank=True, unique=True, editable=False)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.object_type}:{self.object_id}"
