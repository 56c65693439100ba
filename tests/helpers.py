"""Helpers for tests that race real transactions on PostgreSQL."""

import threading

from django.db import close_old_connections, connections


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


def page_input(moment) -> str:
    """``moment`` as a person types it into a page's ``datetime-local`` input: in Beijing time (the pages' default
    zone, ``settings.DISPLAY_TIME_ZONE``), without offset."""
    import zoneinfo

    from django.conf import settings

    return moment.astimezone(zoneinfo.ZoneInfo(settings.DISPLAY_TIME_ZONE)).strftime("%Y-%m-%dT%H:%M")
