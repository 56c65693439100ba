"""Statement pages: the issuer's list and detail, the mark-paid button (htmx and plain), the CSV of the lines,
and the claims page pointing stated claims at their statement."""

import csv
import io
import re

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Organization
from ledger.models import JournalTransaction
from settlement import payout_services
from settlement.models import ReimbursementClaim
from tests import factories
from tests.settlement.statement_factories import open_claims

pytestmark = pytest.mark.django_db


def page_client(org, role="owner") -> Client:
    client = Client()
    client.force_login(factories.member_of(org, role=role))
    return client


def test_list_shows_the_issuers_statements_due_total_and_nav_link(statement):
    client = page_client(statement.program.issuer)
    # when
    html = client.get("/statements/").content.decode()
    # then
    assert f'href="/statements/{statement.pk}/"' in html and statement.program.name in html
    assert 'id="statements-due">¥4,000.00' in html
    assert 'href="/statements/">Statements</a>' in html  # in the navigation
    # and the status filter (htmx) answers the table alone
    partial = client.get("/statements/?status=paid", HTTP_HX_REQUEST="true").content.decode()
    assert partial.startswith('<div id="statements">') and "No statements paid" in partial


def test_empty_list_explains_when_statements_come(issuer):
    html = page_client(issuer).get("/statements/").content.decode()
    assert "No statements" in html and "1st of every month" in html


def test_detail_shows_lines_total_csv_link_and_a_confirmed_button_without_inline_script(statement):
    # when
    response = page_client(statement.program.issuer).get(f"/statements/{statement.pk}/")
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="statement-total">¥4,000.00' in html and html.count("¥2,000.00") >= 2
    for claim in ReimbursementClaim.objects.filter(statement=statement).select_related("booking__buyer"):
        assert f"#{claim.pk}" in html and claim.booking.buyer.name in html
    assert f'href="/statements/{statement.pk}/lines.csv"' in html
    assert f'hx-post="/statements/{statement.pk}/pay/"' in html and "hx-confirm=" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)  # the CSP allows no inline script


def test_mark_paid_with_htmx_swaps_the_statement_and_posts_once(statement):
    client = page_client(statement.program.issuer)
    # when clicked twice
    first = client.post(f"/statements/{statement.pk}/pay/", HTTP_HX_REQUEST="true")
    second = client.post(f"/statements/{statement.pk}/pay/", HTTP_HX_REQUEST="true")
    # then the statement comes back paid, without the button, and the money was received once
    assert first.status_code == second.status_code == 200
    html = first.content.decode()
    assert html.startswith('<div id="statement">') and "Paid" in html and "Mark paid" not in html
    assert JournalTransaction.objects.filter(idempotency_key=f"statement:{statement.pk}:paid").count() == 1
    assert set(ReimbursementClaim.objects.values_list("status", flat=True)) == {"paid"}


def test_mark_paid_without_javascript_redirects_back_with_a_message(statement):
    client = page_client(statement.program.issuer)
    response = client.post(f"/statements/{statement.pk}/pay/", follow=True)
    assert response.redirect_chain[-1][0] == f"/statements/{statement.pk}/"
    assert f"Statement #{statement.pk} marked paid." in response.content.decode()
    statement.refresh_from_db()
    assert statement.status == "paid"


def test_other_cities_startups_and_auditors(statement, issuer, startup):
    other_city, a_startup = page_client(issuer), page_client(startup)
    auditor = page_client(factories.PlatformFactory(), role="auditor")
    # another city's issuer: 404 on the statement, its pay and its CSV, and its list does not show it
    for method, path in (
        ("get", f"/statements/{statement.pk}/"),
        ("post", f"/statements/{statement.pk}/pay/"),
        ("get", f"/statements/{statement.pk}/lines.csv"),
    ):
        assert getattr(other_city, method)(path).status_code == 404, path
    assert f"/statements/{statement.pk}/" not in other_city.get("/statements/").content.decode()
    # a startup: 403 everywhere
    for path in ("/statements/", f"/statements/{statement.pk}/", f"/statements/{statement.pk}/lines.csv"):
        assert a_startup.get(path).status_code == 403, path
    # an auditor reads (no button) but cannot pay
    detail = auditor.get(f"/statements/{statement.pk}/")
    assert detail.status_code == 200 and "Mark paid" not in detail.content.decode()
    assert auditor.post(f"/statements/{statement.pk}/pay/").status_code == 403
    statement.refresh_from_db()
    assert statement.status == "issued"


def test_csv_has_one_row_per_claim_and_neutralises_formulas():
    # given a statement whose startup named itself like a spreadsheet formula
    claims = open_claims(count=2)
    Organization.objects.filter(pk=claims[0].booking.buyer_id).update(name='=HYPERLINK("http://evil")')
    statement = payout_services.statements_issue(until=timezone.now())[0]
    # when
    response = page_client(statement.program.issuer).get(f"/statements/{statement.pk}/lines.csv")
    # then
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert f'filename="statement-{statement.pk}.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert sorted(int(row["claim"]) for row in rows) == sorted(c.pk for c in claims)
    assert {row["amount"] for row in rows} == {"2000.00"} and {row["claim_status"] for row in rows} == {"open"}
    assert {row["statement"] for row in rows} == {str(statement.pk)}
    assert {row["booking"] for row in rows} == {str(c.booking_id) for c in claims}
    assert {row["startup"] for row in rows} == {'\'=HYPERLINK("http://evil")'}
    assert {row["provider"] for row in rows} == {claims[0].booking.listing.cluster.data_center.provider.name}


def test_claims_page_links_stated_claims_and_refuses_paying_them_alone(statement):
    claim = statement.claims.first()
    client = page_client(statement.program.issuer)
    # the claims page points at the statement instead of offering "Mark paid"
    html = client.get("/claims/").content.decode()
    assert f'href="/statements/{statement.pk}/">Statement #{statement.pk}' in html and "Mark paid" not in html
    # a forged POST gets the row back with the reason, and nothing is posted
    response = client.post(f"/claims/{claim.pk}/mark-paid/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and f"statement {statement.pk}" in response.content.decode()
    assert not JournalTransaction.objects.filter(idempotency_key=f"claim:{claim.pk}:paid").exists()
