"""Every page of every role, in Simplified Chinese and English, at desktop (1,280 px) and phone (390 px) width, in
headless Chromium: nothing scrolls sideways, nothing sticks out of its box, ``<html lang>`` is the page's language,
no field is squeezed under 120 px on a desktop, no console error, and a Chinese page shows none of a few common
English UI words (the catalog check of tests/marketplace/test_i18n.py finds whole untranslated strings; this one finds
English that slipped in around them, e.g. in a template without ``{% translate %}``).

One browser and one context per language, signed in as each role in turn by a session cookie (not the login form);
each page is loaded once and checked at both widths, laid out again in between (at whichever width the previous page
ended: 1,280 px then 390 px, the next page 390 px then 1,280 px). The demo data is seeded once: it is
one test that visits everything and reports every problem at once.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from tests.marketplace.test_i18n import compile_catalog

pytestmark = pytest.mark.django_db(transaction=True)

CHECK = (Path(__file__).with_name("layout_check.js")).read_text(encoding="utf-8")
WIDTHS = {"desktop": 1280, "phone": 390}
LANGUAGES = {"zh-hans": "zh-CN", "en": "en-US"}  # <html lang> → the browser's locale (its Accept-Language)
MIN_FIELD_WIDTH = 120  # px, at desktop width
# Common English UI words that must not show on a Chinese page (whole words, case-sensitive; names of demo
# organizations, chips and cities are data and may stay English).
DENYLIST = [
    "Book",
    "Booking",
    "Bookings",
    "Cancel",
    "Status",
    "Price",
    "Save",
    "Submit",
    "Confirm",
    "Search",
    "Approve",
    "Reject",
    "Details",
    "Amount",
    "Total",
    "Edit",
    "Delete",
    "Previous",
    "Next",
    "Nodes",
    "Start",
    "End",
    "Filter",
    "Balance",
    "Held",
    "Expires",
    "Wallet",
    "Payouts",
    "Back",
]


def demo_objects() -> dict:
    """The ids the page paths name, from the demo data (None where the demo has none)."""
    from accounts.models import Organization
    from listings.models import Cluster, Listing
    from orders.models import Booking
    from settlement.models import ReimbursementStatement
    from vouchers.models import Voucher, VoucherApplication, VoucherProgram

    alice = Booking.objects.filter(buyer__memberships__user__username="alice").order_by("pk")
    pats = Booking.objects.filter(listing__cluster__data_center__provider__memberships__user__username="pat")
    first = lambda qs: qs.values_list("pk", flat=True).first()  # noqa: E731
    return {
        "listing": first(Listing.objects.filter(status="active").order_by("pk")),
        "own_listing": first(
            Listing.objects.filter(cluster__data_center__provider__memberships__user__username="pat").order_by("pk")
        ),
        "booking": first(alice.filter(status__in=["confirmed", "held"]).order_by("-pk")) or first(alice),
        "settled": first(alice.filter(status="settled")) or first(alice),
        "provider_booking": first(pats.order_by("-pk")),
        "voucher": first(Voucher.objects.filter(holder__memberships__user__username="alice").order_by("pk")),
        "program": first(VoucherProgram.objects.filter(issuer__memberships__user__username="ivy").order_by("pk")),
        "application": first(
            VoucherApplication.objects.filter(program__issuer__memberships__user__username="ivy").order_by("pk")
        ),
        "statement": first(ReimbursementStatement.objects.order_by("pk")),
        "cluster": first(
            Cluster.objects.filter(data_center__provider__memberships__user__username="pat").order_by("pk")
        ),
        "provider_org": first(Organization.objects.filter(memberships__user__username="pat")),
        "applicant": first(
            Organization.objects.filter(
                voucher_applications__program__issuer__memberships__user__username="ivy"
            ).order_by("pk")
        ),
    }


# Every page a person of each role reaches from the navigation and the pages' own links (GET pages; the API, the
# admin, CSV downloads and one-time e-mail links aside). ``None``: not signed in.
PAGES: dict[str | None, list[str]] = {
    None: [
        "/",
        "/listings/",
        "/listings/{listing}/",
        "/login/",
        "/signup/",
        "/signup/done/",
        "/signup/resend/",
        "/password-reset/",
        "/password-reset/sent/",
        "/password-reset/done/",
        "/no-such-page/",
    ],
    "alice": [
        "/",
        "/listings/",
        "/listings/?accelerator=ascend-910b&nodes=2",
        "/listings/{listing}/",
        "/listings/{listing}/book/",
        "/bookings/",
        "/bookings/{booking}/",
        "/bookings/{settled}/",
        "/settlement/bookings/{settled}/",
        "/bids/",
        "/market/",
        "/market/index/",
        "/resale/",
        "/wallet/",
        "/vouchers/",
        "/vouchers/{voucher}/",
        "/vouchers/programs/",
        "/vouchers/programs/{program}/",
        "/organization/",
        "/organization/ssh-keys/",
        "/organizations/{provider_org}/",
        "/model-filings/",
        "/account/preferences/",
        "/account/tokens/",
        "/account/two-factor/",
    ],
    "pat": [
        "/",
        "/provider/",
        "/provider/bookings/",
        "/provider/clusters/{cluster}/agent/",
        "/provider/listings/{own_listing}/edit/",
        "/bookings/{provider_booking}/",
        "/settlement/bookings/{provider_booking}/",
        "/payouts/",
        "/organization/",
        "/organizations/{provider_org}/",
        "/account/tokens/",
    ],
    "ivy": [
        "/",
        "/vouchers/programs/",
        "/vouchers/programs/{program}/",
        "/vouchers/programs/new/",
        "/vouchers/programs/{program}/edit/",
        "/vouchers/applications/",
        "/vouchers/applications/{application}/",
        "/organizations/{applicant}/",
        "/claims/",
        "/statements/",
        "/statements/{statement}/",
        "/audit/",
        "/market/idle-capacity/",
    ],
    "sam": [
        "/",
        "/review/",
        "/staff/organizations/",
        "/model-filings/",
        "/staff/organizations/new/",
        "/staff/disputes/",
        "/staff/incidents/",
        "/deposits/",
        "/payouts/",
        "/statements/",
        "/statements/{statement}/",
        "/market/idle-capacity/?city=Hefei",
    ],
    "audrey": [
        "/",
        "/audit/",
        "/audit/?group_by=program",
        "/audit/events/",
        "/audit/flags/",
        "/market/idle-capacity/?city=Hefei",
    ],
}


def pages_of(who: str | None, ids: dict) -> list[str]:
    paths = []
    for path in PAGES[who]:
        names = re.findall(r"\{(\w+)\}", path)
        if all(ids.get(name) for name in names):
            paths.append(path.format(**ids))
    return paths


def session_cookie(username: str, url: str) -> dict:
    """A signed-in session for ``username`` as a browser cookie (the login form has its own tests)."""
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": url,
    }


def collect_errors(page) -> list[str]:
    errors: list[str] = []
    page.on(
        "console",
        lambda msg: errors.append(f"console: {msg.text}")
        if msg.type == "error" and not msg.text.startswith("Failed to load resource")
        else None,
    )
    page.on("pageerror", lambda exc: errors.append(f"script: {exc}"))
    return errors


def check_layout(page, *, lang: str, width: int) -> list[str]:
    """What is wrong with the page as it is laid out now, at ``width`` (empty: nothing)."""
    result = page.evaluate(
        CHECK,
        {
            "denylist": DENYLIST,
            "checkEnglish": lang == "zh-hans",
            "minFieldWidth": MIN_FIELD_WIDTH if width >= 1280 else 0,
        },
    )
    problems = []
    if result["scrollWidth"] > result["innerWidth"]:
        problems.append(f"scrolls sideways: {result['scrollWidth']} px wide in {result['innerWidth']} px")
    if result["lang"] != lang:
        problems.append(f'<html lang="{result["lang"]}">')
    problems += result["overflows"][:5]
    problems += [f"English on a Chinese page: {text}" for text in result["english"][:5]]
    problems += result["narrowFields"][:5]
    return problems


# After a resize: two animation frames (media queries and layout re-applied), then, on a page with charts, until
# every chart's canvas fits its box again (Chart.js redraws on its resize observer; at most a second).
SETTLED = """async () => {
  const frame = () => new Promise((done) => requestAnimationFrame(done));
  await frame(); await frame();
  const fits = () => [...document.querySelectorAll("canvas")].every(
    (c) => c.getBoundingClientRect().width <= c.parentElement.getBoundingClientRect().width + 1);
  for (let i = 0; i < 20 && !fits(); i++) await new Promise((done) => setTimeout(done, 50));
}"""


def resize(page, width: int) -> None:
    """Lay the page out again at ``width``, as a browser of that width would (media queries re-apply, charts
    redraw)."""
    page.set_viewport_size({"width": width, "height": 900})
    page.evaluate(SETTLED)


def check_site(browser, base_url: str, ids: dict, *, screenshots: Path | None = None) -> list[str]:
    """Visit every page of every role in both languages and check it at both widths; the problems, one a line.

    One context per language, signed in as each role in turn (its cookies replaced, its HTTP cache of the static
    files kept); each page is loaded once and checked at both widths, laid out again in between (the server renders
    it once, not twice). The widths alternate: a page is loaded at the width the previous one ended at, checked
    there, then at the other width, so each page costs one relayout, not two."""
    report = []
    for lang, locale in LANGUAGES.items():
        context = browser.new_context(
            base_url=base_url,
            locale=locale,
            timezone_id="Asia/Shanghai",
            viewport={"width": WIDTHS["desktop"], "height": 900},
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        errors = collect_errors(page)
        devices = list(WIDTHS.items())  # the current width first
        try:
            for who in PAGES:
                context.clear_cookies()
                if who:
                    context.add_cookies([session_cookie(who, base_url)])
                for path in pages_of(who, ids):
                    errors.clear()
                    response = page.goto(path, wait_until="load")
                    expected = 404 if path == "/no-such-page/" else 200
                    problems = (
                        []
                        if response and response.status == expected
                        else [f"answers {response.status if response else 'nothing'}"]
                    )
                    for index, (device, width) in enumerate(devices):
                        if index:
                            resize(page, width)
                        problems += [f"{width}px: {problem}" for problem in check_layout(page, lang=lang, width=width)]
                        if screenshots:
                            name = re.sub(r"[^a-z0-9]+", "-", f"{who or 'anon'}-{lang}-{device}-{path}").strip("-")
                            page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
                    devices.reverse()  # the next page starts at the width this one ended at
                    problems += errors
                    report += [f"{who or 'anonymous'} {lang} {path}: {problem}" for problem in problems]
        finally:
            context.close()
    return report


@pytest.mark.timeout(900)  # every page of every role, twice over (two languages): longer than one test's default
def test_every_page_fits_the_screen_and_speaks_the_language(live_server, browser):
    # given the demo marketplace (every role has something on every page) and the compiled catalog
    compile_catalog()
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    ids = demo_objects()
    assert all(ids.values()), ids
    # when each role opens each of its pages in Chinese and English, on a desktop and on a phone
    report = check_site(browser, live_server.url, ids)
    # then no page scrolls sideways or spills out of its boxes, no field is squeezed, and each speaks its language
    assert report == [], "\n".join([f"{len(report)} layout problems:", *report[:100]])


def test_the_checks_find_what_they_look_for(live_server, browser):
    # given alice's booking form in English, checked as if it were a Chinese page
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    ids = demo_objects()
    context = browser.new_context(base_url=live_server.url, locale="en-US", viewport={"width": 390, "height": 900})
    context.add_cookies([session_cookie("alice", live_server.url)])
    page = context.new_page()
    try:
        page.goto(f"/listings/{ids['listing']}/book/")
        problems = check_layout(page, lang="zh-hans", width=390)
        # then it finds the English words and the wrong language
        assert any('English on a Chinese page: "Book"' in problem for problem in problems), problems
        assert '<html lang="en">' in problems
        # and when something in the page is wider than the phone, it finds the overflow and the sideways scroll
        page.evaluate(
            "document.querySelector('main form').insertAdjacentHTML('beforeend', '<p id=wide "
            'style="width: 900px">x</p>\')'
        )
        problems = check_layout(page, lang="en", width=390)
        assert any(problem.startswith("scrolls sideways") for problem in problems), problems
        assert any("p#wide" in problem and "sticks out" in problem for problem in problems), problems
    finally:
        context.close()
