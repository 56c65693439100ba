"""The core app's hand-written SQL: what the ORM cannot say.

- ``claim_idempotency_record``: ``INSERT … ON CONFLICT DO NOTHING RETURNING id`` (who inserted first; a concurrent
  first request's row is waited for on the unique index).
- ``advisory_xact_lock``: PostgreSQL's transaction-scoped advisory lock.
"""

from __future__ import annotations

from django.db import connection


def claim_idempotency_record(
    *, user_id: int, organization_id: int | None, key: str, method: str, path: str, fingerprint: str
) -> int | None:
    """Insert an empty idempotency record; its id, or None when (user, organization, key) exists."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO core_idempotencyrecord (user_id, organization_id, key, method, path, fingerprint, "
            "response_body, created_at) VALUES (%s, %s, %s, %s, %s, %s, '', now()) "
            "ON CONFLICT (user_id, organization_id, key) DO NOTHING RETURNING id",
            [user_id, organization_id, key, method, path, fingerprint],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def advisory_xact_lock(space: int, key: int) -> None:
    """Wait for and take the advisory lock (``space``, ``key``) until the transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [space, key])
