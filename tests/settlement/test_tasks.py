"""Tasks through a real worker and real Redis, the enqueue helper when Redis is down, and the crash test."""

import time

import pytest
from django.core.management import call_command
from django.db import transaction

from ledger.models import JournalTransaction, LedgerAccount
from ledger.selectors import ledger_breaches
from orders.models import Booking
from settlement import sweep_services
from settlement.models import BookingSettlement
from settlement.tasks import enqueue_settlement, send_many, send_safely, settle_booking, settle_bookings
from tests import factories
from tests.orders.factories import booking_body, fund
from tests.settlement import workers
from tests.settlement.factories import booking_in, completed_booking

CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def settled_count(ids) -> int:
    return Booking.objects.filter(pk__in=ids, status=Booking.Status.SETTLED).count()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("together", [False, True], ids=["settle_booking each", "one settle_bookings batch"])
def test_a_real_worker_settles_bookings_enqueued_on_commit(together):
    # given completed bookings and a worker on our broker
    bookings = [completed_booking(subtotal=f"{100 + i}.00") for i in range(3)]
    ids = [b.pk for b in bookings]
    with workers.broker(workers.own_broker_url()):
        proc = workers.start_worker()
        try:
            # when enqueued inside a transaction (sent on commit), one message each or one for the batch
            with transaction.atomic():
                if together:
                    enqueue_settlement(*ids)
                else:
                    for pk in ids:
                        enqueue_settlement(pk)
            # then the worker settles each through Redis
            assert workers.wait_until(lambda: settled_count(ids) == 3, timeout=90)
        finally:
            workers.stop_worker(proc)
    assert JournalTransaction.objects.filter(kind="settle").count() == 3
    assert ledger_breaches() == []


@pytest.mark.django_db
def test_enqueue_with_redis_down_is_logged_not_raised(caplog, django_capture_on_commit_callbacks):
    # given a broker nobody listens on
    booking = completed_booking()
    with workers.broker(CLOSED_PORT_BROKER):
        # when
        sent = send_safely(settle_booking, booking.pk)
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            enqueue_settlement(booking.pk)
    # then
    assert sent is False and len(callbacks) == 1
    assert caplog.text.count("could not enqueue settlement.settle_booking") == 2


@pytest.mark.django_db
def test_redis_down_bookings_still_taken_and_sweeps_settle_them_later(
    startup_client, startup, caplog, django_capture_on_commit_callbacks
):
    # given Redis is down
    fund(startup)
    with workers.broker(CLOSED_PORT_BROKER):
        # when a booking is made through the API
        response = startup_client.post("/api/v1/bookings/", booking_body(confirm=True), format="json")
        # then it is taken
        assert response.status_code == 201, response.content
        booking = Booking.objects.get(pk=response.json()["id"])
        # when its time and its 48-hour dispute window pass and the lifecycle sweeps run while Redis is still down
        Booking.objects.filter(pk=booking.pk).update(start=factories.next_hour(-53), end=factories.next_hour(-50))
        with django_capture_on_commit_callbacks(execute=True):
            assert sweep_services.sweep_started_bookings() == 1
            assert sweep_services.sweep_ended_bookings(settle=enqueue_settlement) == 1
        # then the booking completed and the failed enqueue was logged
        assert Booking.objects.get(pk=booking.pk).status == Booking.Status.COMPLETED
        assert f"could not enqueue settlement.settle_booking({booking.pk},)" in caplog.text
        # when the operator's run_sweeps (or the next beat) runs
        call_command("run_sweeps")
    # then the catch-up sweep settled it
    assert Booking.objects.get(pk=booking.pk).status == Booking.Status.SETTLED
    assert JournalTransaction.objects.filter(idempotency_key=f"booking:{booking.pk}:settle").count() == 1
    assert ledger_breaches() == []


