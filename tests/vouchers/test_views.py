"""Voucher pages: programs and apply, the issuer queue with approve/reject (htmx), my vouchers, the burn-down."""

from decimal import Decimal as D  # noqa: N817

import pytest
from django.test import Client

from ledger.services import account_for
from tests import factories
from tests.vouchers.factories import VoucherProgramFactory, funded_program, held_booking, issued_voucher
from vouchers import services
from vouchers.models import Voucher, VoucherApplication

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def logged_in(org) -> Client:
    client = Client()
    client.force_login(factories.member_of(org))
    return client


def test_startup_sees_programs_and_applies_with_errors_in_place(startup):
    # given
    program = VoucherProgramFactory(name="Shanghai compute vouchers")
    client = logged_in(startup)
    # when listing and opening the program
    assert "Shanghai compute vouchers" in client.get("/vouchers/programs/").content.decode()
    assert 'name="requested_amount"' in client.get(f"/vouchers/programs/{program.pk}/").content.decode()
    # when applying below the minimum (htmx) / then the form comes back with the error next to the field
    url = f"/vouchers/programs/{program.pk}/apply/"
    response = client.post(url, {"requested_amount": "999.99", "purpose": "training"}, **HTMX)
    assert "Must be between" in response.content.decode() and not VoucherApplication.objects.exists()
    # when applying correctly / then htmx is redirected to the applications page
    response = client.post(url, {"requested_amount": "5000.00", "purpose": "training"}, **HTMX)
    assert response["HX-Redirect"] == "/vouchers/applications/"
    assert VoucherApplication.objects.get().applicant == startup


def test_issuer_approves_and_rejects_from_the_queue(startup, issuer):
    # given two applications to the issuer's funded program
    program = funded_program(issuer=issuer)
    first, second = (services.application_submit(program=program, applicant=startup, requested_amount=D("5000"),
                                                 purpose=p) for p in ("a", "b"))
    client = logged_in(issuer)
    assert client.get("/vouchers/applications/").content.decode().count("Approve</button>") == 2
    # when approving one above the request (htmx) / then the row shows the error and nothing is issued
    response = client.post(f"/vouchers/applications/{first.pk}/approve/", {"face_value": "6000"}, **HTMX)
    assert "Cannot exceed" in response.content.decode() and not Voucher.objects.exists()
    # when approving and rejecting properly
    response = client.post(f"/vouchers/applications/{first.pk}/approve/", {"face_value": "4000"}, **HTMX)
    assert "Approved" in response.content.decode()
    response = client.post(f"/vouchers/applications/{second.pk}/reject/", {"reason": "Duplicate"})
    assert response.status_code == 302
    # then
    assert Voucher.objects.get().face_value == D("4000.00")
    assert VoucherApplication.objects.get(pk=second.pk).reject_reason == "Duplicate"


def test_another_issuer_cannot_decide(startup, issuer):
    application = services.application_submit(program=VoucherProgramFactory(), applicant=startup,
                                              requested_amount=D("5000"), purpose="x")
    response = logged_in(issuer).post(f"/vouchers/applications/{application.pk}/approve/", {"face_value": "5000"})
    assert response.status_code == 404


def test_my_vouchers_show_balance_held_and_history(startup):
    # given a voucher with a held part
    voucher = issued_voucher(holder=startup, face_value="100000.00")
    booking = held_booking(buyer=startup, subtotal="10000.00")
    services.vouchers_hold_for_booking(booking=booking, voucher_ids=[voucher.pk])
    client = logged_in(startup)
    # when / then
    listing_page = client.get("/vouchers/").content.decode()
    assert "98000.00" in listing_page and "2000.00" in listing_page
    detail = client.get(f"/vouchers/{voucher.pk}/").content.decode()
    assert "coverage_ratio" in detail and f"/bookings/{booking.pk}/" in detail
    # and another startup gets 404
    assert logged_in(factories.StartupFactory()).get(f"/vouchers/{voucher.pk}/").status_code == 404


def test_empty_states_say_what_to_do(startup):
    client = logged_in(startup)
    assert "Apply to a city program" in client.get("/vouchers/").content.decode()
    assert "No applications yet" in client.get("/vouchers/applications/").content.decode()


def test_issuer_program_page_has_the_burn_down_chart(startup, issuer):
    # given a program with a voucher issued and part of it spent
    program = funded_program("500000.00", issuer=issuer)
    voucher = issued_voucher(holder=startup, program=program, face_value="100000.00")
    booking = held_booking(buyer=startup, subtotal="10000.00")
    services.vouchers_hold_for_booking(booking=booking, voucher_ids=[voucher.pk])
    services.redemptions_capture(booking=booking, destination_account=account_for("reimbursement_due", program.pk))
    # when
    page = logged_in(issuer).get(f"/vouchers/programs/{program.pk}/").content.decode()
    # then the chart data carries the cumulative issued and spent amounts
    assert "chart-4.6.1.umd.min.js" in page and 'id="burndown-data"' in page
    assert '"issued": ["100000.00"]' in page and '"spent": ["2000.00"]' in page
    assert "available 400000.00" in page
    # and a startup sees no chart
    assert "burndown-data" not in logged_in(startup).get(f"/vouchers/programs/{program.pk}/").content.decode()
