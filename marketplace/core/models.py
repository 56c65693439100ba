"""Shared model bases."""

from django.conf import settings
from django.db import models


class TimeStampedModel(models.Model):
    """Adds ``created_at`` / ``updated_at`` (UTC, set by Django)."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class IdempotencyRecord(models.Model):
    """The first response to a POST sent with an ``Idempotency-Key`` header, per (user, organization, key).

    Written in the same transaction as the handler's changes (see ``marketplace.core.idempotency``), so a record
    exists exactly when those changes committed. ``fingerprint`` is the SHA-256 of method, path and canonical body.
    ``organization_id`` is the organization the request acted for (its ``X-Organization`` header; NULL without
    one): a user of two organizations may use one key for each. A plain id, not a foreign key: this module sits
    below the ``accounts`` app and imports none.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    organization_id = models.BigIntegerField(null=True, blank=True)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)  # null only inside the first request's transaction
    response_body = models.TextField(blank=True)  # the rendered JSON, byte for byte (jsonb would reorder keys)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        # NULLS NOT DISTINCT: without the header, (user, key) alone is unique, as before.
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization_id", "key"], nulls_distinct=False, name="idempotency_user_org_key_unique"
            )
        ]

    def __str__(self):
        return f"{self.method} {self.path} [{self.key}]"
