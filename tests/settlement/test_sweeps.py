"""Each sweep flips exactly the due rows, and a second run is a no-op."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from ledger.models import JournalTransaction
from ledger.selectors import ledger_breaches, wallet_summary
from listings.models import Listing
from orders import bid_services
from orders.disputes import DISPUTE_WINDOW
from orders.models import Bid, Booking
from settlement import sweep_services
from tests import factories
from tests.orders.factories import booking_body, fund, funded_startup
from tests.settlement.factories import booking_in, held_expired_booking
from tests.vouchers.factories import funded_program, issued_voucher
from vouchers.models import Voucher

pytestmark = pytest.mark.django_db


def statuses(*bookings) -> list[str]:
    return [Booking.objects.get(pk=b.pk).status for b in bookings]


def test_expired_holds_expire_and_release_payment():
    # given one lapsed hold, one still running, one confirmed
    lapsed = held_expired_booking(subtotal="300.00")
    running = booking_in(
        "held", start=factories.next_hour(3), hold_expires_at=timezone.now() + dt.timedelta(minutes=10)
    )
    confirmed = booking_in("confirmed", start=factories.next_hour(3))
    # when / then
    assert sweep_services.sweep_expired_holds() == 1
    assert statuses(lapsed, running, confirmed) == ["expired", "held", "confirmed"]
    assert JournalTransaction.objects.filter(idempotency_key=f"booking:{lapsed.pk}:release").count() == 1
    assert sweep_services.sweep_expired_holds() == 0
    assert ledger_breaches() == []


def test_started_and_ended_bookings_move_on_and_settle_once_their_dispute_window_closed():
    # given a confirmed booking that started, one not started, an active one that ended an hour ago, and an active
    # one that ended 49 hours ago (the sweeps were down)
    started = booking_in("confirmed", start=factories.next_hour(-1), hours=3)
    future = booking_in("confirmed", start=factories.next_hour(2))
    ended = booking_in("active")
    overdue = booking_in("active", start=factories.next_hour(-51), hours=2)
    # when
    assert sweep_services.sweep_started_bookings() == 1
    assert sweep_services.sweep_ended_bookings() == 2
    # then the one still in its dispute window is completed and waits; the overdue one is settled inline
    assert statuses(started, future, ended, overdue) == ["active", "confirmed", "completed", "settled"]
    assert not JournalTransaction.objects.filter(idempotency_key=f"booking:{ended.pk}:settle").exists()
    assert sweep_services.sweep_started_bookings() == 0
    assert sweep_services.sweep_ended_bookings() == 0
    assert sweep_services.sweep_unsettled() == 0
    # when the window of the other has closed too
    assert sweep_services.sweep_unsettled(now=ended.end + DISPUTE_WINDOW) == 1
    # then
    assert statuses(ended) == ["settled"]


def test_sweep_in_small_batches_takes_every_due_row():
    # given 5 completed bookings
    bookings = [booking_in("completed", subtotal="10.00") for _ in range(5)]
    # when in batches of 2
    assert sweep_services.sweep_unsettled(batch=2) == 5
    # then
    assert set(statuses(*bookings)) == {"settled"}
    assert sweep_services.sweep_unsettled(batch=2) == 0
    assert JournalTransaction.objects.filter(kind="settle").count() == 5


def test_expired_vouchers_and_closed_listings():
    # given a voucher past its expiry and a listing past its window
    startup = factories.StartupFactory()
    voucher = issued_voucher(holder=startup)
    Voucher.objects.filter(pk=voucher.pk).update(
        issued_at=timezone.now() - dt.timedelta(days=2), expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    fresh = issued_voucher(holder=factories.StartupFactory())
    listing = factories.ListingFactory()
    Listing.objects.filter(pk=listing.pk).update(
        available_from=factories.next_hour(-48), available_until=factories.next_hour(-1)
    )
    # when / then
    assert sweep_services.sweep_expired_vouchers() == 1
    assert sweep_services.sweep_closed_listings() == 1
    assert Voucher.objects.get(pk=voucher.pk).status == "expired"
    assert Voucher.objects.get(pk=fresh.pk).status == "active"
    assert Listing.objects.get(pk=listing.pk).status == "closed"
    assert sweep_services.sweep_expired_vouchers() == 0
    assert sweep_services.sweep_closed_listings() == 0
    assert ledger_breaches() == []


def test_run_sweeps_command_prints_counts(capsys):
    # given a completed booking
    booking = booking_in("completed")
    # when
    call_command("run_sweeps")
    # then
    out = capsys.readouterr().out
    assert "unsettled: 1" in out and "expired_holds: 0" in out
    assert statuses(booking) == ["settled"]


def test_a_voucher_booking_made_through_the_api_is_settled_by_the_sweeps(startup, startup_client):
    # given a funded startup with a voucher books through the API (confirmed at once)
    fund(startup)
    program = funded_program()
    voucher = issued_voucher(holder=startup, program=program)
    response = startup_client.post(
        "/api/v1/bookings/", booking_body(confirm=True, vouchers=[voucher.pk]), format="json"
    )
    assert response.status_code == 201, response.content
    booking = Booking.objects.get(pk=response.json()["id"])
    assert booking.voucher_amount > 0
    # when its window has passed and the sweeps run
    Booking.objects.filter(pk=booking.pk).update(start=factories.next_hour(-5), end=factories.next_hour(-2))
    call_command("run_sweeps", "--settle-inline")
    # then it is completed, its money still held while its dispute window is open
    booking.refresh_from_db()
    assert booking.status == "completed"
    assert not booking.reimbursement_claims.exists()
    # when the sweeps run after its dispute window closed
    sweep_services.sweeps_run(now=booking.end + DISPUTE_WINDOW + dt.timedelta(minutes=1))
    # then it went active → completed → settled, and the program owes its voucher part
    booking.refresh_from_db()
    assert booking.status == "settled"
    assert [c.to_status for c in booking.status_changes.order_by("id")] == [
        "confirmed",
        "active",
        "completed",
        "settled",
    ]
    claim = booking.reimbursement_claims.get()
    assert (claim.program_id, claim.amount) == (program.pk, booking.voucher_amount)
    assert ledger_breaches() == []


def test_expired_bids_expire_and_release_their_hold():
    # given an open bid past its expiry and one still open (no listing matches: every ask is above the maximum)
    chip = factories.AcceleratorFactory(slug="sweep-chip")
    factories.ListingFactory(cluster=factories.ClusterFactory(accelerator=chip), price_per_gpu_hour=Decimal("50"))
    buyer = funded_startup("10000.00")
    start = factories.next_hour(2)
    kwargs = {
        "accelerators": [chip.slug],
        "nodes": 1,
        "duration_hours": 3,
        "earliest_start": start,
        "latest_end": start + dt.timedelta(hours=6),
        "max_price_per_gpu_hour": Decimal("12"),
    }
    due, fresh = bid_services.bid_place(buyer=buyer, **kwargs), bid_services.bid_place(buyer=buyer, **kwargs)
    Bid.objects.filter(pk=due.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    held_before = wallet_summary(buyer.pk)["held"]
    # when / then
    assert sweep_services.sweep_expired_bids() == 1
    assert Bid.objects.get(pk=due.pk).status == "expired" and Bid.objects.get(pk=fresh.pk).status == "open"
    assert wallet_summary(buyer.pk)["held"] == held_before - due.held_amount
    assert sweep_services.sweep_expired_bids() == 0
    assert ledger_breaches() == []
