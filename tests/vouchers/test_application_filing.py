"""A program that requires a registered model filing takes applications naming a verified, unexpired filing of the
applicant only: anything else is a 400 field error on ``model_filing`` (API and page) and nothing is written."""

import datetime as dt
from decimal import Decimal as D  # noqa: N817

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ModelFiling
from audit.models import AuditEvent
from marketplace.core.exceptions import ApplicationError
from tests import factories
from tests.vouchers.factories import funded_program
from vouchers import services
from vouchers.models import VoucherApplication

pytestmark = pytest.mark.django_db
PROGRAMS = "/api/v1/voucher-programs/"


def _filing(startup, **kwargs) -> ModelFiling:
    return factories.ModelFilingFactory(organization=startup, **kwargs)


@pytest.mark.parametrize(
    ("filing_kwargs", "message"),
    [
        (None, "This program requires a registered model filing verified by an issuer or platform staff."),
        ({"status": "pending"}, "has not been verified yet."),
        ({"status": "rejected"}, "that is still valid"),
        ({"valid_until": dt.date(2020, 1, 1)}, "that is still valid"),
    ],
)
def test_a_program_requiring_a_filing_refuses_an_application_without_a_valid_one(startup, filing_kwargs, message):
    # given a program that requires a filing, and no filing / a pending, rejected or expired one
    program = funded_program(requires_model_filing=True)
    filing = None if filing_kwargs is None else _filing(startup, **filing_kwargs)
    events = AuditEvent.objects.count()
    # when the startup applies with it
    with pytest.raises(ApplicationError) as refused:
        services.application_submit(
            program=program, applicant=startup, requested_amount=D("5000"), purpose="training", model_filing=filing
        )
    # then 400 on the field, in words, and nothing is written
    assert refused.value.status == 400 and message in refused.value.errors["model_filing"][0]
    assert not VoucherApplication.objects.exists() and AuditEvent.objects.count() == events


def test_a_verified_filing_is_accepted_and_a_program_without_the_rule_needs_none(startup):
    filing = _filing(startup, valid_until=timezone.localdate() + dt.timedelta(days=1))
    strict, relaxed = funded_program(requires_model_filing=True), funded_program()
    application = services.application_submit(
        program=strict, applicant=startup, requested_amount=D("5000"), purpose="training", model_filing=filing
    )
    assert application.model_filing == filing
    assert services.application_submit(program=relaxed, applicant=startup, requested_amount=D("5000"), purpose="x")


def test_the_api_and_the_page_answer_the_field_error(startup, startup_client):
    program = funded_program(requires_model_filing=True)
    pending = _filing(startup, status="pending")
    # when the API is asked / then 400 with the field error
    response = startup_client.post(
        f"{PROGRAMS}{program.pk}/applications/",
        {"requested_amount": "5000.00", "purpose": "training", "model_filing": pending.pk},
        format="json",
    )
    assert response.status_code == 400 and "has not been verified yet" in response.data["errors"]["model_filing"][0]
    # when the page's form is posted (htmx) / then the form comes back with the message next to the field
    client = Client()
    client.force_login(factories.member_of(startup))
    data = {"requested_amount": "5000.00", "purpose": "training", "model_filing": str(pending.pk)}
    html = client.post(f"/vouchers/programs/{program.pk}/apply/", data, HTTP_HX_REQUEST="true").content.decode()
    assert "has not been verified yet" in html and 'class="error"' in html
    assert not VoucherApplication.objects.exists()
