"""Voucher pages: programs and apply, the issuer queue with approve/reject (htmx), my vouchers, the burn-down."""

import datetime as dt
from decimal import Decimal as D  # noqa: N817

import pytest
from django.test import Client

from ledger.services import account_for
from listings.models import Accelerator
from tests import factories
from tests.vouchers.factories import VoucherProgramFactory, funded_program, held_booking, issued_voucher
from vouchers import services
from vouchers.models import Voucher, VoucherApplication, VoucherProgram

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
    assert "the program pays at most its coverage ratio" in detail and f"/bookings/{booking.pk}/" in detail
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


def program_post(**overrides) -> dict:
    data = {"name": "Hefei compute vouchers 2027", "city": "Hefei", "description": "For AI startups.",
            "status": "draft", "face_value_min": "1000.00", "face_value_max": "500000.00", "validity_days": "180",
            "applications_open_from": "2027-01-01T00:00", "applications_open_until": "2027-06-30T00:00",
            "domestic_ratio": "0.5", "other_ratio": "0.2", "sme_bonus_ratio": "0.1", "max_stacked_share": "0.8",
            "annual_cap_per_org": "1000000.00", "per_booking_cap": "", "requires_model_filing": "on",
            "ban_related_party": "on", "require_reviewed_listing": "on"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_issuer_creates_a_program_with_its_rules(issuer):
    # given an issuer, a provider and a chip to put on the lists
    provider = factories.ProviderFactory()
    chip = Accelerator.objects.get(slug="ascend-910b")
    client = logged_in(issuer)
    assert 'href="/vouchers/programs/new/"' in client.get("/vouchers/programs/").content.decode()
    assert client.get("/vouchers/programs/new/").status_code == 200
    # when the form is posted
    response = client.post("/vouchers/programs/new/", program_post(eligible_providers=[provider.pk],
                                                                   eligible_accelerators=[chip.pk]))
    # then the program exists as a draft with the given rules, and the page goes to it
    program = VoucherProgram.objects.get(issuer=issuer, name="Hefei compute vouchers 2027")
    assert response.status_code == 302 and response["Location"] == f"/vouchers/programs/{program.pk}/"
    assert (program.city, program.status, program.validity_days) == ("Hefei", "draft", 180)
    assert (program.face_value_min, program.face_value_max) == (D("1000.00"), D("500000.00"))
    assert (program.domestic_ratio, program.other_ratio, program.sme_bonus_ratio, program.max_stacked_share) == (
        D("0.5"), D("0.2"), D("0.1"), D("0.8"))
    assert program.annual_cap_per_org == D("1000000.00") and program.per_booking_cap is None
    assert program.requires_model_filing and not program.city_data_centers_only
    assert list(program.eligible_providers.all()) == [provider]
    assert list(program.eligible_accelerators.all()) == [chip]
    assert program.applications_open_from == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)


def test_program_form_shows_errors_in_place_and_writes_nothing(issuer):
    client = logged_in(issuer)
    # when the minimum exceeds the maximum
    page = client.post("/vouchers/programs/new/", program_post(face_value_min="9000.00", face_value_max="10.00"))
    # then 400 with the error next to the field, and no program
    assert page.status_code == 400
    assert "The maximum face value must be at least the minimum." in page.content.decode()
    # when a ratio is above 1
    page = client.post("/vouchers/programs/new/", program_post(domestic_ratio="1.5"))
    assert page.status_code == 400 and "A ratio must be between 0 and 1." in page.content.decode()
    assert 'value="1.5"' in page.content.decode()  # what was typed stays in the form
    assert not VoucherProgram.objects.filter(issuer=issuer).exists()


def test_issuer_edits_the_rules_of_own_program_only(startup, issuer):
    # given a program of this issuer and one of another issuer
    program = VoucherProgramFactory(issuer=issuer)
    other = VoucherProgramFactory()
    client = logged_in(issuer)
    assert f'href="/vouchers/programs/{program.pk}/edit/"' in client.get(
        f"/vouchers/programs/{program.pk}/").content.decode()
    form = client.get(f"/vouchers/programs/{program.pk}/edit/")
    assert form.status_code == 200 and f'value="{program.name}"' in form.content.decode()
    # when the ratio and the status are changed
    data = program_post(name=program.name, city=program.city, status="closed", domestic_ratio="0.4")
    assert client.post(f"/vouchers/programs/{program.pk}/edit/", data).status_code == 302
    # then they are saved
    program.refresh_from_db()
    assert (program.domestic_ratio, program.status) == (D("0.4"), "closed")
    # and a closed program cannot be reopened: 409 with the error on the status field
    reopen = client.post(f"/vouchers/programs/{program.pk}/edit/", {**data, "status": "active"})
    assert reopen.status_code == 409 and "Not allowed from closed." in reopen.content.decode()
    # and another issuer's program is not found; non-issuers may not create
    assert client.get(f"/vouchers/programs/{other.pk}/edit/").status_code == 404
    assert client.post(f"/vouchers/programs/{other.pk}/edit/", data).status_code == 404
    assert logged_in(startup).get("/vouchers/programs/new/").status_code == 403
    assert logged_in(startup).post("/vouchers/programs/new/", program_post()).status_code == 403
