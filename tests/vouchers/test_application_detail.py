"""An issuer's application page: the whole purpose, the applicant (city, SME, filings, its vouchers and other
applications in the issuer's programs), and approve / reject forms that ask before they act."""

from decimal import Decimal as D  # noqa: N817

import pytest
from django.test import Client
from django.urls import reverse

from tests import factories
from tests.vouchers.factories import funded_program, issued_voucher
from vouchers import services

pytestmark = pytest.mark.django_db
PURPOSE = "Pretraining a 13B model on domestic accelerators for Shanghai hospitals. " * 5  # ~370 characters


def logged_in(org) -> Client:
    client = Client()
    client.force_login(factories.member_of(org))
    return client


@pytest.fixture
def program(issuer):
    return funded_program(issuer=issuer)


@pytest.fixture
def application(program, startup):
    return services.application_submit(
        program=program, applicant=startup, requested_amount=D("5000"), purpose=PURPOSE.strip()
    )


def test_the_issuer_reads_the_whole_purpose_and_the_applicant(issuer, startup, program, application):
    voucher = issued_voucher(holder=startup, program=program, face_value="1000.00")
    response = logged_in(issuer).get(reverse("voucher-application-detail", args=[application.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert PURPOSE.strip() in html  # whole, not cut at 80 characters
    assert startup.name in html and startup.credit_code in html and startup.get_city_display() in html
    assert reverse("voucher-detail", args=[voucher.pk]) in html  # the voucher it already holds here
    # the decision forms ask first
    assert html.count("data-confirm=") == 2
    assert f'action="{reverse("voucher-application-approve", args=[application.pk])}"' in html


def test_the_queue_links_to_the_page_and_its_approval_asks_first(issuer, application):
    html = logged_in(issuer).get(reverse("voucher-application-queue")).content.decode()
    assert reverse("voucher-application-detail", args=[application.pk]) in html
    assert "hx-confirm=" in html[html.index(reverse("voucher-application-approve", args=[application.pk])) - 400 :]


def test_the_applicant_sees_its_application_without_the_decision_forms(startup, application):
    html = logged_in(startup).get(reverse("voucher-application-detail", args=[application.pk])).content.decode()
    assert PURPOSE.strip() in html and "data-confirm=" not in html


def test_others_get_404(application):
    other_issuer = factories.IssuerFactory()
    response = logged_in(other_issuer).get(reverse("voucher-application-detail", args=[application.pk]))
    assert response.status_code == 404
