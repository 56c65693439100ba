"""Statements API: who reads and pays which statement, filters, bad input, replays and the OpenAPI schema."""

import pytest
from rest_framework.test import APIClient

from ledger.models import JournalTransaction
from settlement import payout_services
from settlement.models import ReimbursementClaim
from tests import factories
from tests.settlement.statement_factories import issued_statement

pytestmark = pytest.mark.django_db


def client_of(org, role="owner") -> APIClient:
    client = APIClient()
    client.force_authenticate(factories.member_of(org, role=role))
    return client


@pytest.fixture
def other_statement():
    return issued_statement()


def test_issuer_lists_its_own_statements_only(statement, other_statement):
    # when the program's issuer lists
    response = client_of(statement.program.issuer).get("/api/v1/statements/")
    # then a page with its statement only
    assert response.status_code == 200
    body = response.json()
    assert {"count", "next", "previous", "results"} <= set(body)
    assert [row["id"] for row in body["results"]] == [statement.pk]
    row = body["results"][0]
    assert (row["program"], row["total"], row["status"], row["claim_count"]) == (
        statement.program_id,
        "4000.00",
        "issued",
        2,
    )
    assert row["issuer"] == statement.program.issuer_id and row["paid_at"] is None


@pytest.mark.parametrize("role", ["staff", "auditor"])
def test_staff_and_auditors_list_every_statement_and_filter(role, statement, other_statement):
    # given platform staff or a platform auditor
    platform = factories.PlatformFactory()
    client = client_of(platform, role="auditor" if role == "auditor" else "owner")
    payout_services.statement_mark_paid(statement=other_statement)
    # when / then
    everything = {row["id"] for row in client.get("/api/v1/statements/").json()["results"]}
    assert everything == {statement.pk, other_statement.pk}
    paid = client.get("/api/v1/statements/?status=paid").json()["results"]
    assert [row["id"] for row in paid] == [other_statement.pk]
    one = client.get(f"/api/v1/statements/?program={statement.program_id}").json()["results"]
    assert [row["id"] for row in one] == [statement.pk]


@pytest.mark.parametrize("query", ["status=open", "program=abc", "program=0"])
def test_bad_filters_are_a_400_with_field_errors(issuer_client, query):
    response = issuer_client.get(f"/api/v1/statements/?{query}")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {query.split("=")[0]}


def test_startups_providers_and_anonymous_are_refused(statement, startup_client, provider_client, api):
    for client, expected in ((startup_client, 403), (provider_client, 403), (api, 401)):
        for method, path in (
            ("get", "/api/v1/statements/"),
            ("get", f"/api/v1/statements/{statement.pk}/"),
            ("post", f"/api/v1/statements/{statement.pk}/pay/"),
        ):
            assert getattr(client, method)(path).status_code == expected, (method, path)
    assert not JournalTransaction.objects.filter(idempotency_key__startswith="statement:").exists()


def test_detail_lists_the_claims_with_booking_provider_and_startup(statement):
    # when
    response = client_of(statement.program.issuer).get(f"/api/v1/statements/{statement.pk}/")
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == "4000.00" and len(body["claims"]) == 2
    claims = {
        c.pk: c
        for c in ReimbursementClaim.objects.filter(statement=statement).select_related(
            "booking__buyer", "booking__listing__cluster__data_center__provider"
        )
    }
    for line in body["claims"]:
        claim = claims[line["id"]]
        assert line["booking"] == claim.booking_id and line["amount"] == "2000.00"
        assert line["startup"] == claim.booking.buyer_id and line["startup_name"] == claim.booking.buyer.name
        assert line["provider"] == claim.booking.listing.cluster.data_center.provider_id


def test_another_citys_issuer_gets_404_and_unknown_ids_404(statement, issuer_client):
    for method, path in (
        ("get", f"/api/v1/statements/{statement.pk}/"),
        ("post", f"/api/v1/statements/{statement.pk}/pay/"),
        ("get", "/api/v1/statements/999999/"),
        ("post", "/api/v1/statements/999999/pay/"),
    ):
        assert getattr(issuer_client, method)(path).status_code == 404, (method, path)
    statement.refresh_from_db()
    assert statement.status == "issued"


def test_issuer_pays_once_and_a_repeat_changes_nothing(statement):
    client = client_of(statement.program.issuer)
    # when paid twice
    first = client.post(f"/api/v1/statements/{statement.pk}/pay/")
    second = client.post(f"/api/v1/statements/{statement.pk}/pay/")
    # then
    assert first.status_code == second.status_code == 200
    assert first.json()["status"] == "paid" and {c["status"] for c in first.json()["claims"]} == {"paid"}
    assert first.json()["paid_at"] == second.json()["paid_at"]
    assert JournalTransaction.objects.filter(idempotency_key=f"statement:{statement.pk}:paid").count() == 1


def test_auditor_reads_but_cannot_pay_and_staff_can(statement):
    platform = factories.PlatformFactory()
    auditor = client_of(platform, role="auditor")
    assert auditor.get(f"/api/v1/statements/{statement.pk}/").status_code == 200
    refused = auditor.post(f"/api/v1/statements/{statement.pk}/pay/")
    assert refused.status_code == 403 and refused.json()["detail"]
    assert not JournalTransaction.objects.filter(idempotency_key__startswith="statement:").exists()
    paid = client_of(platform).post(f"/api/v1/statements/{statement.pk}/pay/")
    assert paid.status_code == 200 and paid.json()["status"] == "paid"


def test_pay_with_idempotency_key_replays_the_first_response(statement):
    client = client_of(statement.program.issuer)
    first = client.post(f"/api/v1/statements/{statement.pk}/pay/", HTTP_IDEMPOTENCY_KEY="pay-1")
    replay = client.post(f"/api/v1/statements/{statement.pk}/pay/", HTTP_IDEMPOTENCY_KEY="pay-1")
    assert first.status_code == replay.status_code == 200
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.json() == first.json()


def test_paying_a_stated_claim_alone_is_a_409_that_names_the_statement(statement):
    claim = statement.claims.first()
    response = client_of(statement.program.issuer).post(f"/api/v1/reimbursement-claims/{claim.pk}/mark-paid/")
    assert response.status_code == 409
    assert f"statement {statement.pk}" in response.json()["detail"]
    claim.refresh_from_db()
    assert claim.status == "open"
    listed = client_of(statement.program.issuer).get("/api/v1/reimbursement-claims/").json()["results"]
    assert {row["statement"] for row in listed} == {statement.pk}


def test_schema_documents_the_statement_routes(api):
    # when the OpenAPI document is read as JSON
    response = api.get("/api/v1/schema/?format=json")
    # then it has the three routes, the list's filters and the pay's Idempotency-Key
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/api/v1/statements/", "/api/v1/statements/{id}/", "/api/v1/statements/{id}/pay/"):
        assert path in paths
    params = {p["name"] for p in paths["/api/v1/statements/"]["get"]["parameters"]}
    assert {"program", "status", "page"} <= params
    assert "Idempotency-Key" in {p["name"] for p in paths["/api/v1/statements/{id}/pay/"]["post"]["parameters"]}
    detail = paths["/api/v1/statements/{id}/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert detail["$ref"].endswith("/StatementDetail")
