"""``run_last`` / ``last_statements``: calls queued to the end of the transaction (the audit chain lock's hold time)."""

import pytest
from django.db import transaction

from marketplace.core.deferred import last_statements, run_last

pytestmark = pytest.mark.django_db


def test_run_last_without_an_open_block_calls_at_once():
    calls = []
    # when
    with transaction.atomic():
        run_last(lambda: calls.append("queued"))
        calls.append("after")
    # then
    assert calls == ["queued", "after"]


def test_queued_calls_run_in_order_after_the_rest_of_the_block():
    calls = []
    # when
    with transaction.atomic(), last_statements():
        run_last(lambda: calls.append("first"))
        calls.append("work")
        run_last(lambda: calls.append("second"))
        calls.append("more work")
    # then
    assert calls == ["work", "more work", "first", "second"]


def test_an_inner_block_joins_the_outer_one():
    calls = []
    # when
    with transaction.atomic(), last_statements():
        with transaction.atomic(), last_statements():
            run_last(lambda: calls.append("inner"))
        calls.append("outer work")
    # then
    assert calls == ["outer work", "inner"]


def test_a_call_queued_in_a_rolled_back_savepoint_is_dropped():
    calls = []
    # when
    with transaction.atomic(), last_statements():
        try:
            with transaction.atomic():
                run_last(lambda: calls.append("rolled back"))
                raise ValueError("refused")
        except ValueError:
            pass
        with transaction.atomic():
            run_last(lambda: calls.append("released"))
    # then
    assert calls == ["released"]


def test_nothing_runs_when_the_block_is_marked_for_rollback():
    calls = []
    # when
    with transaction.atomic(), last_statements():
        run_last(lambda: calls.append("queued"))
        transaction.set_rollback(True)
    # then
    assert calls == []


def test_nothing_runs_when_the_block_raises():
    calls = []
    # when
    with pytest.raises(RuntimeError), transaction.atomic(), last_statements():
        run_last(lambda: calls.append("queued"))
        raise RuntimeError("boom")
    # then
    assert calls == []
    run_last(lambda: calls.append("after the block"))  # and the queue is closed: calls run at once again
    assert calls == ["after the block"]
