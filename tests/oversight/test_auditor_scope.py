"""Auditor rights come from an auditor organization (issue 23, items 7 and 8): an "auditor" membership in a startup
reads nothing; an issuer's auditor reads only that issuer's programs; only platform auditors review flags."""

import pytest
from rest_framework.test import APIClient

from tests import factories
from tests.oversight import factories as af
from tests.vouchers.factories import funded_program

pytestmark = pytest.mark.django_db

AUDIT_READS = [
    "/api/v1/audit/events/",
    "/api/v1/audit/spend/?group_by=city",
    "/api/v1/audit/flags/",
    "/api/v1/audit/spend.csv?group_by=city",
]


def api_client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)  # no session: the API's own authentication path
    return client


@pytest.mark.parametrize("url", AUDIT_READS)
def test_an_auditor_of_a_startup_reads_no_audit_data(url):
    # given a startup member who is "auditor" of another startup
    user = factories.member_of(factories.StartupFactory())
    factories.MembershipFactory(user=user, organization=factories.StartupFactory(), role="auditor")
    # when / then
    assert api_client(user).get(url).status_code == 403


def test_an_auditor_of_a_startup_cannot_review_flags(open_flag):
    user = factories.member_of(factories.StartupFactory(), role="auditor")
    response = api_client(user).post(
        f"/api/v1/audit/flags/{open_flag.pk}/review/", {"decision": "dismissed", "note": "x"}, format="json"
    )
    assert response.status_code == 403
    open_flag.refresh_from_db()
    assert open_flag.status == "open"


def test_an_issuers_auditor_sees_only_that_issuers_programs():
    # given two cities' programs with one voucher booking each
    mine, theirs = factories.IssuerFactory(city="Wuhan"), factories.IssuerFactory(city="Chengdu")
    buyer = factories.StartupFactory()
    for issuer in (mine, theirs):
        program = funded_program(issuer=issuer, city=issuer.city)
        af.booking(buyer=buyer, voucher_part="10.00", vouchers=[af.voucher(holder=buyer, program=program)])
    auditor = factories.member_of(mine, role="auditor")
    # when
    response = api_client(auditor).get("/api/v1/audit/spend/?group_by=program")
    # then only Wuhan's program is in the report
    assert response.status_code == 200, response.data
    assert "Chengdu" not in str(response.data) and len(response.data["results"]) == 1


def test_an_issuer_posting_a_flag_review_page_gets_403_with_the_reason(client, open_flag):
    # given an issuer member (issuers read flags but do not review them)
    client.force_login(factories.member_of(factories.IssuerFactory()))
    # when posting the review form without htmx
    response = client.post(f"/audit/flags/{open_flag.pk}/review/", {"decision": "dismissed", "note": "x"})
    # then a 403 page that says why, not a silent redirect
    assert response.status_code == 403
    assert "auditor" in response.content.decode().lower()
    open_flag.refresh_from_db()
    assert open_flag.status == "open"
