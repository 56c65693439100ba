"""In a real browser, in English and in Chinese: a new startup signs up, confirms its e-mail (the link from the live
server's locmem outbox), is refused a booking while pending (403 with the reason), uploads its business licence, is
verified by platform staff on the review queue (staff sign in with a second factor, set up at first sign-in), books,
invites a teammate who accepts, records a model filing, is refused a voucher of a program that requires a verified
filing while its filing is pending, has the filing verified by a city issuer, applies again, is approved by the
issuer, and books paid partly with that voucher.

Every person's browser has the site in the run's language (the ``gpux_language`` cookie, as the language switcher
sets it); elements are found by role and name in that language (``_t``: the site's own catalog) or by stable ids.
Screenshots: test-artifacts/screenshots/signup_*.png (English) and zh-signup_*.png (Chinese)."""

import base64
import re
import time
from decimal import Decimal
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.core import mail
from django.utils import translation
from playwright.sync_api import expect

from accounts.models import ModelFiling, Organization
from marketplace.core.money import to_amount
from marketplace.core.templatetags.money import format_money
from orders.models import Booking
from tests import factories
from tests.marketplace.test_i18n import compile_catalog
from tests.orders.factories import fund
from tests.vouchers.factories import funded_program
from vouchers.models import Voucher, VoucherApplication

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "orbit-lantern-2026"
LANGUAGES = {"en": "", "zh-hans": "zh-"}  # language → screenshot name prefix
PENDING = (
    "%(name)s is pending verification by platform staff: it can browse, but cannot book, bid, list capacity or "
    "apply for vouchers until it is verified."
)
RATIO = Decimal("0.30")  # the program's share on any accelerator


def _t(lang: str, msgid: str, **values) -> str:
    """``msgid`` as the site shows it in ``lang`` (its own catalog), with ``values`` put in."""
    with translation.override(lang):
        text = translation.gettext(msgid)
    return text % values if values else text


def _prefix(lang: str, msgid: str) -> re.Pattern:
    """A name that starts with ``msgid``'s words before its first placeholder, in ``lang``."""
    return re.compile("^" + re.escape(_t(lang, msgid).split("%(")[0].strip()))


def _context(browser, live_server, lang: str):
    """A new person's browser with the site in ``lang`` (the cookie the language switcher sets)."""
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 1280, "height": 900},
        locale="zh-CN" if lang == "zh-hans" else "en-US",
    )
    _set_language(context, live_server, lang)
    return context


def _set_language(context, live_server, lang: str) -> None:
    context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": lang, "url": live_server.url}])


def _new_page(context):
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def _log_in(page, lang: str, username: str, password: str) -> None:
    """Log in through the page in ``lang``; a user who needs a second factor (staff, issuers) types the code an
    authenticator holding their key shows: at first sign-in, the key the set-up page shows
    (``tests.e2e.conftest.log_in``, in the page's language)."""
    from tests.helpers import totp_code

    page.goto("/login/")
    page.get_by_label(_t(lang, "Username")).fill(username)
    page.get_by_label(_t(lang, "Password")).fill(password)
    page.locator("main").get_by_role("button", name=_t(lang, "Log in")).click()
    page.wait_for_url(lambda url: urlparse(url).path != "/login/")
    if urlparse(page.url).path == "/account/two-factor/":
        secret = page.locator("#totp-secret").inner_text().replace(" ", "")
        code = totp_code(key_hex=base64.b32decode(secret + "=" * (-len(secret) % 8)).hex())
        page.get_by_label(_t(lang, "Code from your authenticator app")).fill(code)
        page.locator("main").get_by_role("button", name=_t(lang, "Turn on two-factor sign-in")).click()
        page.wait_for_url(lambda url: "two-factor" not in urlparse(url).path)
    page.wait_for_url("**/")


