"""Helpers for tests that race real transactions on PostgreSQL, and small helpers many test modules share."""

import datetime as dt
import threading
import time

from django.db import close_old_connections, connections


def iso(moment: dt.datetime) -> str:
    """``moment`` as the API reads and writes it: ISO 8601, UTC written ``Z``."""
    return moment.isoformat().replace("+00:00", "Z")


def run_concurrently(fn, args_list, *, timeout=120):
    """Run ``fn(*args)`` for each ``args`` in ``args_list`` in parallel threads, each with its own database
    connection, released together by a barrier. Returns the results (or raised exceptions) in order.
    Use with ``@pytest.mark.django_db(transaction=True)`` so the threads see committed data."""
    results: list = [None] * len(args_list)
    barrier = threading.Barrier(len(args_list))

    def worker(index, args):
        try:
            barrier.wait(timeout=timeout)
            results[index] = fn(*args)
        except BaseException as exc:  # collected and asserted on by the caller
            results[index] = exc
        finally:
            close_old_connections()
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, a)) for i, a in enumerate(args_list)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results


def backend_pid(using: str = "default") -> int:
    """The PostgreSQL backend process id of this thread's connection (connecting first): what
    ``wait_until_blocked`` looks for from another thread."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def wait_until_blocked(pid: int, *, by: int | None = None, timeout: float = 30, using: str = "default") -> None:
    """Return once backend ``pid`` waits for a lock (``pg_stat_activity.wait_event_type = 'Lock'``), held by
    backend ``by`` when given (``pg_blocking_pids``); fail after ``timeout`` seconds. Polls from this thread's
    connection, also inside a transaction (the activity snapshot is cleared before each look)."""
    deadline = time.monotonic() + timeout
    with connections[using].cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT wait_event_type, wait_event, pg_blocking_pids(pid) FROM pg_stat_activity WHERE pid = %s", [pid]
            )
            row = cursor.fetchone()
            if row and row[0] == "Lock" and (by is None or by in row[2]):
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"backend {pid} was not seen waiting for a lock{f' of {by}' if by else ''} "
                    f"within {timeout} s (last seen: {row})"
                )
            time.sleep(0.01)


def page_input(moment) -> str:
    """``moment`` as a person types it into a page's ``datetime-local`` input: in Beijing time (the pages' default
    zone, ``settings.DISPLAY_TIME_ZONE``), without offset."""
    import zoneinfo

    from django.conf import settings

    return moment.astimezone(zoneinfo.ZoneInfo(settings.DISPLAY_TIME_ZONE)).strftime("%Y-%m-%dT%H:%M")


def totp_code(device=None, *, key_hex: str | None = None) -> str:
    """What an authenticator app holding the device's key shows: the code of the current 30-second step, or of the
    next one when the current one was already used (a code works once; the server accepts one step either side)."""
    import time

    from django_otp.oath import TOTP

    key = bytes.fromhex(key_hex or device.key)
    totp = TOTP(key, step=30, t0=0, digits=6)
    totp.time = time.time()
    step = totp.t()
    if device is not None:
        device.refresh_from_db()
        step = max(step, device.last_t + 1)
        while step > totp.t() + device.tolerance:  # used up to the next step too: wait for the clock
            time.sleep(1)
            totp.time = time.time()
    totp.time = step * 30 + 1
    return f"{totp.token():06d}"
