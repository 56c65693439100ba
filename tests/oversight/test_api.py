"""Audit API: who may read what, filters, the CSV download and flag reviews."""

import csv
import io

import pytest

from audit.services import audit_record
from oversight import flags
from oversight.models import AnomalyFlag
from tests import factories
from tests.oversight import factories as af
from tests.vouchers.factories import VoucherProgramFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_issuers(startup):
    """Issuers A and B, each with a program and one flagged voucher booking (export-controlled hardware)."""
    listing = factories.ListingFactory(cluster__accelerator__export_controlled=True)
    programs = [VoucherProgramFactory(city="Shanghai"), VoucherProgramFactory(city="Beijing")]
    start = factories.next_hour(2)
    for i, program in enumerate(programs):
        v = af.voucher(holder=startup, program=program)
        af.booking(
            buyer=startup,
            listing=listing,
            start=start + i * (listing.available_until - start) / 4,
            voucher_part="16.00",
            vouchers=[v],
        )
    flags.flags_compute()
    return programs


@pytest.mark.parametrize(
    "path", ["/api/v1/audit/events/", "/api/v1/audit/spend/", "/api/v1/audit/spend.csv", "/api/v1/audit/flags/"]
)
def test_startups_and_providers_get_403(startup_client, provider_client, path):
    assert startup_client.get(path).status_code == 403
    assert provider_client.get(path).status_code == 403


def test_issuer_a_cannot_see_issuer_b_spend_or_flags(two_issuers, client_for):
    # given
    a, b = two_issuers
    client = client_for(factories.member_of(a.issuer))
    # when
    spend = client.get("/api/v1/audit/spend/?group_by=program").json()
    flag_list = client.get("/api/v1/audit/flags/").json()
    csv_text = client.get("/api/v1/audit/spend.csv?group_by=program").content.decode()
    # then
    assert [row["key"] for row in spend["results"]] == [str(a.pk)]
    assert [f["program"] for f in flag_list["results"]] == [a.pk]
    assert b.name not in csv_text and a.name in csv_text


def test_spend_csv_shows_a_formula_like_name_as_text(two_issuers, auditor_client):
    # given a program whose name a spreadsheet would run as a formula
    program = two_issuers[0]
    program.name = '=HYPERLINK("http://evil","open")'
    program.save(update_fields=["name"])
    # when
    rows = list(
        csv.DictReader(io.StringIO(auditor_client.get("/api/v1/audit/spend.csv?group_by=program").content.decode()))
    )
    # then the name is text, and the amounts are still plain numbers
    labels = {row["key"]: row["label"] for row in rows}
    assert labels[str(program.pk)] == "'" + program.name
    assert all(row["held"] == "16.00" for row in rows)


def test_auditor_sees_every_program(two_issuers, auditor_client):
    # when
    response = auditor_client.get("/api/v1/audit/spend/?group_by=city")
    # then
    body = response.json()
    assert response.status_code == 200 and [r["key"] for r in body["results"]] == ["Beijing", "Shanghai"]
    assert body["totals"]["held"] == "32.00" and body["results"][0]["held"] == "16.00"


def test_bad_group_by_is_a_400_field_error(auditor_client):
    for path in ("/api/v1/audit/spend/?group_by=planet", "/api/v1/audit/spend.csv?group_by=planet"):
        response = auditor_client.get(path)
        assert response.status_code == 400 and "group_by" in response.json()["errors"]


def test_csv_is_an_attachment_with_a_header_row(two_issuers, auditor_client):
    # when
    response = auditor_client.get("/api/v1/audit/spend.csv?group_by=city")
    # then
    lines = response.content.decode().splitlines()
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="voucher-spend-by-city-')
    assert lines[0] == "group_by,key,label,bookings,held,captured,reimbursed,spent,budget_total,budget_used"
    assert lines[1:] == [
        "city,Beijing,Beijing,1,16.00,0.00,0.00,16.00,,",
        "city,Shanghai,Shanghai,1,16.00,0.00,0.00,16.00,,",
    ]


def test_events_are_filtered_and_scoped(issuer, issuer_client, auditor_client):
    # given one event of the issuer and one of another organization
    audit_record(action="test.mine", object_type="x.y", object_id="1", organization_id=issuer.pk)
    audit_record(action="test.theirs", object_type="x.y", object_id="2", organization_id=factories.IssuerFactory().pk)
    # when / then
    mine = issuer_client.get("/api/v1/audit/events/?object_type=x.y").json()
    assert [e["action"] for e in mine["results"]] == ["test.mine"] and mine["count"] == 1
    everything = auditor_client.get("/api/v1/audit/events/?object_type=x.y").json()
    assert [e["action"] for e in everything["results"]] == ["test.theirs", "test.mine"]
    assert auditor_client.get("/api/v1/audit/events/?action=test.theirs").json()["count"] == 1
    assert auditor_client.get("/api/v1/audit/events/?organization=abc").status_code == 400


def test_flag_list_filters_and_review(two_issuers, auditor_client, issuer_client):
    # given
    flag = AnomalyFlag.objects.order_by("pk").first()
    # when
    response = auditor_client.post(
        f"/api/v1/audit/flags/{flag.pk}/review/", {"decision": "confirmed", "note": "ok"}, format="json"
    )
    # then
    assert response.status_code == 200 and response.json()["status"] == "confirmed"
    assert auditor_client.get("/api/v1/audit/flags/?status=open").json()["count"] == 1
    assert auditor_client.get("/api/v1/audit/flags/?kind=export_controlled").json()["count"] == 2
    assert auditor_client.get("/api/v1/audit/flags/?kind=nope").status_code == 400
    again = auditor_client.post(f"/api/v1/audit/flags/{flag.pk}/review/", {"decision": "dismissed"}, format="json")
    assert again.status_code == 409
    bad = auditor_client.post(f"/api/v1/audit/flags/{flag.pk + 1}/review/", {"decision": "later"}, format="json")
    assert bad.status_code == 400 and "decision" in bad.json()["errors"]
    assert (
        issuer_client.post(
            f"/api/v1/audit/flags/{flag.pk}/review/", {"decision": "dismissed"}, format="json"
        ).status_code
        == 403
    )
    assert (
        auditor_client.post("/api/v1/audit/flags/999999/review/", {"decision": "dismissed"}, format="json").status_code
        == 404
    )
