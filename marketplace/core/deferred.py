"""Statements that should run last in their transaction: ``run_last(fn)`` inside ``last_statements()``.

Why: appending an audit event takes the audit chain's advisory lock (``audit_event_chain`` trigger), and that lock is
held until the transaction commits, WAL flush included; every audited write in the system waits for it. Whatever the
transaction does after the event's INSERT (another statement, serializing a response, a round trip each) lengthens
that wait for everyone. So a write path opens ``last_statements()`` around its transaction's work, calls
``run_last(lambda: audit_record(...))`` where it used to record, and the queued calls run, in the order queued,
as the block ends: after everything else, right before the COMMIT of the outermost block.

    with transaction.atomic(), last_statements():
        ...                                   # the work
        run_last(lambda: audit_record(...))   # queued
        ...                                   # more work
    # queued calls ran here, inside the transaction, then COMMIT

Rules:
- Blocks nest: an inner ``last_statements()`` joins the outer one, so the calls run at the end of the outermost.
- A call queued inside a savepoint that is rolled back is dropped (Django drops an ``on_commit`` marker registered
  with it; the marker is how we tell), and nothing runs when the block ends by an exception or marked for
  rollback (``transaction.set_rollback(True)``).
- Without an open block, or outside a transaction, ``run_last`` calls at once: the old behaviour.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection, transaction

_ATTRIBUTE = "_gpux_run_last"


@contextmanager
def last_statements() -> Iterator[None]:
    """Queue ``run_last`` calls made inside the block and run them as it ends (see the module docstring). Enter it
    inside the ``transaction.atomic()`` block whose end the calls should precede."""
    if getattr(connection, _ATTRIBUTE, None) is not None:  # joined: the outermost block runs them
        yield
        return
    queue: list[tuple[Callable[[], None], Callable[[], object]]] = []
    setattr(connection, _ATTRIBUTE, queue)
    try:
        yield
    finally:
        setattr(connection, _ATTRIBUTE, None)  # from here on (and in the calls below) run_last calls at once
    if connection.in_atomic_block and not transaction.get_rollback():
        # Markers still registered belong to savepoints that were released, not rolled back.
        alive = {id(func) for _sids, func, _robust in connection.run_on_commit}
        for marker, call in queue:
            if id(marker) in alive:
                call()


def run_last(call: Callable[[], object]) -> None:
    """Run ``call`` at the end of the open ``last_statements()`` block, or now when none is open."""
    queue = getattr(connection, _ATTRIBUTE, None)
    if queue is None or not connection.in_atomic_block:
        call()
        return

    def marker() -> None:  # registered with on_commit only to learn whether its savepoint survived
        return None

    transaction.on_commit(marker)
    queue.append((marker, call))
