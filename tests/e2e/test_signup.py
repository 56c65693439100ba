"""In a real browser: a new startup signs up, confirms its e-mail (the link from the live server's locmem outbox), is
refused a booking while pending (403 with the reason), uploads its business licence, is verified by platform staff on
the review queue (staff sign in with a second factor, set up at first sign-in), books, invites a teammate who
accepts, and records a model filing that a city issuer verifies."""

import re
import time

import pytest
from django.core import mail
from playwright.sync_api import expect

from accounts.models import ModelFiling, Organization
from orders.models import Booking
from tests import factories
from tests.e2e.conftest import SCREENSHOTS, log_in
from tests.orders.factories import fund

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "orbit-lantern-2026"


def _fill_signup(page) -> None:
    page.get_by_label("Startup", exact=True).check()
    page.get_by_label("Registered name").fill("Moonshot Vision")
    page.get_by_label("Unified social credit code").fill(factories.credit_code(990_001))
    page.get_by_label("Registered city").select_option("Hangzhou")
    page.get_by_label("Legal representative").fill("Liang Wen")
    page.get_by_label("Owners").fill("Liang Wen\nZhao Min")
    page.get_by_label("A startup or small / medium enterprise (SME)").check()
    page.get_by_label("Username").fill("liang")
    page.get_by_label("E-mail").fill("liang@moonshot.example.cn")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)


def test_a_startup_signs_up_confirms_waits_for_verification_and_books(page, screenshot, browser, live_server):
    # given a bookable listing and a platform staff member
    listing = factories.ListingFactory()
    staff = factories.member_of(factories.PlatformFactory(), username="sam")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    # when a person opens the sign-up page (desktop and phone widths: test-artifacts/screenshots/signup_*.png) and
    # first submits a bad credit code
    page.goto("/signup/")
    screenshot("signup_1280")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot("signup_390")
    page.set_viewport_size({"width": 1280, "height": 900})
    _fill_signup(page)
    page.get_by_label("Unified social credit code").fill("91330100MA00000000")
    page.get_by_role("button", name="Sign up").click()
    # then the error is shown next to the field and nothing is written
    expect(page.get_by_text("check character")).to_be_visible()
    screenshot("signup_errors")
    assert not Organization.objects.filter(name="Moonshot Vision").exists()

    # when the form is corrected (the password fields are never sent back) and submitted
    page.get_by_label("Unified social credit code").fill(factories.credit_code(990_001))
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/signup/done/")
    expect(page.get_by_text("liang@moonshot.example.cn")).to_be_visible()

    # then the confirmation link arrives; before following it, logging in fails
    link = re.search(r"https?://\S+", mail.outbox[-1].body).group(0)
    page.goto("/login/")
    page.get_by_label("Username").fill("liang")
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("main").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    # when the link is followed and confirmed, the person logs in
    page.goto(link)
    page.get_by_role("button", name="Confirm my e-mail address").click()
    page.wait_for_url("**/login/")
    log_in(page, "liang", PASSWORD)
    org = Organization.objects.get(name="Moonshot Vision")
    assert org.verification_status == "pending"
    fund(org, "10000.00")

    # when the pending startup tries to book / then 403 with the reason, no booking
    page.goto(f"/listings/{listing.pk}/book/")
    page.get_by_role("button", name="Book and confirm").click()
    expect(page.get_by_text("pending verification by platform staff").first).to_be_visible()
    screenshot("signup_pending_refused")
    assert not Booking.objects.exists()
    # and the team page says why
    page.goto("/organization/")
    expect(page.get_by_text("pending verification by platform staff").first).to_be_visible()
    # when the owner uploads the business licence there (a PDF by its bytes)
    page.get_by_label("Business licence (PDF, PNG or JPEG, at most 5 MB)").set_input_files(
        files=[{"name": "licence.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n%%EOF\n"}]
    )
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("Business licence uploaded").first).to_be_visible()
    org.refresh_from_db()
    assert org.business_licence_type == "application/pdf"

    # when platform staff verify it on the review queue
    staff_context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    staff_page = staff_context.new_page()
    staff_page.set_default_timeout(15_000)
    log_in(staff_page, staff.username, factories.PASSWORD)
    staff_page.goto("/staff/organizations/")
    card = staff_page.locator(f"#org-{org.pk}")
    expect(card).to_contain_text("Liang Wen, Zhao Min")
    expect(card.locator(".licence-link")).to_be_visible()  # staff download the licence from the queue
    staff_page.screenshot(path=str(SCREENSHOTS / "signup_staff_queue.png"), full_page=True)
    card.get_by_role("button", name="Verify").click()
    expect(staff_page.get_by_text("Moonshot Vision is verified.")).to_be_visible()
    staff_context.close()

    # then the startup books
    page.goto(f"/listings/{listing.pk}/book/")
    page.get_by_role("button", name="Book and confirm").click()
    page.get_by_role("button", name=re.compile("^Confirm and pay")).click()
    page.wait_for_url(re.compile(r"/bookings/\d+/$"))
    booking = Booking.objects.get(buyer=org)
    assert booking.status == "confirmed"

    # when the owner invites a teammate on the team page
    page.goto("/organization/")
    page.get_by_label("E-mail").fill("zhao@moonshot.example.cn")
    page.get_by_role("button", name="Send invitation").click()
    invite = re.search(r"https?://\S+/invitations/\S+/", mail.outbox[-1].body).group(0)
    assert mail.outbox[-1].to == ["zhao@moonshot.example.cn"]
    # then the teammate, without an account, opens the link, creates one and joins
    mate_context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    mate = mate_context.new_page()
    mate.set_default_timeout(15_000)
    mate.goto(invite)
    mate.get_by_label("Username").fill("zhao")
    mate.get_by_label("Password", exact=True).fill(PASSWORD)
    mate.get_by_label("Password again").fill(PASSWORD)
    mate.get_by_role("button", name="Create my account and join").click()
    expect(mate.get_by_text("Welcome to Moonshot Vision.")).to_be_visible()
    mate_context.close()
    assert org.memberships.filter(user__username="zhao", role="member").exists()

    # when the startup records its model filing (备案) on its page
    page.goto("/model-filings/")
    page.get_by_text("Record a filing").click()
    page.get_by_label("Filing number").fill("Zhejiang-Moonshot-20260101")
    page.get_by_label("Model name").fill("Moon-13B")
    page.get_by_label("Registered on").fill("2026-01-01")
    page.locator("#filing-form").get_by_role("button", name="Record").click()
    filing = _eventually(lambda: ModelFiling.objects.filter(filing_number="Zhejiang-Moonshot-20260101").first())
    assert filing.organization == org and filing.status == "pending"
    # then a city issuer (second factor set up at first sign-in) verifies it on the filings page
    issuer = factories.member_of(factories.IssuerFactory(city="Hangzhou"), username="hz-issuer")
    issuer_context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    issuer_page = issuer_context.new_page()
    issuer_page.set_default_timeout(15_000)
    log_in(issuer_page, issuer.username, factories.PASSWORD)
    issuer_page.goto("/model-filings/")
    issuer_page.locator(f"form[action='/model-filings/{filing.pk}/verify/']").get_by_role("button").click()
    assert _eventually(lambda: ModelFiling.objects.filter(pk=filing.pk, status="verified").exists())
    issuer_context.close()


def _eventually(read, timeout: float = 10.0):
    """``read()`` once it answers something truthy (the live server commits on its own thread), else fail."""
    deadline = time.monotonic() + timeout
    while not (value := read()):
        assert time.monotonic() < deadline, "the page's change never reached the database"
        time.sleep(0.1)
    return value
