"""Vouchers API: programs, applications, approve/reject, vouchers; other organizations' objects answer 404."""

from decimal import Decimal as D  # noqa: N817

import pytest

from ledger.selectors import ledger_breaches
from marketplace.core.exceptions import ApplicationError
from tests import factories
from tests.vouchers.factories import VoucherProgramFactory, funded_program, held_booking, issued_voucher
from vouchers import services
from vouchers.models import VoucherApplication, VoucherProgram

pytestmark = pytest.mark.django_db

PROGRAMS = "/api/v1/voucher-programs/"
APPLICATIONS = "/api/v1/voucher-applications/"
VOUCHERS = "/api/v1/vouchers/"


def program_body(**extra):
    return {"name": "Shanghai compute vouchers", "budget": "5000000.00", "face_value_min": "1000000.00",
            "face_value_max": "2000000.00", "applications_open_from": "2026-01-01T00:00:00Z",
            "applications_open_until": "2030-01-01T00:00:00Z", "status": "active", "domestic_ratio": "0.30",
            "other_ratio": "0.30", **extra}


def test_issuer_creates_and_funds_a_program(issuer_client, issuer):
    # given an accelerator the program covers
    chip = factories.AcceleratorFactory(slug="ascend-910b")
    # when
    response = issuer_client.post(PROGRAMS, program_body(eligible_accelerators=["ascend-910b"]), format="json")
    # then
    assert response.status_code == 201, response.data
    assert response.data["budget_total"] == "5000000.00" and response.data["issuer"] == issuer.name
    program = VoucherProgram.objects.get()
    assert list(program.eligible_accelerators.all()) == [chip] and program.city == issuer.city


@pytest.mark.parametrize(
    ("change", "field"),
    [({"face_value_max": "1.00"}, "face_value_max"), ({"other_ratio": "1.5000"}, "other_ratio"),
     ({"name": ""}, "name"), ({"status": "open"}, "status")],
)
def test_bad_program_is_400_with_field_errors(issuer_client, change, field):
    response = issuer_client.post(PROGRAMS, program_body(**change), format="json")
    assert response.status_code == 400 and field in response.data["errors"]
    assert not VoucherProgram.objects.exists()


def test_startups_cannot_create_programs(startup_client):
    assert startup_client.post(PROGRAMS, program_body(), format="json").status_code == 403


def test_program_list_shows_active_ones_and_own_drafts(startup_client, issuer_client, issuer):
    # given an active program, a draft of another issuer and a draft of ours
    active = VoucherProgramFactory()
    VoucherProgramFactory(status="draft")
    own_draft = VoucherProgramFactory(status="draft", issuer=issuer)
    # when / then
    assert [p["id"] for p in startup_client.get(PROGRAMS).data["results"]] == [active.pk]
    assert {p["id"] for p in issuer_client.get(PROGRAMS).data["results"]} == {active.pk, own_draft.pk}


def test_only_the_programs_issuer_can_patch_it(issuer_client, issuer):
    # given
    own, other = VoucherProgramFactory(issuer=issuer), VoucherProgramFactory()
    # when / then
    response = issuer_client.patch(f"{PROGRAMS}{own.pk}/", {"per_booking_cap": "50000.00"}, format="json")
    assert response.status_code == 200 and response.data["per_booking_cap"] == "50000.00"
    assert issuer_client.patch(f"{PROGRAMS}{other.pk}/", {"status": "closed"}, format="json").status_code == 404


