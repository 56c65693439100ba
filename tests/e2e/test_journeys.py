"""The main journeys, in a real browser on the seeded demo marketplace: a startup books with a voucher, a provider
lists capacity, an issuer approves a voucher application."""

import datetime as dt
import re

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from accounts.demo import DEMO_PASSWORD
from orders.models import Booking
from tests.e2e.conftest import log_in
from tests.helpers import page_input
from vouchers.models import VoucherApplication

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(live_server):
    call_command("seed_demo")


def test_startup_filters_to_ascend_in_shanghai_and_books_with_a_voucher(demo, page, screenshot):
    # given alice of DeepLoom AI (Shanghai), who holds a Shanghai compute voucher
    log_in(page, "alice", DEMO_PASSWORD)
    # when she filters the listings to Ascend 910B in Shanghai (htmx swaps the results, no reload)
    page.goto("/listings/")
    screenshot("listings-browse")
    page.get_by_label("City").select_option("Shanghai")
    page.get_by_label("Accelerator").select_option(label="Ascend 910B")
    # Locator assertions, not wait_for_function: the Content-Security-Policy forbids string eval in the page.
    rows = page.locator("#listing-table tbody tr")
    expect(rows.first).to_be_visible()
    expect(rows.filter(has_not_text="Ascend 910B")).to_have_count(0)
    expect(rows.filter(has_not_text="Shanghai")).to_have_count(0)
    screenshot("listings-filtered")
    # and opens the first result and books it, ticking her voucher
    page.locator("#listing-table tbody tr").first.get_by_role("link", name="Details").click()
    screenshot("listing-detail")
    page.get_by_role("button", name="Book", exact=True).click()
    page.locator("input[name=vouchers]").first.check()
    page.get_by_role("button", name="Get a quote").click()
    # then the quote shows the voucher part, the rule that bound it, and the cash part
    part = page.locator("td.voucher-part").first
    part.wait_for()
    assert part.get_attribute("data-rule") == "coverage_ratio"
    screenshot("booking-quote")
    page.get_by_role("button", name="Book and confirm").click()
    # and checks the voucher and cash parts once more before any money moves
    expect(page.get_by_role("heading", name="Check and confirm your booking")).to_be_visible()
    screenshot("booking-confirm")
    page.get_by_role("button", name=re.compile("^Confirm and pay")).click()
    page.wait_for_url(re.compile(r"/bookings/\d+/$"))
    booking = Booking.objects.filter(buyer__memberships__user__username="alice").latest("pk")
    assert booking.status == "confirmed" and booking.voucher_amount > 0
    assert booking.voucher_amount + booking.cash_amount == booking.subtotal
    assert str(booking.voucher_amount) in page.content()
    screenshot("booking-detail")


def test_provider_creates_and_submits_a_listing(demo, page, screenshot):
    # given pat of Lingang State Compute Hub, whose clusters are seeded
    log_in(page, "pat", DEMO_PASSWORD)
    page.goto("/provider/")
    # when pat creates a draft listing on the first cluster
    start = (timezone.now() + dt.timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    form = page.locator("#new-listing form")
    form.get_by_label("Cluster").select_option(index=1)
    form.get_by_label("Price per GPU-hour").fill("18.5000")
    form.get_by_label("Available from · Beijing time (UTC+8)").fill(page_input(start))
    form.get_by_label("Available until · Beijing time (UTC+8)").fill(page_input(start + dt.timedelta(days=10)))
    form.get_by_role("button", name="Create draft").click()
    draft_row = page.locator("#my-listings tr", has_text="Draft")
    draft_row.first.wait_for()
    # and submits it for review
    draft_row.first.get_by_role("button", name="Submit for review").click()
    # then it waits in the review queue
    page.locator("#my-listings .badge", has_text="Pending review").first.wait_for()
    screenshot("provider-listings")


def test_issuer_approves_an_application(demo, page, screenshot):
    # given ivy of the Shanghai voucher office, with a pending application in her queue
    pending = VoucherApplication.objects.get(status="submitted", program__issuer__memberships__user__username="ivy")
    log_in(page, "ivy", DEMO_PASSWORD)
    page.goto("/vouchers/applications/")
    screenshot("issuer-queue")
    # when she approves it at a lower face value
    row = page.locator(f"#application-{pending.pk}")
    row.get_by_label("Face value").fill("1000000.00")
    page.once("dialog", lambda dialog: dialog.accept())  # "Approve application … and issue a voucher …?"
    row.get_by_role("button", name="Approve").click()
    # then the row shows it approved (htmx swap) and a voucher was issued for that amount
    page.locator(f"#application-{pending.pk} .badge", has_text="Approved").wait_for()
    pending.refresh_from_db()
    assert pending.status == "approved" and str(pending.approved_face_value) == "1000000.00"


def test_on_a_phone_the_results_show_first_and_the_filters_unfold_on_demand(demo, page):
    # given a visitor on a 390-px phone
    page.set_viewport_size({"width": 390, "height": 844})
    # when the cluster search opens with two filters set (a shared link)
    page.goto("/listings/")
    panel = page.locator("#filter-panel")
    panel.locator("summary").click()
    page.get_by_label("City").select_option("Shanghai")
    page.get_by_label("Accelerator").select_option(label="Ascend 910B")
    expect(page).to_have_url(re.compile(r"accelerator=ascend-910b&city=Shanghai"))
    page.goto(page.url)
    # then the filter panel is folded, says how many filters are set, and the first result is on the first screen
    expect(panel).not_to_have_attribute("open", "")
    expect(panel.locator("summary")).to_have_text(re.compile(r"Filters\s+\(2 set\)"))
    first = page.locator("#listing-table tbody tr").first.bounding_box()
    assert first is not None and first["y"] < 844
    # when the visitor unfolds it, then the filters are there with their values
    panel.locator("summary").click()
    expect(page.get_by_label("City")).to_be_visible()
    expect(page.get_by_label("City")).to_have_value("Shanghai")
    # and on a desktop screen the panel is open from the start
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(page.url)
    expect(panel).to_have_attribute("open", "")
