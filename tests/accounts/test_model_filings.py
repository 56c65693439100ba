"""Model filings (issue 19): a startup records them, staff or an issuer checks them, and only verified filings valid
that day satisfy a program's ``requires_model_filing``."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import ModelFiling
from accounts.selectors import has_valid_model_filing
from audit.models import AuditEvent
from marketplace.core.exceptions import ApplicationError
from tests import factories
from tests.factories import member_of
from tests.vouchers.factories import funded_program, issued_voucher
from vouchers import services as voucher_services

pytestmark = pytest.mark.django_db
FILINGS = "/api/v1/model-filings/"


def body() -> dict:
    return {"filing_number": "Beijing-WangXin-20250115-0042", "model_name": "Qilin-7B", "registered_on": "2025-01-15"}


def test_a_startup_records_a_filing_pending_a_check_that_does_not_count_yet(startup, startup_client):
    # when
    response = startup_client.post(FILINGS, body(), format="json")
    # then
    assert response.status_code == 201 and response.data["status"] == "pending"
    assert not has_valid_model_filing(startup.pk, on=timezone.localdate())
    assert AuditEvent.objects.filter(action="model_filing.create", organization_id=startup.pk).count() == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"filing_number": "  "}, "filing_number"),
        ({"registered_on": "2999-01-01"}, "registered_on"),
        ({"valid_until": "2024-01-01"}, "valid_until"),
        ({"model_name": "x" * 121}, "model_name"),
    ],
)
def test_bad_filings_are_400_with_the_field_and_nothing_is_written(startup_client, change, field):
    response = startup_client.post(FILINGS, {**body(), **change}, format="json")
    assert response.status_code == 400 and field in response.data["errors"]
    assert not ModelFiling.objects.exists()


def test_a_filing_number_is_recorded_once(startup_client):
    assert startup_client.post(FILINGS, body(), format="json").status_code == 201
    again = startup_client.post(FILINGS, body(), format="json")
    assert again.status_code == 400 and "filing_number" in again.data["errors"]


def test_an_issuer_verifies_then_it_counts_until_it_ends(startup, startup_client, issuer_client):
    filing_id = startup_client.post(FILINGS, {**body(), "valid_until": "2030-12-31"}, format="json").data["id"]
    # when
    verified = issuer_client.post(f"{FILINGS}{filing_id}/verify/", {}, format="json")
    # then
    assert verified.status_code == 200 and verified.data["status"] == "verified"
    assert has_valid_model_filing(startup.pk, on=dt.date(2030, 12, 31))
    assert not has_valid_model_filing(startup.pk, on=dt.date(2031, 1, 1))


def test_a_rejection_needs_a_note_and_is_final(startup_client, issuer_client):
    filing_id = startup_client.post(FILINGS, body(), format="json").data["id"]
    no_note = issuer_client.post(f"{FILINGS}{filing_id}/reject/", {}, format="json")
    assert no_note.status_code == 400 and "note" in no_note.data["errors"]
    rejected = issuer_client.post(f"{FILINGS}{filing_id}/reject/", {"note": "not in the registry"}, format="json")
    assert rejected.status_code == 200 and rejected.data["review_note"] == "not in the registry"
    again = issuer_client.post(f"{FILINGS}{filing_id}/verify/", {}, format="json")
    assert again.status_code == 409
    assert ModelFiling.objects.get(pk=filing_id).status == "rejected"


def test_a_startup_cannot_verify_its_own_filing(startup_client):
    filing_id = startup_client.post(FILINGS, body(), format="json").data["id"]
    assert startup_client.post(f"{FILINGS}{filing_id}/verify/", {}, format="json").status_code == 403
    assert ModelFiling.objects.get(pk=filing_id).status == "pending"


def test_startups_list_only_their_own_filings_and_a_bad_status_filter_is_400(startup_client):
    factories.ModelFilingFactory()  # another startup's
    mine = startup_client.post(FILINGS, body(), format="json").data["id"]
    listed = startup_client.get(FILINGS)
    assert [row["id"] for row in listed.data["results"]] == [mine]
    assert startup_client.get(FILINGS, {"status": "nonsense"}).status_code == 400


def test_a_program_requiring_a_filing_pays_only_once_it_is_verified(startup, issuer):
    # given a program that requires a filing, and the startup's filing, still pending
    voucher = issued_voucher(holder=startup, program=funded_program(issuer=issuer, requires_model_filing=True))
    listing = factories.ListingFactory()
    filing = factories.ModelFilingFactory(organization=startup, status=ModelFiling.Status.PENDING)

    def voucher_part() -> Decimal:
        parts = voucher_services.voucher_quote(
            buyer=startup, listing=listing, subtotal=Decimal("1000.00"), voucher_ids=[voucher.pk]
        )
        return parts[0].amount

    # when pending / then the voucher cannot pay, naming the rule
    with pytest.raises(ApplicationError) as refused:
        voucher_part()
    assert "model filing" in str(refused.value.errors["vouchers"])
    # when verified / then it pays
    ModelFiling.objects.filter(pk=filing.pk).update(status=ModelFiling.Status.VERIFIED)
    assert voucher_part() > 0


def test_the_page_records_a_filing_and_an_issuer_verifies_it_there(client, startup, issuer):
    startup_user, issuer_user = member_of(startup), member_of(issuer)
    client.force_login(startup_user)
    # when the startup records a filing on the page
    page = client.get("/model-filings/")
    posted = client.post(
        "/model-filings/",
        {"filing_number": "BJ-1", "model_name": "Qilin", "registered_on": "2025-01-15", "valid_until": ""},
    )
    # then
    assert page.status_code == 200 and posted.status_code == 302
    filing = ModelFiling.objects.get(filing_number="BJ-1")
    assert filing.status == "pending" and filing.organization_id == startup.pk
    # when an issuer verifies it from the queue
    client.force_login(issuer_user)
    queue = client.get("/model-filings/").content.decode()
    assert "BJ-1" in queue and f"/model-filings/{filing.pk}/verify/" in queue
    client.post(f"/model-filings/{filing.pk}/verify/")
    filing.refresh_from_db()
    assert filing.status == "verified" and filing.reviewed_by == issuer_user


def test_the_page_is_refused_to_a_provider(client, provider):
    client.force_login(member_of(provider))
    assert client.get("/model-filings/").status_code == 403