def _fill_signup(page, lang: str) -> None:
    label = lambda msgid, **kw: page.get_by_label(_t(lang, msgid), **kw)  # noqa: E731
    label("Startup", exact=True).check()
    label("Registered name").fill("Moonshot Vision")
    label("Unified social credit code").fill(factories.credit_code(990_001))
    label("Registered city").select_option("Hangzhou")
    label("Legal representative").fill("Liang Wen")
    label("Owners").fill("Liang Wen\nZhao Min")
    label("A startup or small / medium enterprise (SME)").check()
    label("Username").fill("liang")
    label("E-mail").fill("liang@moonshot.example.cn")
    label("Password", exact=True).fill(PASSWORD)
    label("Password again").fill(PASSWORD)


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_a_startup_signs_up_is_verified_gets_a_voucher_with_its_filing_and_books(
    page, screenshot, browser, live_server, lang
):
    compile_catalog()
    t = lambda msgid, **values: _t(lang, msgid, **values)  # noqa: E731
    shot = lambda name: screenshot(LANGUAGES[lang] + name)  # noqa: E731
    _set_language(page.context, live_server, lang)
    # given a bookable domestic listing, platform staff, and a Hangzhou issuer whose funded program pays 30 % of
    # bookings of organizations with a verified model filing
    chip = factories.AcceleratorFactory(slug="ascend-910b", name="Ascend 910B", vendor="Huawei", domestic=True)
    listing = factories.ListingFactory(cluster__accelerator=chip)
    staff = factories.member_of(factories.PlatformFactory(), username="sam")
    issuer = factories.member_of(factories.IssuerFactory(city="Hangzhou"), username="hz-issuer")
    program = funded_program(
        issuer=issuer.memberships.get().organization,
        name="Hangzhou compute vouchers",
        city="Hangzhou",
        domestic_ratio=RATIO,
        other_ratio=RATIO,
        requires_model_filing=True,
    )

    # when a person opens the sign-up page (desktop and phone widths) and first submits a bad credit code
    page.goto("/signup/")
    assert page.locator("html").get_attribute("lang") == lang
    shot("signup_1280")
    page.set_viewport_size({"width": 390, "height": 844})
    shot("signup_390")
    page.set_viewport_size({"width": 1280, "height": 900})
    _fill_signup(page, lang)
    page.get_by_label(t("Unified social credit code")).fill("91330100MA00000000")
    page.get_by_role("button", name=t("Sign up"), exact=True).click()
    # then the error is shown next to the field and nothing is written
    expect(page.get_by_text(t("The check character of this unified social credit code is wrong."))).to_be_visible()
    shot("signup_errors")
    assert not Organization.objects.filter(name="Moonshot Vision").exists()

    # when the form is corrected (the password fields are never sent back) and submitted
    page.get_by_label(t("Unified social credit code")).fill(factories.credit_code(990_001))
    page.get_by_label(t("Password"), exact=True).fill(PASSWORD)
    page.get_by_label(t("Password again")).fill(PASSWORD)
    page.get_by_role("button", name=t("Sign up"), exact=True).click()
    page.wait_for_url("**/signup/done/")
    expect(page.get_by_text("liang@moonshot.example.cn")).to_be_visible()

    # then the confirmation link arrives; before following it, logging in fails
    link = re.search(r"https?://\S+", mail.outbox[-1].body).group(0)
    page.goto("/login/")
    page.get_by_label(t("Username")).fill("liang")
    page.get_by_label(t("Password")).fill(PASSWORD)
    page.locator("main").get_by_role("button", name=t("Log in")).click()
    expect(page.get_by_role("alert")).to_be_visible()
    # when the link is followed and confirmed, the person logs in
    page.goto(link)
    page.get_by_role("button", name=t("Confirm my e-mail address")).click()
    page.wait_for_url("**/login/")
    _log_in(page, lang, "liang", PASSWORD)
    org = Organization.objects.get(name="Moonshot Vision")
    assert org.verification_status == "pending"
    fund(org, "10000.00")

    # when the pending startup tries to book / then 403 with the reason, no booking
    pending = t(PENDING, name="Moonshot Vision")
    page.goto(f"/listings/{listing.pk}/book/")
    page.get_by_role("button", name=t("Book and confirm")).click()
    expect(page.get_by_text(pending).first).to_be_visible()
    shot("signup_pending_refused")
    assert not Booking.objects.exists()
    # and the team page says why
    page.goto("/organization/")
    expect(page.get_by_text(pending).first).to_be_visible()
    # when the owner uploads the business licence there (a PDF by its bytes)
    page.get_by_label(t("Business licence (PDF, PNG or JPEG, at most 5 MB)")).set_input_files(
        files=[{"name": "licence.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n%%EOF\n"}]
    )
    page.get_by_role("button", name=t("Upload")).click()
    expect(page.get_by_text(t("Business licence uploaded: platform staff will check it.")).first).to_be_visible()
    org.refresh_from_db()
    assert org.business_licence_type == "application/pdf"

    # when platform staff verify it on the review queue
    staff_context = _context(browser, live_server, lang)
    staff_page = _new_page(staff_context)
    _log_in(staff_page, lang, staff.username, factories.PASSWORD)
    staff_page.goto("/staff/organizations/")
    card = staff_page.locator(f"#org-{org.pk}")
    expect(card).to_contain_text("Liang Wen, Zhao Min")
    expect(card.locator(".licence-link")).to_be_visible()  # staff download the licence from the queue
    staff_page.screenshot(path=str(_shot_path(lang, "signup_staff_queue")), full_page=True)
    card.get_by_role("button", name=t("Verify"), exact=True).click()
    expect(staff_page.get_by_text(t("%(name)s is verified.", name="Moonshot Vision"))).to_be_visible()
    staff_context.close()

    # then the startup books (no voucher yet: all cash)
    page.goto(f"/listings/{listing.pk}/book/")
    page.get_by_role("button", name=t("Book and confirm")).click()
    page.get_by_role("button", name=_prefix(lang, "Confirm and pay %(cash)s")).click()
    page.wait_for_url(re.compile(r"/bookings/\d+/$"))
    booking = Booking.objects.get(buyer=org)
    assert booking.status == "confirmed" and booking.voucher_amount == 0

    # when the owner invites a teammate on the team page
    page.goto("/organization/")
    page.get_by_label(t("E-mail")).fill("zhao@moonshot.example.cn")
    page.get_by_role("button", name=t("Send invitation")).click()
    invite = _eventually(lambda: re.search(r"https?://\S+/invitations/\S+/", mail.outbox[-1].body)).group(0)
    assert mail.outbox[-1].to == ["zhao@moonshot.example.cn"]
    # then the teammate, without an account, opens the link, creates one and joins
    mate_context = _context(browser, live_server, lang)
    mate = _new_page(mate_context)
    mate.goto(invite)
    mate.get_by_label(t("Username")).fill("zhao")
    mate.get_by_label(t("Password"), exact=True).fill(PASSWORD)
    mate.get_by_label(t("Password again")).fill(PASSWORD)
    mate.get_by_role("button", name=t("Create my account and join")).click()
    expect(mate.get_by_text(t("Welcome to %(name)s.", name="Moonshot Vision"))).to_be_visible()
    mate_context.close()
    assert org.memberships.filter(user__username="zhao", role="member").exists()

    # when the startup records its model filing (备案) on its page
    page.goto("/model-filings/")
    page.get_by_text(t("Record a filing")).click()
    page.get_by_label(t("Filing number")).fill("Zhejiang-Moonshot-20260101")
    page.get_by_label(t("Model name")).fill("Moon-13B")
    page.get_by_label(t("Registered on")).fill("2026-01-01")
    page.locator("#filing-form").get_by_role("button", name=t("Record"), exact=True).click()
    filing = _eventually(lambda: ModelFiling.objects.filter(filing_number="Zhejiang-Moonshot-20260101").first())
    assert filing.organization == org and filing.status == "pending"

    # when it applies for the program's voucher with that filing, still pending (desktop, then a phone's width)
    page.goto(f"/vouchers/programs/{program.pk}/")
    apply_form = page.locator("#apply-form")
    apply_form.get_by_label(t("Amount requested (CNY)")).fill("5000.00")
    apply_form.get_by_label(t("Purpose")).fill("Fine-tuning Moon-13B on Ascend 910B")
    apply_form.get_by_label(t("Registered model filing")).select_option(str(filing.pk))
    apply_form.get_by_role("button", name=t("Apply"), exact=True).click()
    # then the program refuses it next to the field, in words, and nothing is written
    refusal = t(
        "This program requires a verified model filing: %(filing)s has not been verified yet.", filing=str(filing)
    )
    expect(apply_form.locator(".error")).to_have_text(refusal)
    assert not VoucherApplication.objects.exists()
    page.set_viewport_size({"width": 390, "height": 844})
    shot("signup_voucher_refused_390")
    page.set_viewport_size({"width": 1280, "height": 900})

    # when the city issuer (second factor set up at first sign-in) verifies the filing on the filings page
    issuer_context = _context(browser, live_server, lang)
    issuer_page = _new_page(issuer_context)
    _log_in(issuer_page, lang, issuer.username, factories.PASSWORD)
    issuer_page.goto("/model-filings/")
    issuer_page.locator(f"form[action='/model-filings/{filing.pk}/verify/']").get_by_role("button").click()
    assert _eventually(lambda: ModelFiling.objects.filter(pk=filing.pk, status="verified").exists())

    # and the startup applies again with it
    page.reload()
    apply_form.get_by_label(t("Amount requested (CNY)")).fill("5000.00")
    apply_form.get_by_label(t("Purpose")).fill("Fine-tuning Moon-13B on Ascend 910B")
    apply_form.get_by_label(t("Registered model filing")).select_option(str(filing.pk))
    page.set_viewport_size({"width": 390, "height": 844})
    shot("signup_voucher_apply_390")
    page.set_viewport_size({"width": 1280, "height": 900})
    apply_form.get_by_role("button", name=t("Apply"), exact=True).click()
    # then it is sent to the issuer and listed under the startup's applications
    page.wait_for_url("**/vouchers/applications/")
    application = VoucherApplication.objects.get(applicant=org, program=program)
    assert application.status == "submitted" and application.model_filing == filing
    expect(page.locator(f"#application-{application.pk}")).to_be_visible()

    # when the issuer approves it on the queue (a question first) at the face value requested
    issuer_page.goto("/vouchers/applications/")
    row = issuer_page.locator(f"#application-{application.pk}")
    expect(row.get_by_label(t("Face value"))).to_have_value("5000.00")
    issuer_page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=t("Approve"), exact=True).click()
    with translation.override(lang):
        approved = str(VoucherApplication.Status.APPROVED.label)
    expect(row.locator(".badge")).to_have_text(approved)
    issuer_context.close()
    voucher = Voucher.objects.get(holder=org, program=program)
    assert voucher.face_value == Decimal("5000.00")

    # then the startup books with the voucher ticked: the confirmation step shows the voucher's share
    page.goto(f"/listings/{listing.pk}/book/")
    expect(page.locator(f"input[name=vouchers][value='{voucher.pk}']")).to_be_checked()
    page.get_by_role("button", name=t("Book and confirm")).click()
    subtotal = to_amount(listing.price_per_gpu_hour * listing.cluster.gpus_per_node)  # one node for one hour
    share = to_amount(RATIO * subtotal)
    with translation.override(lang):
        expect(page.locator("#confirm-voucher-amount")).to_have_text(format_money(share))
        expect(page.locator("#confirm-cash-amount")).to_have_text(format_money(subtotal - share))
    expect(page.locator("#booking-summary .voucher-part[data-rule='coverage_ratio']")).to_have_count(1)
    shot("signup_voucher_booking_confirm")
    page.get_by_role("button", name=_prefix(lang, "Confirm and pay %(cash)s")).click()
    page.wait_for_url(re.compile(r"/bookings/\d+/$"))
    paid = Booking.objects.filter(buyer=org).latest("pk")
    assert paid.pk != booking.pk and paid.status == "confirmed"
    assert (paid.subtotal, paid.voucher_amount, paid.cash_amount) == (subtotal, share, subtotal - share)
    assert paid.redemptions.get().voucher_id == voucher.pk
    with translation.override(lang):
        expect(page.locator("#booking-facts")).to_contain_text(format_money(share))


def _shot_path(lang: str, name: str):
    from tests.e2e.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{LANGUAGES[lang]}{name}.png"


def _eventually(read, timeout: float = 10.0):
    """``read()`` once it answers something truthy (the live server commits on its own thread), else fail."""
    deadline = time.monotonic() + timeout
    while not (value := read()):
        assert time.monotonic() < deadline, "the page's change never reached the database"
        time.sleep(0.1)
    return value
