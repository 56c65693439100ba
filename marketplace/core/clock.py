"""A clock that can be set, for replaying the demo's recent past through the real services.

``manage.py seed_demo`` builds two weeks of history (bookings made, run, settled and paid out) by calling the same
services a request or a Celery task would, with ``django.utils.timezone.now`` answering the time set here. The
services take every timestamp they write from that function (the ledger's too), so the past they write is consistent
with itself: a voucher is issued before it is spent, a payout follows the settlements it covers. (A user's
``date_joined`` is not one of them: Django binds its default at import.)

Only the demo seeder uses it: it patches a process-wide function, so never in a request, a task or a thread.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from unittest import mock


@contextmanager
def clock_set_to(moment: dt.datetime) -> Iterator[Callable[[dt.datetime], None]]:
    """Within the block ``timezone.now()`` answers ``moment`` (aware), then whatever the yielded ``move_to(t)`` set
    last; time does not pass by itself. Raises ``ValueError`` for a naive moment."""
    if moment.tzinfo is None:
        raise ValueError("the clock needs an aware datetime")
    now = [moment]

    def move_to(when: dt.datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("the clock needs an aware datetime")
        now[0] = when

    with mock.patch("django.utils.timezone.now", lambda: now[0]):
        yield move_to
