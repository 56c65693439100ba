"""The statement CSV and the spend CSVs offer the audit export of their lines (``export.json``, with proofs): a
``Link`` header on each CSV, a link beside each download, and ``?statement=`` narrowing the export to the lines of
one reimbursement statement."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.utils import timezone

from settlement import payout_services
from settlement.models import ReimbursementClaim
from tests import factories
from tests.audit.helpers import sequence_all
from tests.settlement.statement_factories import open_claims

pytestmark = pytest.mark.django_db

LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="alternate"; type="application/json"$')


def _client(org, role="owner") -> Client:
    client = Client()
    client.force_login(factories.member_of(org, role=role))
    return client


@pytest.fixture
def statements():
    """Two programs' statements (two claims and one), their events in the signed log."""
    first = open_claims(count=2)
    second = open_claims(count=1)
    issued = {s.program_id: s for s in payout_services.statements_issue(until=timezone.now())}
    sequence_all()
    return issued[first[0].booking.redemptions.first().voucher.program_id], issued[
        second[0].booking.redemptions.first().voucher.program_id
    ]


def _export(client, url: str) -> dict:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def test_the_statement_csv_links_the_export_of_exactly_its_lines(statements):
    # given
    statement, other = statements
    client = _client(statement.program.issuer)
    # when
    csv_response = client.get(f"/statements/{statement.pk}/lines.csv")
    # then its Link header names the export of this statement
    match = LINK.match(csv_response["Link"])
    assert match and match["url"] == f"/api/v1/audit/export.json?statement={statement.pk}"
    document = _export(client, match["url"])
    leaves = [json.loads(entry["leaf"]) for entry in document["entries"]]
    bookings = set(ReimbursementClaim.objects.filter(statement=statement).values_list("booking_id", flat=True))
    other_bookings = set(ReimbursementClaim.objects.filter(statement=other).values_list("booking_id", flat=True))
    assert {leaf["data"]["booking"] for leaf in leaves} == bookings  # every line, and only these
    assert not other_bookings & {leaf["data"]["booking"] for leaf in leaves}
    assert {leaf["action"] for leaf in leaves} == {"voucher.hold", "voucher.capture"}
    assert all(entry["audit_path"] is not None and entry["tree_size"] >= 1 for entry in document["entries"])
    assert document["pending_event_ids"] == []


def test_the_export_filename_names_the_statement(statements):
    statement, _ = statements
    response = _client(statement.program.issuer).get(f"/api/v1/audit/export.json?statement={statement.pk}")
    assert f'filename="audit-export-statement-{statement.pk}-' in response["Content-Disposition"]


def test_another_issuers_statement_export_is_404(statements):
    statement, other = statements
    response = _client(other.program.issuer).get(f"/api/v1/audit/export.json?statement={statement.pk}")
    assert response.status_code == 404


def test_a_bad_statement_parameter_is_a_field_error(statements):
    statement, _ = statements
    response = _client(statement.program.issuer).get("/api/v1/audit/export.json?statement=zero")
    assert response.status_code == 400
    assert "statement" in response.json()["errors"]


def test_the_statement_page_links_the_export_for_its_issuer_not_for_staff(statements):
    statement, _ = statements
    html = _client(statement.program.issuer).get(f"/statements/{statement.pk}/").content.decode()
    assert f'href="/api/v1/audit/export.json?statement={statement.pk}" id="audit-export"' in html
    staff = Client()
    staff.force_login(factories.member_of(factories.PlatformFactory(), role="member"))
    staff_html = staff.get(f"/statements/{statement.pk}/").content.decode()
    assert "lines.csv" in staff_html and 'id="audit-export"' not in staff_html


@pytest.mark.parametrize("path", ["/audit/spend.csv?group_by=program", "/api/v1/audit/spend.csv?group_by=program"])
def test_the_spend_csvs_link_the_export_of_their_scope(statements, path):
    statement, _ = statements
    response = _client(statement.program.issuer).get(path)
    assert response.status_code == 200
    match = LINK.match(response["Link"])
    assert match and match["url"] == "/api/v1/audit/export.json?group_by=program"


def test_the_spend_dashboard_offers_the_export_beside_the_csv(statements):
    statement, _ = statements
    html = _client(statement.program.issuer).get("/audit/?group_by=program").content.decode()
    assert 'id="download-csv"' in html
    assert 'id="download-audit-export" href="/api/v1/audit/export.json?group_by=program"' in html
