"""Settlement pages: booking progress, payouts, claims (with the htmx mark-paid button)."""

from decimal import Decimal

import pytest
from django.test import Client

from settlement import payout_services, services
from settlement.models import ReimbursementClaim
from tests import factories
from tests.settlement.factories import balance, completed_booking
from tests.vouchers.factories import funded_program, issued_voucher

pytestmark = pytest.mark.django_db


def page_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def settled(startup):
    booking = completed_booking(
        buyer=startup, subtotal="10000.00", vouchers=[issued_voucher(holder=startup, program=funded_program())]
    )
    services.booking_settle(booking_id=booking.pk)
    return booking


def test_booking_progress_shows_timeline_and_movements(startup, settled):
    # when
    response = page_client(factories.member_of(startup)).get(f"/settlement/bookings/{settled.pk}/")
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="booking-timeline"' in html and "settled" in html
    assert 'id="booking-movements"' in html and "Platform fees" in html
    assert "¥9,700.00" in html  # what the provider receives


def test_booking_progress_of_someone_elses_booking_is_404(settled):
    stranger = page_client(factories.member_of(factories.StartupFactory()))
    assert stranger.get(f"/settlement/bookings/{settled.pk}/").status_code == 404


def test_payouts_page_lists_payouts_and_empty_state(settled):
    # given the provider of the booking, before and after a payout batch
    provider = settled.listing.cluster.data_center.provider
    client = page_client(factories.member_of(provider))
    # when / then
    before = client.get("/payouts/").content.decode()
    assert "No payouts yet" in before and "¥9,700.00" in before  # waiting for the batch
    payout = payout_services.payout_batch_create()[0]
    after = client.get("/payouts/").content.decode()
    assert f"#{payout.pk}" in after and "Pending" in after and "No payouts yet" not in after


def test_staff_payouts_page_lists_every_provider_and_marks_one_paid_with_htmx(settled, platform_org):
    # given a pending payout, seen by platform staff
    payout = payout_services.payout_batch_create()[0]
    provider = settled.listing.cluster.data_center.provider
    client = page_client(factories.member_of(platform_org))
    html = client.get("/payouts/?status=pending").content.decode()
    assert f'id="payout-{payout.pk}"' in html and provider.name in html and "Mark paid" in html
    assert f"/settlement/bookings/{settled.pk}/" not in html  # the booking is the buyer's and provider's to read
    # when staff record the transfer
    response = client.post(f"/payouts/{payout.pk}/mark-paid/", HTTP_HX_REQUEST="true")
    # then the row comes back paid, the ledger moved the payable to the bank, and the pending filter drops it
    assert response.status_code == 200
    row = response.content.decode()
    assert f'id="payout-{payout.pk}"' in row and "Paid" in row and "Mark paid" not in row
    payout.refresh_from_db()
    assert payout.status == "paid" and payout.paid_by is not None
    assert balance("provider_payable", provider.pk) == Decimal("0.00")
    assert f'id="payout-{payout.pk}"' not in client.get("/payouts/?status=pending").content.decode()
    assert f'id="payout-{payout.pk}"' in client.get("/payouts/?status=paid").content.decode()


def test_only_staff_mark_payouts_paid_on_the_page(settled, platform_org):
    # given a pending payout
    payout = payout_services.payout_batch_create()[0]
    provider = page_client(factories.member_of(settled.listing.cluster.data_center.provider))
    staff = page_client(factories.member_of(platform_org))
    # when / then: its provider sees it without the button and may not mark it; an unknown payout is 404
    assert "Mark paid" not in provider.get("/payouts/").content.decode()
    assert provider.post(f"/payouts/{payout.pk}/mark-paid/").status_code == 403
    assert staff.post("/payouts/999999/mark-paid/").status_code == 404
    payout.refresh_from_db()
    assert payout.status == "pending"
    # a plain POST (no htmx) marks it and goes back to the list
    response = staff.post(f"/payouts/{payout.pk}/mark-paid/")
    assert response.status_code == 302 and response["Location"] == "/payouts/"
    payout.refresh_from_db()
    assert payout.status == "paid"


def test_payouts_and_claims_pages_refuse_roles_they_are_not_for(startup, provider):
    # given a startup member and a provider member
    buyer, seller = page_client(factories.member_of(startup)), page_client(factories.member_of(provider))
    # when / then: payouts are for providers and staff, claims for issuers (as in the API)
    assert buyer.get("/payouts/").status_code == 403
    assert buyer.get("/claims/").status_code == 403
    assert seller.get("/claims/").status_code == 403


def test_claims_page_marks_a_claim_paid_with_htmx(settled):
    # given the program's issuer
    claim = ReimbursementClaim.objects.get()
    client = page_client(factories.member_of(claim.program.issuer))
    assert "Mark paid" in client.get("/claims/").content.decode()
    # when
    response = client.post(f"/claims/{claim.pk}/mark-paid/", HTTP_HX_REQUEST="true")
    # then the row comes back paid
    assert response.status_code == 200
    assert "Paid" in response.content.decode() and "Mark paid" not in response.content.decode()
    claim.refresh_from_db()
    assert claim.status == "paid"
    # another issuer cannot
    other = page_client(factories.member_of(factories.IssuerFactory()))
    assert other.post(f"/claims/{claim.pk}/mark-paid/").status_code == 404
    assert "No claims" in other.get("/claims/").content.decode()


def test_booking_money_names_accounts_in_words_in_both_languages(startup, settled):
    # given the buyer's page of a settled booking paid partly by a voucher
    voucher = settled.redemptions.get().voucher
    provider = settled.listing.cluster.data_center.provider
    client = page_client(factories.member_of(startup))
    # when it is read in English and in Chinese
    english = client.get(f"/settlement/bookings/{settled.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    chinese = client.get(f"/settlement/bookings/{settled.pk}/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    # then the accounts have their human names, never a kind code or an owner id
    movements = english.split('id="booking-movements"')[1]
    for name in ("Wallet", "Payment held", f"Voucher #{voucher.pk} — {voucher.program.name}", f"Payable to {provider}"):
        assert name in movements, name
    assert f"#{provider.pk}<" not in movements and "Provider payable" not in movements
    assert "voucher_hold" not in movements and "wallet_hold" not in movements
    assert "钱包" in chinese.split('id="booking-movements"')[1] and "Payment held" not in chinese
