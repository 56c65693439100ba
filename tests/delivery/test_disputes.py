"""Disputes (issue 20): the buyer disputes within 48 h of a booking's end; settlement waits until staff resolve
it; a credit goes through the SLA credit path (``service_credit`` posting, claim and payout reduced)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client

from audit.models import AuditEvent
from ledger.models import JournalTransaction
from ledger.selectors import ledger_breaches
from orders import disputes
from orders.models import Booking, BookingDispute
from settlement import services, sweep_services
from settlement.models import ServiceCredit
from tests import factories
from tests.helpers import run_concurrently
from tests.settlement.factories import balance, completed_booking, provider_of

pytestmark = pytest.mark.django_db


def ended(hours_ago: int = 1, **kwargs) -> Booking:
    """A completed one-hour booking that ended ``hours_ago`` hours ago (default: still in its dispute window)."""
    return completed_booking(start=factories.next_hour(-hours_ago - 1), hours=1, **kwargs)


def after_window(booking) -> dt.datetime:
    """A moment just after ``booking``'s dispute window closed (what settlement is passed as ``now``)."""
    return booking.end + disputes.DISPUTE_WINDOW + dt.timedelta(minutes=1)


def url(booking) -> str:
    return f"/api/v1/bookings/{booking.pk}/dispute/"


def test_the_buyer_disputes_and_settlement_waits_for_staff(startup, startup_client, settings):
    # given a completed booking of the startup
    settings.PLATFORM_FEE_BPS = 0
    booking = ended(buyer=startup, subtotal="1000.00")
    # when the buyer disputes it
    response = startup_client.post(url(booking), {"reason": "The nodes were unreachable"}, format="json")
    # then it is open and settlement leaves the booking completed, by every path, even after the window closed
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "open"
    later = after_window(booking)
    assert services.bookings_settle(booking_ids=[booking.pk], now=later) == []
    assert sweep_services.sweep_unsettled(now=later) == 0
    with pytest.raises(Exception) as refused:
        services.booking_settle(booking_id=booking.pk, now=later)
    assert getattr(refused.value, "code", None) == "disputed"
    booking.refresh_from_db()
    assert booking.status == Booking.Status.COMPLETED
    assert AuditEvent.objects.filter(action="orders.booking_disputed").count() == 1


