"""Settlement waits for the buyer's 48-hour dispute window (issue 20): a completed booking is settled only once
``end + DISPUTE_WINDOW`` has passed and no dispute of it is open; until then its money stays held."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils import timezone

from ledger.models import JournalTransaction
from ledger.selectors import ledger_breaches
from marketplace.core.exceptions import Conflict
from orders import disputes, handovers
from orders.disputes import DISPUTE_WINDOW
from orders.models import Booking, NodeReservation
from settlement import services, sweep_services
from settlement.models import BookingSettlement, ReimbursementClaim, ServiceCredit
from settlement.tasks import settle_booking
from tests import factories
from tests.settlement.factories import balance, completed_booking, provider_of
from tests.vouchers.factories import funded_program, issued_voucher
from vouchers.models import Redemption

pytestmark = pytest.mark.django_db


def ended_hours_ago(hours: int, **kwargs) -> Booking:
    """A completed one-hour booking that ended ``hours`` whole hours before the current hour began."""
    return completed_booking(start=factories.next_hour(-hours - 1), hours=1, **kwargs)


def status_of(booking) -> str:
    return Booking.objects.get(pk=booking.pk).status


def voucher_booking(hours: int):
    """A ¥10000 booking paid ¥2000 by a voucher and ¥8000 in cash that ended ``hours`` hours ago."""
    startup = factories.StartupFactory()
    voucher = issued_voucher(holder=startup, program=funded_program())
    booking = ended_hours_ago(hours, buyer=startup, subtotal="10000.00", vouchers=[voucher])
    assert (booking.voucher_amount, booking.cash_amount) == (Decimal("2000.00"), Decimal("8000.00"))
    return booking


def test_the_window_is_48_hours():
    assert dt.timedelta(hours=48) == DISPUTE_WINDOW


def test_a_booking_ended_47_hours_ago_is_not_settled_and_its_money_stays_held():
    # given a voucher-funded booking that ended 47 hours ago
    booking = voucher_booking(47)
    assert timezone.now() - booking.end < DISPUTE_WINDOW
    # when every settlement path runs
    assert sweep_services.sweep_unsettled() == 0
    assert sweep_services.sweeps_run()["unsettled"] == 0
    assert services.bookings_settle(booking_ids=[booking.pk]) == []
    with pytest.raises(Conflict) as refused:
        services.booking_settle(booking_id=booking.pk)
    assert settle_booking.run(booking.pk) is None  # the task logs the refusal and does not retry
    # then it is refused with its own code, and nothing moved: the cash and the voucher part are still held
    assert (refused.value.status, refused.value.code) == (409, "dispute_window_open")
    assert "48 hours" in refused.value.message
    assert status_of(booking) == Booking.Status.COMPLETED
    assert balance("wallet_hold", booking.buyer_id) == Decimal("8000.00")
    assert list(Redemption.objects.filter(booking=booking).values_list("status", flat=True)) == ["held"]
    assert balance("provider_payable", provider_of(booking)) == Decimal("0.00")
    assert not BookingSettlement.objects.exists() and not ReimbursementClaim.objects.exists()
    assert not JournalTransaction.objects.filter(reference=f"booking:{booking.pk}", kind="settle").exists()
    assert ledger_breaches() == []


def test_a_booking_ended_49_hours_ago_is_settled_by_the_sweep(settings):
    # given a voucher-funded booking that ended 49 hours ago, next to one that ended 47 hours ago
    settings.PLATFORM_FEE_BPS = 0
    due, waiting = voucher_booking(49), voucher_booking(47)
    # when the sweep runs
    assert sweep_services.sweep_unsettled() == 1
    # then only the first is settled: the provider is owed its subtotal and the city its voucher part
    assert (status_of(due), status_of(waiting)) == (Booking.Status.SETTLED, Booking.Status.COMPLETED)
    assert balance("provider_payable", provider_of(due)) == Decimal("10000.00")
    assert ReimbursementClaim.objects.get().amount == Decimal("2000.00")
    assert sweep_services.sweep_unsettled() == 0
    assert ledger_breaches() == []


def test_settlement_opens_exactly_when_the_window_closes():
    # given a booking and the moment its window closes
    booking = ended_hours_ago(1)
    closes = booking.end + DISPUTE_WINDOW
    # when / then a second before, every path waits; at that moment it settles
    with pytest.raises(Conflict) as refused:
        services.booking_settle(booking_id=booking.pk, now=closes - dt.timedelta(seconds=1))
    assert refused.value.code == "dispute_window_open"
    assert services.bookings_settle(booking_ids=[booking.pk], now=closes - dt.timedelta(seconds=1)) == []
    assert sweep_services.sweep_unsettled(now=closes - dt.timedelta(seconds=1)) == 0
    assert services.booking_settle(booking_id=booking.pk, now=closes).status == Booking.Status.SETTLED
    assert BookingSettlement.objects.filter(booking=booking).count() == 1


def test_a_dispute_opened_at_47_hours_keeps_the_booking_unsettled_until_staff_resolve_it(settings):
    # given a booking that ended 47 hours ago, disputed by its buyer now
    settings.PLATFORM_FEE_BPS = 0
    booking = ended_hours_ago(47, subtotal="1000.00")
    dispute = disputes.dispute_open(booking=booking, actor=None, reason="the nodes were down")
    # when its window has closed (two hours later, and a week later) and settlement runs
    for later in (timezone.now() + dt.timedelta(hours=2), timezone.now() + dt.timedelta(days=7)):
        assert later > booking.end + DISPUTE_WINDOW
        assert sweep_services.sweep_unsettled(now=later) == 0
        assert services.bookings_settle(booking_ids=[booking.pk], now=later) == []
        with pytest.raises(Conflict) as refused:
            services.booking_settle(booking_id=booking.pk, now=later)
        # then it waits for staff
        assert refused.value.code == "disputed"
        assert status_of(booking) == Booking.Status.COMPLETED
    assert balance("wallet_hold", booking.buyer_id) == Decimal("1000.00")
    # when staff reject the dispute
    disputes.dispute_resolve(dispute=dispute, actor=None, decision="reject", note="the heartbeats show it ran")
    # then the next run after the window settles it in full
    assert sweep_services.sweep_unsettled() == 0  # the window is still open at the real time
    assert sweep_services.sweep_unsettled(now=timezone.now() + dt.timedelta(hours=2)) == 1
    assert status_of(booking) == Booking.Status.SETTLED
    assert balance("provider_payable", provider_of(booking)) == Decimal("1000.00")
    assert ledger_breaches() == []


def test_an_incident_reported_at_47_hours_holds_settlement_until_staff_decide(settings):
    # given a booking that ended 47 hours ago, whose buyer reports now that it did not deliver for its hour
    settings.PLATFORM_FEE_BPS = 0
    booking = ended_hours_ago(47, subtotal="1000.00")
    node = booking.listing.cluster.nodes.get(index=1)
    NodeReservation.objects.create(booking=booking, node=node, period=DateTimeTZRange(booking.start, booking.end, "[)"))
    report = handovers.incident_report(
        booking=booking,
        actor=factories.member_of(booking.buyer),
        started_at=booking.start,
        ended_at=booking.end,
        description="the node never answered",
    )
    # when its window has closed and staff have not decided yet
    later = timezone.now() + dt.timedelta(hours=2)
    assert later > booking.end + DISPUTE_WINDOW
    assert sweep_services.sweep_unsettled(now=later) == 0
    assert sweep_services.sweeps_run(now=later)["unsettled"] == 0
    with pytest.raises(Conflict) as refused:
        services.booking_settle(booking_id=booking.pk, now=later)
    # then it waits for them, its cash still held
    assert refused.value.code == "incident_under_review"
    assert status_of(booking) == Booking.Status.COMPLETED
    assert balance("wallet_hold", booking.buyer_id) == Decimal("1000.00")
    # when staff accept the report, then the next sweep settles it with the lost hour credited back
    handovers.incident_resolve(incident=report, actor=None, decision="accept")
    assert sweep_services.sweep_unsettled(now=later) == 1
    assert status_of(booking) == Booking.Status.SETTLED
    credit = ServiceCredit.objects.get(booking=booking)
    assert credit.amount > 0
    assert balance("provider_payable", provider_of(booking)) == Decimal("1000.00") - credit.amount
    assert ledger_breaches() == []


def test_the_ended_sweep_completes_at_the_end_and_the_sweeps_settle_after_the_window():
    # given an active booking that ended an hour ago
    booking = completed_booking(start=factories.next_hour(-3), hours=2)
    Booking.objects.filter(pk=booking.pk).update(status=Booking.Status.ACTIVE)
    # when the sweeps run now, 47 hours after its end, then 48 hours after
    assert sweep_services.sweeps_run()["ended_bookings"] == 1
    assert sweep_services.sweeps_run(now=booking.end + dt.timedelta(hours=47))["unsettled"] == 0
    assert status_of(booking) == Booking.Status.COMPLETED
    assert sweep_services.sweeps_run(now=booking.end + DISPUTE_WINDOW)["unsettled"] == 1
    # then it went completed at its end, settled once the window closed
    assert status_of(booking) == Booking.Status.SETTLED


def test_the_beat_task_announces_the_voucher_bookings_its_sweep_settled():
    # given a voucher booking past its window and a cash one, and a listener of the settlement signal
    from settlement.signals import voucher_bookings_settled
    from settlement.tasks import run_sweeps

    voucher, cash = voucher_booking(49), ended_hours_ago(49)
    heard: list[list[int]] = []

    def listen(sender, *, booking_ids, **kwargs):
        heard.append(list(booking_ids))

    voucher_bookings_settled.connect(listen, dispatch_uid="test.dispute_window.listen")
    try:
        # when the beat's sweep task runs
        counts = run_sweeps.run()
    finally:
        voucher_bookings_settled.disconnect(dispatch_uid="test.dispute_window.listen")
    # then both are settled and the voucher one is announced (oversight checks it), once
    assert counts["unsettled"] == 2
    assert (status_of(voucher), status_of(cash)) == (Booking.Status.SETTLED, Booking.Status.SETTLED)
    assert heard == [[voucher.pk]]
