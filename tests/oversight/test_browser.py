"""The auditor's journey in a real browser on the seeded demo: dashboard charts (CSP-clean), CSV download,
reviewing a flag with htmx. Uses the page fixtures of tests/e2e and the session browser of tests/conftest.py."""

from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from accounts.demo import AUDITOR_USER, DEMO_PASSWORD
from oversight import flags
from oversight.models import AnomalyFlag
from tests import factories
from tests.e2e.conftest import log_in, page, screenshot  # noqa: F401 - fixtures
from tests.oversight import factories as af

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(live_server):
    call_command("seed_demo")
    # one flaggable voucher booking on top of the demo (export-controlled hardware), so the queue has a row
    startup = factories.StartupFactory()
    listing = factories.ListingFactory(cluster__accelerator__export_controlled=True)
    af.booking(buyer=startup, listing=listing, voucher_part="16.00", vouchers=[af.voucher(holder=startup)])
    flags.flags_compute()


def test_auditor_reads_the_dashboard_downloads_csv_and_reviews_a_flag(demo, page, screenshot):  # noqa: F811
    # given audrey, the platform auditor, and a console that records CSP violations and script errors
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, AUDITOR_USER, DEMO_PASSWORD)
    # when she opens the dashboard
    page.get_by_role("link", name="Audit").first.click()
    expect(page.get_by_role("heading", name="Voucher spend")).to_be_visible()
    screenshot("audit-dashboard")
    # then the three charts were drawn (Chart.js registered each canvas)
    drawn = page.evaluate("() => ['city', 'month', 'chips'].map((n) => !!Chart.getChart('chart-' + n))")
    assert drawn == [True, True, True]
    # and the CSV downloads with a header row
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    text = Path(download_info.value.path()).read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("group_by,key,label,bookings,held,captured,reimbursed")
    # when she confirms a flag from the queue
    page.goto("/audit/flags/")
    flag = AnomalyFlag.objects.filter(status="open").order_by("-id").first()
    row = page.locator(f"#flag-{flag.pk}")
    row.get_by_label("Review note").fill("provenance documents missing")
    row.get_by_role("button", name="Confirm").click()
    # then the row is swapped in place
    expect(page.locator(f"#flag-{flag.pk}")).to_contain_text("provenance documents missing")
    screenshot("audit-flags")
    flag.refresh_from_db()
    assert flag.status == "confirmed"
    assert not [e for e in errors if "Content Security Policy" in e or "Error" in e], errors
