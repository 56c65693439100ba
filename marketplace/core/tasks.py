"""Celery plumbing every app shares: the health task, and sending messages without ever hanging on an outage."""

from __future__ import annotations

import kombu.exceptions
import redis.exceptions
from celery import shared_task

# Sending a message failed: the broker is down or unreachable.
BROKER_ERRORS = (kombu.exceptions.OperationalError, redis.exceptions.RedisError, ConnectionError, OSError)


def fail_fast_connection(app):
    """A broker connection for sending that fails fast: a 2 s connect timeout, no connect or publish retries (a
    request or sweep must never hang on an outage). Use as a context manager; sending through it raises one of
    ``BROKER_ERRORS`` when the broker is unreachable. Pass ``retry=False`` to ``apply_async`` as well."""
    options = {**(app.conf.broker_transport_options or {}), "max_retries": 0}
    return app.connection_for_write(transport_options=options, connect_timeout=2)


@shared_task(name="core.health")
def health(value: int) -> int:
    """Round-trip check: the worker answers ``value + 1``."""
    return value + 1


@shared_task(name="core.purge_idempotency_records")
def purge_idempotency_records() -> int:
    """Hourly (beat): delete the ``Idempotency-Key`` records past their retention; how many were deleted."""
    from marketplace.core.idempotency import idempotency_records_purge

    return idempotency_records_purge()
