"""Settlement API: movements of a booking, payouts, reimbursement claims; other organizations get 404."""

from decimal import Decimal

import pytest

from ledger.selectors import ledger_breaches
from settlement import payout_services, services
from settlement.models import ReimbursementClaim
from tests import factories
from tests.settlement.factories import completed_booking
from tests.vouchers.factories import funded_program, issued_voucher

pytestmark = pytest.mark.django_db


@pytest.fixture
def settled(startup, provider):
    """A settled ¥10000 booking of ``startup`` on ``provider``'s cluster, 20 % paid by a voucher."""
    program = funded_program()
    listing = factories.ListingFactory(cluster__data_center__provider=provider)
    booking = completed_booking(
        buyer=startup, listing=listing, subtotal="10000.00", vouchers=[issued_voucher(holder=startup, program=program)]
    )
    services.booking_settle(booking_id=booking.pk)
    return booking


def test_movements_show_every_ledger_transaction_of_the_booking(startup_client, provider_client, settled):
    # when
    url = f"/api/v1/settlement/bookings/{settled.pk}/movements/"
    buyer_view, provider_view = startup_client.get(url), provider_client.get(url)
    # then both parties see hold, voucher hold, capture, settle in order
    assert buyer_view.status_code == 200 and provider_view.status_code == 200
    body = buyer_view.json()
    kinds = [tx["kind"] for tx in body["results"]]
    assert kinds == ["voucher_hold", "hold", "voucher_capture", "settle"]
    settle = body["results"][-1]
    assert settle["idempotency_key"] == f"booking:{settled.pk}:settle"
    assert sum(Decimal(e["amount"]) for e in settle["entries"]) == 0
    assert {e["account_kind"] for e in settle["entries"]} >= {
        "wallet_hold",
        "provider_payable",
        "platform_fees",
        "program_funding",
        "reimbursement_due",
    }


def test_movements_of_another_organizations_booking_answer_404(client_for, settled):
    # given a member of an unrelated startup
    stranger = client_for(factories.member_of(factories.StartupFactory()))
    # when / then
    assert stranger.get(f"/api/v1/settlement/bookings/{settled.pk}/movements/").status_code == 404
    assert stranger.get("/api/v1/settlement/bookings/999999/movements/").status_code == 404


def test_provider_lists_its_payouts_only(provider_client, client_for, settled):
    # given
    payout_services.payout_batch_create()
    other = client_for(factories.member_of(factories.ProviderFactory()))
    # when
    mine = provider_client.get("/api/v1/payouts/").json()
    theirs = other.get("/api/v1/payouts/").json()
    # then
    assert mine["count"] == 1 and mine["results"][0]["bookings"] == [settled.pk]
    assert Decimal(mine["results"][0]["amount"]) == Decimal("9700.00")
    assert theirs["count"] == 0
    assert other.get(f"/api/v1/payouts/{mine['results'][0]['id']}/").status_code == 404


def test_issuer_lists_and_marks_its_claims_paid(client_for, settled, startup_client):
    # given the program's issuer and another issuer
    claim = ReimbursementClaim.objects.get()
    issuer = client_for(factories.member_of(claim.program.issuer))
    other = client_for(factories.member_of(factories.IssuerFactory()))
    url = f"/api/v1/reimbursement-claims/{claim.pk}/mark-paid/"
    # when / then: the other issuer neither sees nor pays it
    assert other.get("/api/v1/reimbursement-claims/").json()["count"] == 0
    assert other.post(url).status_code == 404
    assert startup_client.post(url).status_code == 403
    listed = issuer.get("/api/v1/reimbursement-claims/?status=open").json()
    assert [c["id"] for c in listed["results"]] == [claim.pk]
    # when the issuer marks it paid (twice)
    first, second = issuer.post(url), issuer.post(url)
    # then
    assert first.status_code == 200 and first.json()["status"] == "paid"
    assert second.status_code == 200
    assert issuer.get("/api/v1/reimbursement-claims/?status=open").json()["count"] == 0
    assert ledger_breaches() == []


def test_staff_mark_a_payout_paid(staff_client, provider_client, settled):
    # given
    payout = payout_services.payout_batch_create()[0]
    # when / then: providers cannot, staff can
    assert provider_client.post(f"/api/v1/payouts/{payout.pk}/mark-paid/").status_code == 403
    response = staff_client.post(f"/api/v1/payouts/{payout.pk}/mark-paid/")
    assert response.status_code == 200 and response.json()["status"] == "paid"
    assert staff_client.post("/api/v1/payouts/999999/mark-paid/").status_code == 404


def test_staff_list_every_providers_payouts_and_filter_by_status(staff_client, startup_client, startup, settled):
    # given payouts of two providers, one of them paid
    other_provider = factories.ProviderFactory()
    other = completed_booking(
        buyer=startup,
        listing=factories.ListingFactory(cluster__data_center__provider=other_provider),
        subtotal="5000.00",
    )
    services.booking_settle(booking_id=other.pk)
    payouts = {p.provider_id: p for p in payout_services.payout_batch_create()}
    payout_services.payout_mark_paid(payout=payouts[other_provider.pk])
    # when
    everything = staff_client.get("/api/v1/payouts/").json()
    pending = staff_client.get("/api/v1/payouts/?status=pending").json()
    # then staff see both, each named, and the filter keeps the unpaid one
    assert {row["provider_name"] for row in everything["results"]} == {
        settled.listing.cluster.data_center.provider.name,
        other_provider.name,
    }
    assert [row["id"] for row in pending["results"]] == [payouts[settled.listing.cluster.data_center.provider_id].pk]
    assert staff_client.get(f"/api/v1/payouts/{payouts[other_provider.pk].pk}/").json()["status"] == "paid"


def test_payout_list_refuses_bad_status_and_other_roles(staff_client, startup_client, settled):
    # when / then: a bad filter is a field error; a startup may not read payouts at all
    response = staff_client.get("/api/v1/payouts/?status=sent")
    assert response.status_code == 400 and "status" in response.json()["errors"]
    assert startup_client.get("/api/v1/payouts/").status_code == 403