def test_apply_approve_flow(startup_client, startup, issuer_client, issuer):
    # given
    program = funded_program(issuer=issuer)
    # when the startup applies
    response = startup_client.post(f"{PROGRAMS}{program.pk}/applications/",
                                   {"requested_amount": "200000.00", "purpose": "LLM pretraining"}, format="json")
    assert response.status_code == 201, response.data
    application_id = response.data["id"]
    # and the issuer approves a lower face value, with an idempotency key, twice
    url = f"{APPLICATIONS}{application_id}/approve/"
    first = issuer_client.post(url, {"face_value": "150000.00"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    replay = issuer_client.post(url, {"face_value": "150000.00"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    # then one voucher, visible to the startup with its balance
    assert first.status_code == 200 and replay.status_code == 200 and replay.data == first.data
    assert replay.headers.get("Idempotent-Replayed") == "true"
    voucher_id = first.data["voucher"]
    detail = startup_client.get(f"{VOUCHERS}{voucher_id}/")
    assert detail.status_code == 200
    assert (detail.data["balance"], detail.data["held"], detail.data["spent"]) == ("150000.00", "0.00", "0.00")
    assert detail.data["redemptions"] == []
    listing = startup_client.get(VOUCHERS).data["results"]
    assert [(v["id"], v["balance"]) for v in listing] == [(voucher_id, "150000.00")]
    assert ledger_breaches() == []


def test_apply_outside_the_face_value_range_is_400(startup_client):
    program = VoucherProgramFactory()
    response = startup_client.post(f"{PROGRAMS}{program.pk}/applications/",
                                   {"requested_amount": "999.99", "purpose": "x"}, format="json")
    assert response.status_code == 400 and "requested_amount" in response.data["errors"]


def test_approve_beyond_budget_is_409(startup, issuer_client, issuer):
    program = funded_program("1000.00", issuer=issuer)
    application = services.application_submit(program=program, applicant=startup, requested_amount=D("1000.01"),
                                              purpose="x")
    response = issuer_client.post(f"{APPLICATIONS}{application.pk}/approve/", {"face_value": "1000.01"},
                                  format="json")
    assert response.status_code == 409
    application.refresh_from_db()
    assert application.status == "submitted"


def test_reject_needs_a_reason(startup, issuer_client, issuer):
    application = services.application_submit(program=VoucherProgramFactory(issuer=issuer), applicant=startup,
                                              requested_amount=D("5000"), purpose="x")
    url = f"{APPLICATIONS}{application.pk}/reject/"
    assert issuer_client.post(url, {}, format="json").data["errors"].keys() == {"reason"}
    response = issuer_client.post(url, {"reason": "Not an AI workload"}, format="json")
    assert response.status_code == 200 and response.data["reject_reason"] == "Not an AI workload"


def test_an_issuer_sees_only_its_own_programs_applications(startup, issuer, issuer_client):
    # given applications to our program and to another issuer's
    ours = services.application_submit(program=VoucherProgramFactory(issuer=issuer), applicant=startup,
                                       requested_amount=D("5000"), purpose="x")
    theirs = services.application_submit(program=VoucherProgramFactory(), applicant=startup,
                                         requested_amount=D("5000"), purpose="y")
    # when / then
    assert [a["id"] for a in issuer_client.get(APPLICATIONS).data["results"]] == [ours.pk]
    response = issuer_client.post(f"{APPLICATIONS}{theirs.pk}/approve/", {"face_value": "5000"}, format="json")
    assert response.status_code == 404
    assert VoucherApplication.objects.get(pk=theirs.pk).status == "submitted"


def test_a_startup_never_sees_another_organizations_voucher(startup_client, startup):
    # given a voucher of another startup, with a redemption
    other = factories.StartupFactory()
    theirs = issued_voucher(holder=other)
    services.vouchers_hold_for_booking(booking=held_booking(buyer=other), voucher_ids=[theirs.pk])
    mine = issued_voucher(holder=startup)
    # when / then: not listed, 404 in detail, and not spendable (400 naming the organization rule)
    assert [v["id"] for v in startup_client.get(VOUCHERS).data["results"]] == [mine.pk]
    assert startup_client.get(f"{VOUCHERS}{theirs.pk}/").status_code == 404
    assert startup_client.get(f"{APPLICATIONS}").data["count"] == 1
    with pytest.raises(ApplicationError) as excinfo:
        services.voucher_quote(buyer=startup, listing=factories.ListingFactory(), subtotal=D("100"),
                               voucher_ids=[theirs.pk])
    assert excinfo.value.status == 400 and "rule: organization" in excinfo.value.errors["vouchers"][0]


def test_voucher_detail_lists_redemptions(startup_client, startup):
    voucher = issued_voucher(holder=startup, face_value="100000.00")
    booking = held_booking(buyer=startup, subtotal="10000.00")
    services.vouchers_hold_for_booking(booking=booking, voucher_ids=[voucher.pk])
    data = startup_client.get(f"{VOUCHERS}{voucher.pk}/").data
    assert (data["balance"], data["held"]) == ("98000.00", "2000.00")
    assert [(r["booking"], r["amount"], r["bound_by"], r["status"]) for r in data["redemptions"]] == [
        (booking.pk, "2000.00", "coverage_ratio", "held")]
