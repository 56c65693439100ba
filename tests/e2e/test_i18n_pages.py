"""A zh-CN browser in Asia/Shanghai: the listings and a booking page in Simplified Chinese with Beijing time, at
desktop (1,280 px) and phone (390 px) width. Screenshots go to test-artifacts/screenshots/zh-*.png."""

import re

import pytest
from django.core.management import call_command

from accounts.demo import DEMO_PASSWORD
from listings.models import Listing
from tests.e2e.conftest import SCREENSHOTS
from tests.marketplace.test_i18n import compile_catalog

pytestmark = pytest.mark.django_db(transaction=True)
WIDTHS = {"desktop": 1280, "phone": 390}


@pytest.fixture
def demo(live_server):
    compile_catalog()
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115


@pytest.mark.parametrize("device", list(WIDTHS))
def test_a_chinese_browser_sees_listings_and_booking_in_chinese(demo, browser, live_server, device):
    context = browser.new_context(
        base_url=live_server.url,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport={"width": WIDTHS[device], "height": 900},
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on(
        "console",
        lambda msg: errors.append(msg.text)
        if msg.type == "error" and not msg.text.startswith("Failed to load resource")
        else None,
    )  # favicon
    page.on(
        "response",
        lambda r: errors.append(f"{r.status} {r.url}")
        if r.status >= 400 and not r.url.endswith("/favicon.ico")
        else None,
    )
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        # given alice logs in on the Chinese login page
        page.goto("/login/")
        assert page.locator("html").get_attribute("lang") == "zh-hans"
        page.get_by_label("用户名").fill("alice")
        page.get_by_label("密码").fill(DEMO_PASSWORD)
        page.locator("main").get_by_role("button", name="登录").click()
        page.wait_for_url("**/")
        # when she opens the listings
        page.goto("/listings/")
        assert page.locator("html").get_attribute("lang") == "zh-hans"
        assert page.get_by_role("heading", name="GPU 集群租用").is_visible()
        assert "北京时间 (UTC+8)" in page.content()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"zh-listings-{device}.png"), full_page=True)
        # and a booking page
        listing = Listing.objects.filter(status="active").order_by("pk").first()
        page.goto(f"/listings/{listing.pk}/book/")
        assert page.get_by_label(re.compile("开始时间 · 北京时间")).is_visible()
        page.get_by_role("button", name="获取报价").click()
        page.locator("#quote table").wait_for()
        assert "小计" in page.locator("#quote").inner_text()
        page.screenshot(path=str(SCREENSHOTS / f"zh-booking-{device}.png"), full_page=True)
        # then nothing went wrong in the page
        assert errors == []
    finally:
        context.close()
