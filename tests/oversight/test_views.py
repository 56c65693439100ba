"""Audit pages: dashboard with charts and CSV link, the flag queue with htmx review, the event log; the task."""

import json

import pytest
from django.test import Client

from audit.services import audit_record
from oversight import tasks
from oversight.models import AnomalyFlag
from tests import factories
from tests.oversight import factories as af

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def logged_in(org, role="owner") -> Client:
    client = Client()
    client.force_login(factories.member_of(org, role=role))
    return client


@pytest.fixture
def flagged(startup):
    listing = factories.ListingFactory(
        cluster__accelerator__export_controlled=True, cluster__accelerator__domestic=False
    )
    booking = af.booking(buyer=startup, listing=listing, voucher_part="16.00", vouchers=[af.voucher(holder=startup)])
    assert tasks.compute_flags.apply(kwargs={"full": True}).get() == 1
    return booking


def test_dashboard_has_three_charts_and_the_csv_link(flagged, platform_org):
    # given
    client = logged_in(platform_org, role="auditor")
    # when
    page = client.get("/audit/")
    # then
    html = page.content.decode()
    assert page.status_code == 200
    assert all(f'id="chart-{name}"' in html for name in ("city", "month", "chips"))
    assert "vendor/chart-4.6.1.umd.min.js" in html and "oversight/dashboard.js" in html and 'id="download-csv"' in html
    assert "<script>" not in html  # CSP: script-src 'self' only
    charts = json.loads(html.split('id="audit-charts" type="application/json">')[1].split("</script>")[0])
    assert charts["city"] == {"labels": ["Shanghai"], "spent": ["16.00"], "captured": ["0.00"]}
    assert charts["chips"]["spent"] == ["0.00", "16.00"]
    assert "1 open anomaly flag" in html
    # when the CSV is downloaded from the page's link
    csv_response = client.get("/audit/spend.csv?group_by=city")
    assert csv_response["Content-Disposition"].startswith("attachment;")
    assert csv_response.content.decode().splitlines()[1].startswith("city,Shanghai,Shanghai,1,16.00")


def test_dashboard_empty_state_and_permissions(startup, issuer, platform_org):
    html = logged_in(platform_org, role="auditor").get("/audit/").content.decode()
    assert "No voucher spend yet" in html and 'href="/audit/"' in html  # the nav link
    assert 'href="/audit/"' not in logged_in(startup).get("/vouchers/programs/").content.decode()
    assert logged_in(startup).get("/audit/").status_code == 403
    assert logged_in(issuer).get("/audit/").status_code == 200
    assert logged_in(startup).get("/audit/spend.csv").status_code == 403
    assert logged_in(platform_org, role="auditor").get("/audit/spend.csv?group_by=x").status_code == 400


def test_flag_queue_review_with_htmx(flagged, platform_org):
    # given
    client = logged_in(platform_org, role="auditor")
    flag = AnomalyFlag.objects.get()
    assert f'id="flag-{flag.pk}"' in client.get("/audit/flags/").content.decode()
    # when a bad decision, then a confirmation
    bad = client.post(f"/audit/flags/{flag.pk}/review/", {"decision": "perhaps"}, **HTMX)
    ok = client.post(f"/audit/flags/{flag.pk}/review/", {"decision": "confirmed", "note": "city told"}, **HTMX)
    # then
    assert bad.status_code == 200 and "Choose dismissed or confirmed." in bad.content.decode()
    row = ok.content.decode()
    assert ok.status_code == 200 and "city told" in row and "Confirm</button>" not in row
    flag.refresh_from_db()
    assert flag.status == "confirmed"
    assert "No flags here" in client.get("/audit/flags/").content.decode()
    assert f'id="flag-{flag.pk}"' in client.get("/audit/flags/?status=confirmed").content.decode()


def test_event_log_filters(platform_org):
    # given
    audit_record(action="test.alpha", object_type="x.y", object_id="1")
    audit_record(action="test.beta", object_type="x.y", object_id="2")
    client = logged_in(platform_org, role="auditor")
    # when
    html = client.get("/audit/events/?action=test.beta").content.decode()
    bad = client.get("/audit/events/?organization=abc").content.decode()
    # then the table lists the beta event only (both actions stay offered in the filter)
    table = html[html.index('id="event-table"') :]
    assert "test.beta" in table and "test.alpha" not in table
    assert "Pick an organization from the list." in bad
