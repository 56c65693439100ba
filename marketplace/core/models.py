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
    """The first response to a POST sent with an ``Idempotency-Key`` header, per (user, key).

    Written in the same transaction as the handler's changes (see ``marketplace.core.idempotency``), so a record
    exists exactly when those changes committed. ``fingerprint`` is the SHA-256 of method, path and canonical body.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)  # null only inside the first request's transaction
    response_body = models.TextField(blank=True)  # the rendered JSON, byte for byte (jsonb would reorder keys)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key_unique")]

    def __str__(self):
        return f"{self.method} {self.path} [{self.key}]"
