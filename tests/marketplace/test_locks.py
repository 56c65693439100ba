"""``marketplace.core.locks``: contention is retried around the whole transaction a bounded number of times, then
answers 409 "busy" — never 500."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, OperationalError, connection, transaction
from psycopg import errors as pg_errors

from marketplace.core import locks
from marketplace.core.handlers import api_exception_handler
from orders import services
from orders.models import Booking
from tests import factories
from tests.helpers import run_concurrently
from tests.orders.factories import booking_body, fund

BUSY = {"detail": "The exchange is busy; retry.", "errors": {}}


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(locks, "CONTENTION_BACKOFF_S", 0)


def _deadlock() -> OperationalError:
    """What Django raises when PostgreSQL picks this transaction as a deadlock's victim."""
    try:
        raise pg_errors.DeadlockDetected("deadlock detected")
    except pg_errors.DeadlockDetected as cause:
        try:
            raise OperationalError("deadlock detected") from cause
        except OperationalError as exc:
            return exc


def _failing(error_factory, times: int):
    calls = []

    def call():
        calls.append(1)
        if len(calls) <= times:
            raise error_factory()
        return "done"

    return call, calls


@pytest.mark.parametrize("cause", [pg_errors.DeadlockDetected, pg_errors.SerializationFailure])
def test_contention_is_recognised_through_djangos_wrapper(cause):
    try:
        raise OperationalError("x") from cause("x")
    except OperationalError as exc:
        assert locks.is_contention(exc)
    assert not locks.is_contention(OperationalError("connection lost"))
    assert not locks.is_contention(IntegrityError("duplicate key"))


def test_a_contended_transaction_is_run_again_until_it_goes_through():
    # given a call that loses twice
    call, calls = _failing(_deadlock, times=2)
    # when
    result = locks.run_with_retry(call)
    # then the third attempt went through
    assert (result, len(calls)) == ("done", 3)


def test_contention_that_persists_answers_busy_after_the_last_attempt():
    # given a call that always loses
    call, calls = _failing(_deadlock, times=99)
    # when / then
    with pytest.raises(locks.Busy) as info:
        locks.run_with_retry(call)
    assert len(calls) == locks.CONTENTION_ATTEMPTS
    assert (info.value.status, info.value.code, info.value.message) == (409, "busy", BUSY["detail"])


def test_other_errors_are_not_retried():
    call, calls = _failing(lambda: OperationalError("connection lost"), times=1)
    with pytest.raises(OperationalError):
        locks.run_with_retry(call)
    assert len(calls) == 1


@pytest.mark.django_db
def test_inside_an_outer_transaction_the_error_goes_up_to_its_owner():
    # given a call that loses once, run inside a transaction we do not own
    call, calls = _failing(_deadlock, times=1)
    # when / then: no retry here (the outer transaction is aborted; only its owner can run it again)
    with transaction.atomic(), pytest.raises(OperationalError):
        locks.run_with_retry(call)
    assert len(calls) == 1


def test_the_api_answers_an_escaped_deadlock_with_409_busy():
    response = api_exception_handler(_deadlock(), {})
    assert (response.status_code, response.data) == (409, BUSY)


@pytest.mark.django_db(transaction=True)
def test_a_real_deadlock_is_retried_and_both_transactions_commit():
    # given two rows and two transactions that lock them in opposite orders, meeting in the middle the first time
    first, second = factories.UserFactory().pk, factories.UserFactory().pk
    users = get_user_model().objects
    meet = threading.Barrier(2)
    attempts = {first: 0, second: 0}

    def crossing(a, b):
        def transfer():
            attempts[a] += 1
            with transaction.atomic():
                users.select_for_update().filter(pk=a).update(first_name="locked")
                if attempts[a] == 1:
                    meet.wait(timeout=10)
                users.select_for_update().filter(pk=b).update(last_name="locked")
            return "committed"

        return locks.run_with_retry(transfer)

    # when
    results = run_concurrently(crossing, [(first, second), (second, first)])
    # then PostgreSQL aborted one as the deadlock's victim, which ran again and committed
    assert results == ["committed", "committed"]
    assert sorted(attempts.values()) == [1, 2]
    assert connection.in_atomic_block is False


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("key", [None, "k-busy"])
def test_a_booking_that_keeps_deadlocking_answers_409_busy_over_http(monkeypatch, startup, startup_client, key):
    # given a startup whose every booking attempt loses a deadlock (with an Idempotency-Key the decorator owns the
    # transaction and retries it; without, booking_create does)
    fund(startup, "10000.00")
    calls = []

    def deadlocking(*args):
        calls.append(1)
        raise _deadlock()

    monkeypatch.setattr(services, "_take_free_nodes", deadlocking)
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    # when
    response = startup_client.post("/api/v1/bookings/", booking_body(), format="json", **headers)
    # then it was tried a bounded number of times, then 409 busy, never 500; nothing was written
    assert (response.status_code, response.json()) == (409, BUSY)
    assert len(calls) == locks.CONTENTION_ATTEMPTS
    assert not Booking.objects.exists()


@pytest.mark.django_db
def test_a_deadlock_that_escapes_the_services_answers_409_busy_over_http(monkeypatch, startup, startup_client):
    # given a deadlock inside the test's own transaction (no service owns it, so nothing retries)
    fund(startup, "10000.00")
    monkeypatch.setattr(services, "_take_free_nodes", lambda *args: (_ for _ in ()).throw(_deadlock()))
    # when
    response = startup_client.post("/api/v1/bookings/", booking_body(), format="json")
    # then the handler maps it: 409 busy
    assert (response.status_code, response.json()) == (409, BUSY)
