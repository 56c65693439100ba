"""The sequencer against real concurrency on PostgreSQL (committed transactions, threads with their own
connections): run twice at once, killed mid-batch, a slow transaction whose event must not be skipped, and writers
racing the sequencer. Each ends with no gap, no duplicate and the right signed root."""

import threading
import time

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction

from audit import sequencer
from audit.integrity import audit_log_check
from audit.models import AuditEvent, AuditLeaf, TreeHead
from audit.sequencer import audit_sequence
from audit.services import audit_record
from audit.tree import event_leaf
from tests.audit.helpers import log_leaves, mth, pending_events, sequence_all, wait_until_sequenceable
from tests.helpers import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


def record(n: int, prefix: str = "race") -> list[int]:
    return [audit_record(action=f"{prefix}.{i}", object_type="thing", object_id=str(i)).pk for i in range(n)]


def assert_log_is_whole(expected_events: int) -> None:
    """Leaves 0 … n-1 without a gap, one per event, and the newest head signs the root of exactly those leaves."""
    indexes = list(AuditLeaf.objects.order_by("leaf_index").values_list("leaf_index", flat=True))
    assert indexes == list(range(expected_events))
    assert AuditLeaf.objects.values("event_id").distinct().count() == expected_events
    head = TreeHead.objects.order_by("-tree_size").first()
    assert head.tree_size == expected_events and bytes(head.root_hash) == mth(log_leaves())
    assert audit_log_check().failures == []


def test_two_sequencers_at_once_append_each_event_once():
    # given 60 committed events
    record(60)
    wait_until_sequenceable()
    # when two sequencers start together (small batches: many transactions each), then finish what is left
    runs = run_concurrently(lambda: audit_sequence(batch_size=7), [(), ()])
    assert all(isinstance(run, sequencer.SequencerRun) for run in runs), runs
    sequence_all()
    # then
    assert_log_is_whole(60)
    call_command("verify_audit")


def test_a_sequencer_finding_the_lock_taken_does_nothing():
    record(3)
    locked, release = threading.Event(), threading.Event()

    def hold_the_lock():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM audit_sequencerstate WHERE id = 1 FOR UPDATE")
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    audit_sequence(batch_size=1, max_batches=1)  # the state row exists
    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert locked.wait(30)
        run = audit_sequence()
        assert (run.active, run.appended) == (False, 0)
    finally:
        release.set()
        holder.join(30)
    sequence_all()
    assert_log_is_whole(3)


def test_a_sequencer_killed_mid_batch_leaves_nothing_and_the_next_run_completes(monkeypatch):
    # given 20 events and a sequencer that dies after storing its second batch's leaves and nodes
    record(20)
    heads = []

    def sign_then_die(*args, **kwargs):
        if heads:
            raise RuntimeError("killed")
        heads.append(real_sign(*args, **kwargs))
        return heads[-1]

    real_sign = sequencer._sign_head
    monkeypatch.setattr(sequencer, "_sign_head", sign_then_die)
    wait_until_sequenceable()
    with pytest.raises(RuntimeError, match="killed"):
        audit_sequence(batch_size=8)
    # then the first batch committed, the second left no trace
    assert list(TreeHead.objects.values_list("tree_size", flat=True)) == [8]
    assert AuditLeaf.objects.count() == 8
    # when the next run works
    monkeypatch.undo()
    sequence_all()
    # then
    assert_log_is_whole(20)


def test_a_slow_transaction_is_not_skipped_and_keeps_its_place():
    # given a transaction that recorded an event and has not committed yet
    recorded, finish = threading.Event(), threading.Event()
    slow: dict = {}

    def slow_transaction():
        try:
            with transaction.atomic():
                slow["id"] = audit_record(action="race.slow", object_type="thing", object_id="slow").pk
                recorded.set()
                finish.wait(60)
        finally:
            connections.close_all()

    worker = threading.Thread(target=slow_transaction)
    worker.start()
    try:
        assert recorded.wait(30)
        # and a later event (a higher id, a higher transaction id) that committed before it
        fast = record(1, prefix="fast")[0]
        assert fast > slow["id"]
        # when the sequencer runs meanwhile
        audit_sequence()
        # then it appends neither: the slow transaction might still commit an event that belongs before the fast one
        assert not AuditLeaf.objects.filter(event_id__in=[slow["id"], fast]).exists()
    finally:
        finish.set()
        worker.join(60)
    # when the slow transaction has committed
    sequence_all()
    # then both are in the log, the slow one first
    order = list(AuditLeaf.objects.order_by("leaf_index").values_list("event_id", flat=True))
    assert order == [slow["id"], fast]
    assert_log_is_whole(2)


def test_an_event_of_a_transaction_that_rolls_back_never_enters_the_log():
    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        record(1, prefix="rolled-back")
        raise Abort
    kept = record(2)
    sequence_all()
    assert sorted(AuditLeaf.objects.values_list("event_id", flat=True)) == kept
    assert_log_is_whole(2)


def test_writers_racing_two_sequencers_lose_no_event():
    # given four writers committing events while two sequencers loop
    stop = threading.Event()
    written: list[int] = []

    def write(worker: int) -> int:
        for i in range(25):
            with transaction.atomic():
                written.append(audit_record(action="race.write", object_type="w", object_id=f"{worker}.{i}").pk)
                if i % 5 == 0:
                    time.sleep(0.01)  # a transaction that stays open a little while others commit
        return worker

    def sequence(_: int) -> int:
        runs = 0
        while not stop.is_set():
            audit_sequence(batch_size=10)
            runs += 1
            time.sleep(0.005)
        return runs

    results: list = []

    def writers():
        results.extend(run_concurrently(write, [(w,) for w in range(4)]))
        stop.set()

    writer_thread = threading.Thread(target=writers)
    writer_thread.start()
    sequencer_results = run_concurrently(sequence, [(0,), (1,)])
    writer_thread.join(120)
    assert results == [0, 1, 2, 3], results
    assert all(isinstance(r, int) for r in sequencer_results), sequencer_results
    # when the last events are appended
    sequence_all()
    # then every event is a leaf exactly once, in (transaction id, id) order, under the right root
    assert pending_events() == 0 and len(written) == 100
    assert_log_is_whole(100)
    by_order = list(AuditEvent.objects.order_by("txid", "id").values_list("pk", flat=True))
    assert list(AuditLeaf.objects.order_by("leaf_index").values_list("event_id", flat=True)) == by_order
    assert log_leaves()[0] == event_leaf(AuditEvent.objects.get(pk=by_order[0]))
