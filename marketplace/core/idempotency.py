"""``Idempotency-Key`` for API POSTs that create money or capacity (ARCHITECTURE §3).

Usage — decorate the DRF handler; permission checks have already run when it is called::

    from marketplace.core.idempotency import idempotent

    class BookingListCreate(APIView):
        @idempotent
        def post(self, request):
            ...
            return Response(data, status=201)

Contract:
- Without the header the handler runs as usual. With it, the key is scoped to (user, organization, key) — the
  organization is the one the request acts for, its ``X-Organization`` header (none without it), so a user of two
  organizations may send one key for each — and the request is fingerprinted: method, path and the SHA-256 of the
  canonical JSON body (keys sorted). An ``X-Organization`` that is not an id answers 400.
- First request: a record is inserted (``INSERT … ON CONFLICT DO NOTHING`` on the unique (user, organization,
  key)) in the same transaction as the handler, and the response status and JSON body are stored in it. The
  handler's own ``transaction.atomic`` blocks become savepoints of that transaction, so changes and record commit
  together. An exception from the handler rolls that transaction back whole, so a service the handler calls may
  skip its own savepoint (``handler_rolls_back_whole(request)``).
- Contention: when that transaction fails on a deadlock or a serialization failure, it is run again from the start
  (``marketplace.core.locks.run_with_retry``), a bounded number of times, then answers 409 ``busy``.
- Replay with the same fingerprint: the first response (same status and body) plus ``Idempotent-Replayed: true``;
  the handler does not run.
- Same key with another method, path or body: 422 ``{"detail", "errors": {"Idempotency-Key": [...]}}``.
- Concurrent duplicates: the second insert blocks on the unique index until the first commits, then replays; if
  the first failed, it runs as a first request.
- Error responses (status ≥ 400, or an exception) are not stored: the transaction rolls back, so a client may retry
  with the same key after fixing its input.
- Records are kept ``IDEMPOTENCY_RETENTION_HOURS`` (default 72), then ``idempotency_records_purge`` (hourly beat
  task ``core.purge_idempotency_records``) deletes them: a key sent again after that is a new request.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiParameter
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from marketplace.core import sql
from marketplace.core.exceptions import ApplicationError
from marketplace.core.locks import run_with_retry
from marketplace.core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
ORGANIZATION_HEADER = "X-Organization"
# The header in the OpenAPI schema of every view decorated with ``idempotent``.
SCHEMA_PARAMETER = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="a replay returns the first response; another body answers 422",
)
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = IdempotencyRecord._meta.get_field("key").max_length


def request_fingerprint(request) -> str:
    """SHA-256 over method, path and the body as canonical JSON (sorted keys, no whitespace)."""
    data = request.data
    if hasattr(data, "lists"):  # a QueryDict from a form post: keep repeated values
        data = {key: values if len(values) > 1 else values[0] for key, values in data.lists()}
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    canonical = "\n".join([request.method, request.path, hashlib.sha256(body.encode()).hexdigest()])
    return hashlib.sha256(canonical.encode()).hexdigest()


def _organization_id(request) -> int | None:
    """The organization the request acts for, from its ``X-Organization`` header: None without one; 400 when it is
    not an id (the handler would refuse it too, but the key must not be claimed under a scope it cannot name)."""
    value = request.headers.get(ORGANIZATION_HEADER, "").strip()
    if not value:
        return None
    if not value.isdigit() or not 0 < int(value) < 2**63:
        raise ApplicationError(
            gettext("You cannot act for that organization."),
            errors={"organization": [gettext("Send the X-Organization header with an organization id.")]},
        )
    return int(value)


def _claim(request, organization_id: int | None, key: str, fingerprint: str) -> int | None:
    """Insert the record; its id, or None when (user, organization, key) exists (after waiting for a concurrent
    first request)."""
    return sql.claim_idempotency_record(
        user_id=request.user.pk,
        organization_id=organization_id,
        key=key,
        method=request.method,
        path=request.path[:255],
        fingerprint=fingerprint,
    )


def _replay(request, organization_id: int | None, key: str, fingerprint: str) -> Response:
    record = IdempotencyRecord.objects.get(user=request.user, organization_id=organization_id, key=key)
    if record.fingerprint != fingerprint:
        raise ApplicationError(
            gettext("This Idempotency-Key was already used for a different request."),
            status=422,
            errors={HEADER: [gettext("Already used with another method, path or body; use a new key.")]},
            code="idempotency_mismatch",
        )
    data = json.loads(record.response_body) if record.response_body else None  # dicts keep the stored key order
    return Response(data, status=record.status_code, headers={REPLAYED_HEADER: "true"})


# Set on the request while its handler runs inside ``idempotent``'s transaction (``handler_rolls_back_whole``).
_IN_TRANSACTION = "_idempotent_transaction"


def handler_rolls_back_whole(request) -> bool:
    """Whether ``request``'s handler runs inside ``idempotent``'s transaction (it sent an ``Idempotency-Key``), which
    is rolled back whole when the handler raises: a service the handler calls needs no savepoint of its own to
    undo its part (``orders.services.booking_create(savepoint=False)``)."""
    return getattr(request, _IN_TRANSACTION, False)


def idempotent(handler):
    """Decorate a DRF view method (``post``) so an ``Idempotency-Key`` header makes it safe to retry."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER, "").strip()
        if not key or not request.user.is_authenticated:
            return handler(view, request, *args, **kwargs)
        if len(key) > MAX_KEY_LENGTH:
            raise ApplicationError(
                gettext("The Idempotency-Key is too long."),
                errors={HEADER: [gettext("At most %(count)s characters.") % {"count": MAX_KEY_LENGTH}]},
            )
        organization_id = _organization_id(request)
        fingerprint = request_fingerprint(request)
        return run_with_retry(
            lambda: _once(view, request, args, kwargs, organization_id, key, fingerprint),
            name=f"{handler.__qualname__} (idempotent)",
        )

    def _once(view, request, args, kwargs, organization_id, key, fingerprint):
        with transaction.atomic():
            record_id = _claim(request, organization_id, key, fingerprint)
            if record_id is None:
                return _replay(request, organization_id, key, fingerprint)
            setattr(request, _IN_TRANSACTION, True)
            try:
                response = handler(view, request, *args, **kwargs)
            finally:
                setattr(request, _IN_TRANSACTION, False)
            if response.status_code >= 400:
                transaction.set_rollback(True)  # neither the changes nor the record: the client may retry
                return response
            # Store what the client receives: the rendered JSON (Decimals already strings, dates ISO).
            body = JSONRenderer().render(response.data).decode() if response.data is not None else ""
            IdempotencyRecord.objects.filter(pk=record_id).update(status_code=response.status_code, response_body=body)
        return response

    return wrapper


# Rows deleted per statement by ``idempotency_records_purge``: short statements, so a purge never holds many row
# locks or a long transaction next to the requests that insert records.
PURGE_BATCH = 5_000


def idempotency_records_purge(*, now: dt.datetime | None = None, batch: int = PURGE_BATCH) -> int:
    """Delete the records created more than ``IDEMPOTENCY_RETENTION_HOURS`` before ``now`` (default: the current
    time), ``batch`` rows per statement (each its own transaction, oldest first); returns how many were deleted.
    Idempotent: a second run finds nothing more to delete."""
    cutoff = (now or timezone.now()) - dt.timedelta(hours=settings.IDEMPOTENCY_RETENTION_HOURS)
    deleted = 0
    while True:
        oldest = IdempotencyRecord.objects.filter(created_at__lt=cutoff).order_by("created_at").values("pk")[:batch]
        count, _ = IdempotencyRecord.objects.filter(pk__in=oldest).delete()
        deleted += count
        if count < batch:
            return deleted
