"""Celery plumbing every app shares: the health task, and sending messages without ever hanging on an outage."""

from __future__ import annotations

import logging

import kombu.exceptions
import redis.exceptions
from celery import shared_task
from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)


# A task that writes to the database and may run again: acknowledged only after it ran (a worker lost mid-task →
# the message is redelivered), retried with backoff when the database connection dropped. Every such task is
# idempotent, so a redelivery or a retry repeats nothing.
def db_task_options(*, max_retries: int = 3, **extra) -> dict:
    """The ``shared_task`` options of an idempotent database task; ``extra`` adds or overrides (time limits)."""
    return {
        "ignore_result": True,
        "acks_late": True,
        "reject_on_worker_lost": True,
        "autoretry_for": (OperationalError, InterfaceError),
        "retry_backoff": 2,
        "max_retries": max_retries,
        **extra,
    }


# Sending a message failed: the broker is down or unreachable.
BROKER_ERRORS = (kombu.exceptions.OperationalError, redis.exceptions.RedisError, ConnectionError, OSError)


def fail_fast_connection(app):
    """A broker connection for sending that fails fast: a 2 s connect timeout, no connect or publish retries (a
    request or sweep must never hang on an outage). Use as a context manager; sending through it raises one of
    ``BROKER_ERRORS`` when the broker is unreachable. Pass ``retry=False`` to ``apply_async`` as well."""
    options = {**(app.conf.broker_transport_options or {}), "max_retries": 0}
    return app.connection_for_write(transport_options=options, connect_timeout=2)


def send_now(task, *args, catch_up: str) -> bool:
    """``task.apply_async(args)`` now over a ``fail_fast_connection``; False, logged as "could not enqueue
    name(args) … (``catch_up``)", when the broker is unreachable, so the caller (a request, a commit hook) carries
    on and the periodic task named in ``catch_up`` does the work later."""
    try:
        with fail_fast_connection(task.app) as conn:
            task.apply_async(args=args, retry=False, connection=conn)
    except BROKER_ERRORS as exc:
        logger.warning("could not enqueue %s(%s): %s (%s)", task.name, ", ".join(map(repr, args)), exc, catch_up)
        return False
    return True


@shared_task(name="core.health")
def health(value: int) -> int:
    """Round-trip check: the worker answers ``value + 1``."""
    return value + 1


@shared_task(name="core.purge_idempotency_records")
def purge_idempotency_records() -> int:
    """Hourly (beat): delete the ``Idempotency-Key`` records past their retention; how many were deleted."""
    from marketplace.core.idempotency import idempotency_records_purge

    return idempotency_records_purge()