# The broker puts a dead worker's unacknowledged message back on its queue once it is this old (seconds), when a
# worker starts: the successor is started after that, so it takes the message at once.
VISIBILITY_TIMEOUT = 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("per_message", [1, 3], ids=["settle_booking each", "settle_bookings of 3"])
def test_kill_9_a_worker_mid_task_then_its_redelivered_task_settles_exactly_once(per_message):
    # given completed bookings in five messages, the middle one for a second buyer whose wallet-hold account the
    # test keeps locked: the worker settles the first two messages, then waits inside the third's transaction
    buyer, held_buyer, listing = factories.StartupFactory(), factories.StartupFactory(), factories.ListingFactory()

    def completed(of, count):
        return [
            booking_in(Booking.Status.COMPLETED, buyer=of, listing=listing, subtotal=f"{10 + i}.00").pk
            for i in range(count)
        ]

    before, doomed, after = (
        completed(buyer, 2 * per_message),
        completed(held_buyer, per_message),
        completed(buyer, 2 * per_message),
    )
    ids = before + doomed + after
    messages = [ids[i : i + per_message] for i in range(0, len(ids), per_message)]
    hold = LedgerAccount.objects.get(kind=LedgerAccount.Kind.WALLET_HOLD, owner_id=held_buyer.pk)
    env = {"CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT)}
    with workers.broker(workers.own_broker_url()) as url, workers.RowLock(LedgerAccount, hold.pk) as lock:
        # one child process: the messages are taken one at a time, in order
        first = workers.start_worker(pool="prefork", concurrency=1, name="doomed", extra_env=env)
        try:
            if per_message == 1:
                assert all(send_safely(settle_booking, pk) for [pk] in messages)
            else:  # as the sweeps enqueue: batches, each settled in one transaction
                assert send_many(settle_bookings, [(chunk,) for chunk in messages]) == len(messages)
            assert workers.wait_until(lambda: workers.lock_waiters(lock.pid) or first.poll() is not None, timeout=90)
            assert first.poll() is None, f"the worker exited ({first.returncode}); {settled_count(ids)} settled"
            assert workers.lock_waiters(lock.pid), f"the worker never waited for the lock; {settled_count(ids)} settled"
            [waiting] = workers.lock_waiters(lock.pid)
            # when the worker is killed (-9, its whole process group) while it waits there
            workers.kill_group(first)
        finally:
            if first.poll() is None:
                workers.kill_group(first)
        # then the messages before were settled and acknowledged; the one in progress was not acknowledged
        assert settled_count(before) == len(before) and settled_count(doomed + after) == 0
        [taken] = workers.unacked(url)
        assert (taken["task"], taken["args"]) == (
            (settle_booking.name, doomed) if per_message == 1 else (settle_bookings.name, [doomed])
        )
        # and its transaction dies with it: once the lock is released, the orphaned backend rolls it back
        lock.release()
        assert workers.wait_until(lambda: not workers.backend_alive(waiting), timeout=30)
        assert settled_count(doomed) == 0 and BookingSettlement.objects.filter(booking_id__in=doomed).count() == 0
        # when a new worker starts after the visibility timeout, it takes the message again, and the rest
        assert workers.wait_until(
            lambda: time.time() > taken["delivered_at"] + VISIBILITY_TIMEOUT + 0.5, timeout=VISIBILITY_TIMEOUT + 5
        )
        second = workers.start_worker(pool="prefork", concurrency=1, name="successor", extra_env=env)
        try:
            assert workers.wait_until(lambda: settled_count(ids) == len(ids), timeout=90), (
                f"{settled_count(ids)} of {len(ids)} settled; successor alive: {second.poll() is None}; "
                f"unacknowledged: {workers.unacked(url)}"
            )
        finally:
            workers.stop_worker(second)
        assert workers.unacked(url) == []
    # then each booking was settled exactly once, and the catch-up sweep finds nothing left
    settles = JournalTransaction.objects.filter(kind="settle")
    assert sorted(settles.values_list("reference", flat=True)) == sorted(f"booking:{pk}" for pk in ids)
    assert BookingSettlement.objects.count() == len(ids)
    per_booking = Booking.objects.filter(pk__in=ids, status_changes__to_status="settled").values_list("pk", flat=True)
    assert sorted(per_booking) == sorted(ids)
    assert sweep_services.sweep_unsettled() == 0
    assert ledger_breaches() == []
    call_command("verify_ledger")


@pytest.mark.django_db
def test_beat_schedule_names_registered_tasks_and_they_run(settings):
    # given the beat schedule
    from marketplace.celery import app
    from settlement.tasks import create_weekly_payouts, run_sweeps

    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"settlement.run_sweeps", "settlement.create_weekly_payouts"} <= names
    assert {"settlement.run_sweeps", "settlement.create_weekly_payouts"} <= set(app.tasks)
    # when the tasks' bodies run (a completed booking due)
    booking = completed_booking(subtotal="100.00")
    counts = run_sweeps.run()
    payout_ids = create_weekly_payouts.run()
    # then
    assert counts["unsettled"] == 1 and Booking.objects.get(pk=booking.pk).status == "settled"
    assert len(payout_ids) == 1


@pytest.mark.django_db
def test_settling_a_voucher_booking_checks_it_for_anomalies():
    from listings.models import ProvenanceDeclaration

    # given a completed booking on export-controlled hardware, paid partly with a voucher
    from marketplace.celery import app
    from oversight.models import AnomalyFlag
    from settlement.tasks import settle_booking
    from tests.factories import AcceleratorFactory, ClusterFactory, ListingFactory, StartupFactory
    from tests.settlement.factories import completed_booking
    from tests.vouchers.factories import issued_voucher

    app.conf.task_always_eager = True  # the follow-up task runs in-process, as a worker would run it
    try:
        buyer = StartupFactory()
        chip = AcceleratorFactory(slug="h100-test", export_controlled=True)
        listing = ListingFactory(cluster=ClusterFactory(accelerator=chip))
        ProvenanceDeclaration.objects.create(
            cluster=listing.cluster,
            invoice_number="INV-1",
            supplier="Supplier",
            serial_numbers=["SN1"],
            import_documents="customs 1",
            status=ProvenanceDeclaration.Status.APPROVED,
        )
        booking = completed_booking(
            buyer=buyer, listing=listing, vouchers=[issued_voucher(holder=buyer, face_value="50000.00")]
        )
        assert booking.voucher_amount > 0
        # when the settlement task runs
        assert settle_booking.run(booking.pk) == "settled"
    finally:
        app.conf.task_always_eager = False
    # then the anomaly check ran after it and flagged voucher spend on export-controlled hardware
    assert AnomalyFlag.objects.filter(booking=booking, kind="export_controlled").exists()
