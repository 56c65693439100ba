"""The home page shows each person the panels of the organizations they act for."""

from decimal import Decimal

import pytest
from django.test import Client

from marketplace.core.templatetags.money import money
from tests import factories
from tests.orders.factories import booking_kwargs, fund
from tests.vouchers.factories import issued_voucher

pytestmark = pytest.mark.django_db


def page_for(user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def test_startup_sees_wallet_vouchers_and_upcoming_bookings():
    from orders.services import booking_create

    # given a funded startup with a voucher and a booking
    startup = factories.StartupFactory()
    fund(startup, "5000.00")
    voucher = issued_voucher(holder=startup, face_value="120000.00")
    booking = booking_create(buyer=startup, confirm=True, **booking_kwargs())
    # when its member opens the dashboard
    html = page_for(factories.member_of(startup))
    # then
    assert 'id="startup-dashboard"' in html
    assert money(booking.cash_amount) in html and "held" in html
    assert voucher.program.name in html and "¥120,000.00" in html
    assert f'href="/bookings/{booking.pk}/"' in html
    assert 'id="provider-dashboard"' not in html and 'id="issuer-dashboard"' not in html


def test_issuer_sees_pending_applications_and_budget():
    from tests.vouchers.factories import funded_program
    from vouchers import services

    program = funded_program("3000000.00")
    services.application_submit(
        program=program,
        applicant=factories.StartupFactory(),
        requested_amount=Decimal("1000000.00"),
        purpose="training",
    )
    html = page_for(factories.member_of(program.issuer))
    assert 'id="issuer-dashboard"' in html
    assert "<strong>1</strong> application waiting" in html
    assert "¥3,000,000.00" in html


def test_issuer_without_programs_is_pointed_to_the_new_program_page():
    # given an issuer with no program / when its member opens the dashboard / then the page to create one is linked
    html = page_for(factories.member_of(factories.IssuerFactory()))
    assert 'id="issuer-dashboard"' in html and 'href="/vouchers/programs/new/"' in html


def test_provider_sees_bookings_on_its_clusters():
    from orders.services import booking_create

    listing = factories.ListingFactory()
    buyer = factories.StartupFactory(name="Buyer Co")
    fund(buyer, "5000.00")
    booking_create(buyer=buyer, confirm=True, **booking_kwargs(listing))
    html = page_for(factories.member_of(listing.cluster.data_center.provider))
    assert 'id="provider-dashboard"' in html and "Buyer Co" in html
    assert 'id="startup-dashboard"' not in html


def test_someone_without_an_organization_is_told_what_to_do():
    html = page_for(factories.UserFactory())
    assert "Ask an owner of your organization" in html


def test_issuer_sees_statements_to_pay_and_claims_not_yet_stated():
    from tests.settlement.statement_factories import issued_statement, open_claims

    # given one issued statement of two claims (2 × 2000) and, later, one more open claim of the same program
    statement = issued_statement(count=2)
    open_claims(statement.program, count=1)
    # when the program's issuer opens the dashboard / then both are counted, with their totals, and linked
    html = page_for(factories.member_of(statement.program.issuer))
    assert "<strong>1</strong> statement to pay, ¥4,000.00" in html
    assert "<strong>1</strong> open claim not yet on a statement, ¥2,000.00" in html
    assert 'href="/statements/?status=issued"' in html and 'href="/claims/?status=open"' in html


def test_platform_staff_see_reviews_payouts_and_statements_waiting():
    from settlement import payout_services, services
    from tests.settlement.factories import completed_booking
    from tests.settlement.statement_factories import issued_statement

    # given a listing pending review, a pending payout, a settlement not yet batched and an issued statement
    factories.ListingFactory(status="pending_review")
    statement = issued_statement(count=1)
    payout = payout_services.payout_batch_create()[0]
    later = completed_booking(subtotal="1000.00")
    services.booking_settle(booking_id=later.pk)
    # when staff open the dashboard
    html = page_for(factories.member_of(factories.PlatformFactory()))
    # then each is counted with its amount and linked to the page where it is done
    assert 'id="platform-dashboard"' in html
    assert "<strong>1</strong> listing waiting for review" in html
    assert f"<strong>1</strong> payout to transfer, {money(payout.amount)}" in html
    assert "(¥970.00 settled for next Monday" in html
    assert f"<strong>1</strong> city statement awaiting payment, {money(statement.total)}" in html
    assert 'href="/deposits/"' in html


def test_other_people_get_no_operations_panel_and_staff_with_no_work_see_zeros():
    assert 'id="platform-dashboard"' not in page_for(factories.member_of(factories.StartupFactory()))
    html = page_for(factories.member_of(factories.PlatformFactory()))
    assert "<strong>0</strong> payouts to transfer, ¥0.00" in html