def test_a_partial_credit_is_paid_at_settlement_through_the_credit_path(
    startup, startup_client, staff_client, settings
):
    # given a disputed ¥1000 cash booking
    settings.PLATFORM_FEE_BPS = 300
    booking = ended(buyer=startup, subtotal="1000.00")
    dispute = startup_client.post(url(booking), {"reason": "half of it was down"}, format="json").json()
    wallet_before = balance("wallet", startup.pk)
    # when staff grant a partial credit of ¥250, and the sweep settles
    resolve = f"/api/v1/disputes/{dispute['id']}/resolve/"
    assert staff_client.post(resolve, {"decision": "partial"}, format="json").status_code == 400
    response = staff_client.post(resolve, {"decision": "partial", "amount": "250.00"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "credited"
    assert sweep_services.sweep_unsettled() == 0  # resolved, but its dispute window is still open
    assert sweep_services.sweep_unsettled(now=after_window(booking)) == 1
    # then ¥250 went back to the wallet and the provider is owed (1000 - 250) less 3 %
    credit = ServiceCredit.objects.get(booking=booking)
    assert (credit.dispute_amount, credit.amount, credit.cash_amount) == (
        Decimal("250.00"),
        Decimal("250.00"),
        Decimal("250.00"),
    )
    assert balance("wallet", startup.pk) - wallet_before == Decimal("250.00")
    assert balance("provider_payable", provider_of(booking)) == Decimal("727.50")
    assert JournalTransaction.objects.filter(idempotency_key=f"booking:{booking.pk}:service_credit").count() == 1
    assert AuditEvent.objects.filter(action="orders.dispute_resolved").count() == 1
    assert staff_client.post(resolve, {"decision": "reject", "note": "again"}, format="json").status_code == 409
    assert ledger_breaches() == []


def test_a_rejected_dispute_settles_in_full(startup, startup_client, staff_client, settings):
    settings.PLATFORM_FEE_BPS = 0
    booking = ended(buyer=startup, subtotal="1000.00")
    dispute = startup_client.post(url(booking), {"reason": "slow"}, format="json").json()
    resolve = f"/api/v1/disputes/{dispute['id']}/resolve/"
    assert staff_client.post(resolve, {"decision": "reject"}, format="json").status_code == 400
    assert staff_client.post(resolve, {"decision": "reject", "note": "it ran"}, format="json").status_code == 200
    services.booking_settle(booking_id=booking.pk, now=after_window(booking))
    assert not ServiceCredit.objects.exists()
    assert balance("provider_payable", provider_of(booking)) == Decimal("1000.00")


def test_a_dispute_after_48_hours_is_400_and_writes_nothing(startup, startup_client):
    # given a booking that ended 49 hours ago
    booking = completed_booking(buyer=startup, start=factories.next_hour(-50), hours=1)
    assert booking.end < factories.next_hour(0) - dt.timedelta(hours=48)
    # when / then
    response = startup_client.post(url(booking), {"reason": "late"}, format="json")
    assert response.status_code == 400
    assert not BookingDispute.objects.exists()


def test_bad_disputes_are_refused(startup, startup_client, client_for):
    booking = ended(buyer=startup)
    # no reason: 400 naming the field
    response = startup_client.post(url(booking), {"reason": " "}, format="json")
    assert response.status_code == 400
    # another organization: 404
    other = client_for(factories.member_of(factories.StartupFactory()))
    assert other.post(url(booking), {"reason": "x"}, format="json").status_code == 404
    assert not BookingDispute.objects.exists()
    # a second dispute: 409; a settled booking: 409
    assert startup_client.post(url(booking), {"reason": "x"}, format="json").status_code == 201
    assert startup_client.post(url(booking), {"reason": "y"}, format="json").status_code == 409
    settled = ended(buyer=startup)  # settled at the close of its window, disputed (too late) just before it
    services.booking_settle(booking_id=settled.pk, now=settled.end + disputes.DISPUTE_WINDOW)
    response = startup_client.post(url(settled), {"reason": "x"}, format="json")
    assert response.status_code == 409 and "settled already" in response.json()["detail"], response.json()
    assert not BookingDispute.objects.filter(booking=settled).exists()


def test_only_staff_list_and_resolve(startup, startup_client, staff_client):
    booking = ended(buyer=startup)
    dispute = startup_client.post(url(booking), {"reason": "x"}, format="json").json()
    assert startup_client.get("/api/v1/disputes/").status_code == 403
    resolve = f"/api/v1/disputes/{dispute['id']}/resolve/"
    assert startup_client.post(resolve, {"decision": "credit"}, format="json").status_code == 403
    listed = staff_client.get("/api/v1/disputes/").json()
    assert [d["id"] for d in listed["results"]] == [dispute["id"]]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("ended_hours_ago", [1, 48], ids=["just after the end", "at the window's edge"])
def test_a_dispute_racing_settlement_never_leaves_a_disputed_booking_settled(settings, ended_hours_ago):
    settings.PLATFORM_FEE_BPS = 0
    for _ in range(4):
        # given a completed booking and the moment its dispute window closes: the last moment it may be disputed
        # and the first it may be settled
        booking = ended(ended_hours_ago)
        edge = booking.end + disputes.DISPUTE_WINDOW
        user = factories.member_of(booking.buyer)
        # when the buyer disputes at that moment while two settlers run at it
        work = {
            "dispute": lambda b=booking, u=user, t=edge: disputes.dispute_open(booking=b, actor=u, reason="x", now=t),
            "settle": lambda b=booking, t=edge: services.bookings_settle(booking_ids=[b.pk], now=t),
            "one": lambda b=booking, t=edge: services.booking_settle(booking_id=b.pk, now=t),
        }
        results = run_concurrently(lambda name, w=work: w[name](), [("settle",), ("dispute",), ("one",)])
        # then either the dispute won (the booking waits) or the settlement did (the dispute was refused)
        booking.refresh_from_db()
        disputed = BookingDispute.objects.filter(booking=booking).exists()
        assert disputed != (booking.status == Booking.Status.SETTLED), results
        if disputed:
            assert booking.status == Booking.Status.COMPLETED
            assert getattr(results[2], "code", None) == "disputed", results
            assert not JournalTransaction.objects.filter(reference=f"booking:{booking.pk}", kind="settle").exists()
            # and no later settlement run settles it while the dispute is open
            assert sweep_services.sweep_unsettled(now=edge + dt.timedelta(days=7)) == 0
            assert Booking.objects.get(pk=booking.pk).status == Booking.Status.COMPLETED
        else:
            assert getattr(results[1], "code", None) == "settled", results
    assert ledger_breaches() == []


# --- pages ------------------------------------------------------------------------------------------------------


def browser_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_booking_page_offers_the_dispute_button_and_files_one(startup):
    booking = ended(buyer=startup)
    browser = browser_for(factories.member_of(startup))
    page = browser.get(f"/bookings/{booking.pk}/")
    assert page.status_code == 200
    assert f'action="/bookings/{booking.pk}/dispute/"' in page.content.decode()
    response = browser.post(f"/bookings/{booking.pk}/dispute/", {"reason": "no access"})
    assert response.status_code == 302
    assert BookingDispute.objects.get(booking=booking).reason == "no access"
    assert 'id="dispute"' in browser.get(f"/bookings/{booking.pk}/").content.decode()
    other = browser_for(factories.member_of(factories.StartupFactory()))
    assert other.post(f"/bookings/{booking.pk}/dispute/", {"reason": "x"}).status_code == 404


def test_the_staff_disputes_page_resolves_and_refuses_others(startup, platform_org):
    booking = ended(buyer=startup)
    dispute = disputes.dispute_open(booking=booking, actor=None, reason="no access")
    staff = browser_for(factories.member_of(platform_org))
    page = staff.get("/staff/disputes/")
    assert page.status_code == 200 and "no access" in page.content.decode()
    assert browser_for(factories.member_of(startup)).get("/staff/disputes/").status_code == 403
    response = staff.post(f"/staff/disputes/{dispute.pk}/resolve/", {"decision": "credit"})
    assert response.status_code == 302
    dispute.refresh_from_db()
    assert (dispute.status, dispute.credit_amount) == ("credited", booking.subtotal)
    member = browser_for(factories.member_of(startup))
    assert member.post(f"/staff/disputes/{dispute.pk}/resolve/", {"decision": "reject"}).status_code == 403
