"""The one lock order of every write path, its lock helpers, and the bounded retry when contention still bites.

Lock order — every transaction that writes takes the locks it needs in this order, never back:

1. the row the request is about, when it has one: the bid (bid paths) or the booking (status changes);
2. the listing (``orders.services.listing_for_quote(lock=True)``: ``FOR NO KEY UPDATE`` of the listing row);
3. cluster capacity (``lock_cluster_capacity``: an advisory lock per cluster, then the ``NodeReservation`` rows
   inserted or deactivated);
4. open-order counters (``orders.limits.open_order_count``: the organization's ``OpenOrderLimit`` row);
5. vouchers, by id (``SELECT … FOR UPDATE`` ordered by pk, in one statement);
6. wallet and other ledger accounts, by id (``ledger.services.ledger_post`` locks its legs' accounts in id order;
   ``ledger_post_many`` inserts its entries in account-id order);
Audit events take no lock: each is a plain INSERT wherever the change is made (the audit sequencer appends committed
events to the log afterwards, ``audit.sequencer``), so they have no place in this order.

A path skips the steps it does not need but never goes back to an earlier one. Two transactions that follow the
order cannot wait for each other in a cycle, so PostgreSQL never has to abort one of them as a deadlock victim.

Contention that remains (a lock taken outside the order by code that predates it, a serialization failure) is
retried by ``retry_on_contention`` around the whole transaction, a bounded number of times with a small jittered
backoff, and then answered 409 ``Busy`` ("The exchange is busy; retry."): never 500. It only retries when it owns
the outermost transaction; inside an outer ``atomic`` block the error goes up to whoever owns that transaction
(after the error the transaction is aborted: only a retry from its start can help).

This module imports no app (``marketplace.core`` is the bottom layer): the helpers take ids.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError, connection
from django.utils.translation import gettext
from psycopg import errors as pg_errors

from marketplace.core import sql
from marketplace.core.exceptions import Conflict

logger = logging.getLogger(__name__)

T = TypeVar("T")

# First key of the advisory locks that serialise node choice per cluster (second key: the cluster id).
CAPACITY_LOCK_SPACE = 0x6F726473  # "ords"
# How many times a transaction is run in all before contention answers 409 Busy, and the first backoff (seconds;
# doubled after each attempt, jittered by ±50 %).
CONTENTION_ATTEMPTS = 3
CONTENTION_BACKOFF_S = 0.05
_CONTENTION_ERRORS = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)


class Busy(Conflict):
    """409 ``busy``: the transaction lost to concurrent ones every time it was tried; the client may retry."""

    def __init__(self, message: str | None = None):
        super().__init__(message or gettext("The exchange is busy; retry."), code="busy")


def is_contention(exc: BaseException) -> bool:
    """Whether ``exc`` (a Django database error or a psycopg one) is a deadlock or a serialization failure: an
    error that a retry of the whole transaction can cure."""
    return isinstance(exc, _CONTENTION_ERRORS) or (
        isinstance(exc, DatabaseError) and isinstance(exc.__cause__, _CONTENTION_ERRORS)
    )


def lock_cluster_capacity(cluster_id: int) -> None:
    """Serialise capacity decisions on one cluster until the end of the current transaction (step 3).

    A transaction-scoped advisory lock, taken before choosing nodes, so concurrent bookings of one cluster choose
    in turn: each sees the nodes the previous one took and no one gets a 409 while nodes are free. Without it, two
    bookings inserting overlapping rows at the same moment wait for each other inside the exclusion check until
    PostgreSQL's deadlock detector aborts one (a second later). The exclusion constraint stays the guarantee; this
    is the fast path. Anything else that reserves nodes (bids matching) should call it too.
    """
    sql.advisory_xact_lock(CAPACITY_LOCK_SPACE, cluster_id % 2**31)


def _backoff(attempt: int) -> float:
    return CONTENTION_BACKOFF_S * 2**attempt * random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not a secret


def run_with_retry(call: Callable[[], T], *, attempts: int = CONTENTION_ATTEMPTS, name: str = "") -> T:
    """``call()``, run again (after a short jittered backoff) when it fails on a deadlock or a serialization
    failure, at most ``attempts`` times in all; then ``Busy`` (409). ``call`` must open its own transaction and
    have no effect outside it but on commit (``transaction.on_commit``), so running it again is safe.

    Inside an outer ``atomic`` block it runs ``call()`` once and lets the error go up: the outer transaction is
    aborted by it, and only whoever opened that transaction can run it again. Other errors pass through.
    """
    if connection.in_atomic_block:
        return call()
    for attempt in range(attempts):
        try:
            return call()
        except DatabaseError as exc:
            if not is_contention(exc):
                raise
            if attempt + 1 == attempts:
                logger.warning(
                    "%s: still contended after %d attempts (%s): answering busy",
                    name or call,
                    attempts,
                    type(exc.__cause__ or exc).__name__,
                )
                raise Busy() from exc
            logger.info("%s: %s, retrying", name or call, type(exc.__cause__ or exc).__name__)
            time.sleep(_backoff(attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def retry_on_contention(func: Callable[..., T]) -> Callable[..., T]:
    """Decorate a service that opens its own transaction: ``run_with_retry`` around each call (see there)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return run_with_retry(lambda: func(*args, **kwargs), name=func.__qualname__)

    return wrapper
